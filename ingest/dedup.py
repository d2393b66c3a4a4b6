"""Recognise readings already forwarded (QoS 1 redelivery, a device re-sending its buffer) with
bounded memory.

A reading is identified by (device, seq), or by (device, kind, ts) when it has no `seq`
(CONTRACT section 2). Sequence numbers of a device are mostly contiguous, so each device keeps
the seqs it has seen as a short list of closed ranges: hours of 1 Hz readings cost a few
integers, and an upload hours old is still recognised. Memory is capped: ranges per device,
seq-less keys per device, and a budget in bytes for all devices together (the least recently
heard from is forgotten first), so that no sender, however hostile, can grow ingest past its
memory limit (deploy/: 192 MiB; the budget's default is 48 MiB). What is forgotten may pass
again as a duplicate; the stages downstream are idempotent by the same key, so that costs a
repeat, never a loss.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from vitals.records import Reading
from vitals.seqset import SeqSet

# What memory costs, measured with tracemalloc (tests/ingest/test_dedup.py checks them): a
# device's own structures, and each range of seqs or seq-less key it remembers.
DEVICE_BYTES = 700
ENTRY_BYTES = 100


class _Device:
    __slots__ = ("latest_ts", "seqs", "unsequenced")

    def __init__(self, max_ranges: int) -> None:
        self.seqs = SeqSet(max_ranges)
        self.latest_ts = -1
        self.unsequenced: dict[tuple[str, int], None] = {}

    def entries(self) -> int:
        return len(self.seqs.starts) + len(self.unsequenced)


class DuplicateFilter:
    """The readings already forwarded, per device, within a memory budget."""

    def __init__(self, max_bytes: int = 48 * 1024 * 1024, max_ranges: int = 256,
                 max_unsequenced: int = 4096) -> None:
        self.max_bytes = max_bytes
        self.max_ranges = max_ranges
        self.max_unsequenced = max_unsequenced
        self._devices: OrderedDict[tuple[str, str], _Device] = OrderedDict()
        self._bytes = 0  # estimated from DEVICE_BYTES and ENTRY_BYTES
        self.sequence_restarts = 0
        self.forgotten = 0  # devices dropped to stay within the budget

    def __len__(self) -> int:
        return len(self._devices)

    def first_time(self, r: Reading) -> bool:
        """True the first time a reading is seen (and remember it); False for a duplicate."""
        key = (r.patient_id, r.device_id)
        dev = self._devices.get(key)
        if dev is None:
            dev = self._devices[key] = _Device(self.max_ranges)
            self._bytes += DEVICE_BYTES
        else:
            self._devices.move_to_end(key)
        before = dev.entries()
        fresh = self._unsequenced(dev, r) if r.seq is None else self._sequenced(dev, r.seq, r.ts)
        if r.ts > dev.latest_ts:
            dev.latest_ts = r.ts
        self._bytes += (dev.entries() - before) * ENTRY_BYTES
        self._forget_over_budget()
        return fresh

    def newer_run(self, patient_id: str, device_id: str, seqs: np.ndarray, ts: np.ndarray
                  ) -> bool:
        """A run of one device's readings (`seqs`, times `ts`), all newer than any seen and
        strictly increasing: remembered, as `first_time` of each would (every one is new),
        and True. False, changing nothing, when the run is not such: then ask
        `first_time` reading by reading."""
        key = (patient_id, device_id)
        dev = self._devices.get(key)
        if dev is None or not len(seqs):
            return False
        before = dev.entries()
        if not dev.seqs.add_newer(seqs):
            return False
        self._devices.move_to_end(key)
        dev.latest_ts = max(dev.latest_ts, int(ts.max()))
        self._bytes += (dev.entries() - before) * ENTRY_BYTES
        self._forget_over_budget()
        return True

    def _forget_over_budget(self) -> None:
        while self._bytes > self.max_bytes and len(self._devices) > 1:
            _, old = self._devices.popitem(last=False)
            self._bytes -= DEVICE_BYTES + old.entries() * ENTRY_BYTES
            self.forgotten += 1

    @property
    def estimated_bytes(self) -> int:
        """What the remembered readings cost, by the measured sizes above."""
        return self._bytes

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
