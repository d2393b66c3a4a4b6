"""Recognise readings already forwarded (QoS 1 redelivery, a device re-sending its buffer) with
bounded memory.

A reading is identified by (device, seq), or by (device, kind, ts) when it has no `seq`
(CONTRACT section 2). Sequence numbers of a device are mostly contiguous, so each device keeps
the seqs it has seen as a short list of closed ranges: hours of 1 Hz readings cost a few
integers, and an upload hours old is still recognised. Memory is capped three ways: ranges per
device, seq-less keys per device, and devices overall (least recently heard from goes first).
What falls out of the caps is forgotten, so a very old duplicate may pass again; the stages
downstream are idempotent by the same key, so that costs a repeat, never a loss.
"""

from __future__ import annotations

from collections import OrderedDict

from vitals.records import Reading
from vitals.seqset import SeqSet


class _Device:
    __slots__ = ("latest_ts", "seqs", "unsequenced")

    def __init__(self, max_ranges: int) -> None:
        self.seqs = SeqSet(max_ranges)
        self.latest_ts = -1
        self.unsequenced: dict[tuple[str, int], None] = {}


class DuplicateFilter:
    def __init__(self, max_devices: int = 200_000, max_ranges: int = 256,
                 max_unsequenced: int = 4096) -> None:
        self.max_devices = max_devices
        self.max_ranges = max_ranges
        self.max_unsequenced = max_unsequenced
        self._devices: OrderedDict[tuple[str, str], _Device] = OrderedDict()
        self.sequence_restarts = 0

    def __len__(self) -> int:
        return len(self._devices)

    def first_time(self, r: Reading) -> bool:
        """True the first time a reading is seen (and remember it); False for a duplicate."""
        key = (r.patient_id, r.device_id)
        dev = self._devices.get(key)
        if dev is None:
            dev = self._devices[key] = _Device(self.max_ranges)
            if len(self._devices) > self.max_devices:
                self._devices.popitem(last=False)
        else:
            self._devices.move_to_end(key)
        fresh = self._unsequenced(dev, r) if r.seq is None else self._sequenced(dev, r.seq, r.ts)
        if r.ts > dev.latest_ts:
            dev.latest_ts = r.ts
        return fresh

    def _unsequenced(self, dev: _Device, r: Reading) -> bool:
        k = (r.kind, r.ts)
        if k in dev.unsequenced:
            return False
        dev.unsequenced[k] = None
        if len(dev.unsequenced) > self.max_unsequenced:
            del dev.unsequenced[next(iter(dev.unsequenced))]
        return True

    def _sequenced(self, dev: _Device, seq: int, ts: int) -> bool:
        if dev.seqs.add(seq):
            return True
        if ts <= dev.latest_ts:
            return False
        # A seen seq with a newer time than anything seen: the device restarted its counter
        # (reboot, battery swap). Its new readings are real; start over.
        self.sequence_restarts += 1
        dev.seqs.restart(seq)
        return True
