"""Devices: sample the patient's true vitals, add what real devices add (noise, site offsets,
motion, probe-off sentinels, a patch off or under a blanket, clock skew, battery), and turn
the readings into MQTT messages (CONTRACT section 1): live single readings, store-and-forward
batches on reconnect, status messages, QoS 1 duplicates and the odd malformed payload.

Speed matters here (hundreds of thousands of readings per second): values are computed with
numpy per device and chunk, and payloads are rendered with %-templates over `.tolist()`
columns. A template renders either the payload or, for the traffic file, the whole escaped
file line (`vitals.trafficfile` format) in one step.

Chunk-invariance: each device draws its noise from its own streams, a fixed number of values
per sample in sample order, and carries its filter state and offline buffer between chunks,
so the output does not depend on where the timeline is cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from simulators import physiology
from simulators import reports as reports_
from simulators.draws import MOTION_HR_PER_SPO2, WILL_DELAY
from simulators.episodes import smoothstep
from simulators.plan import HOUR, MINUTE, DevicePlan, PatientPlan, Simulation

PROBE_OFF, MOTION, LOW_BATTERY, MANUAL = 1, 2, 4, 8  # flag bits
FLAG_NAMES = ((PROBE_OFF, "probe_off"), (MOTION, "motion"), (LOW_BATTERY, "low_battery"),
              (MANUAL, "manual"))
LOW_BATTERY_BELOW = 15
MAX_BATCH = 1000  # readings per batch (CONTRACT section 1)
MAX_BATCH_BYTES = 60_000  # and safely under the 64 KiB payload limit
# ord: the order of a device's messages published at the same ms (status first)
STATUS, BATCH, LIVE, LIVE_DUP, BATCH_DUP = 0, 1, 2, 3, 4
# oximeter noise: AR(1) per field, (time constant s, sd): devices average over 8-16 s
AR = ((8.0, 1.0), (5.0, 2.0), (20.0, 1.0))  # spo2 (sd scaled by the device), hr, rr
PATCH_COOL = 4 * MINUTE  # a patch that came off cools to room temperature
BLANKET_WARM = 15 * MINUTE

Emit = Callable[[int, np.ndarray, np.ndarray, list[str], int], None]
# (device index, at, ord, items, readings per message) -> the chunk being assembled
EmitColumns = Callable[[int, np.ndarray, np.ndarray, "Columns"], None]
# (device index, at, ord, the readings as columns): one message per row, not rendered
Record = Callable[[str, int, int, int, str], None]  # kind, start, end, seq, detail -> truth


def escape(s: str) -> str:
    """JSON string escaping of our ASCII payloads (no backslashes or control characters)."""
    return s.replace('"', '\\"')


class Templates:
    """%-templates per flag combination; every one takes `at` first (raw payloads swallow it
    with `%.0s`) so the same columns render payloads and file lines."""

    def __init__(self, fields: str, topic: str, rr: bool = False) -> None:
        self.fields, self.topic, self.rr = fields, topic, rr
        self.raw: dict[int, str] = {}
        self.line: dict[int, str] = {}
        self.line_prefix = f'{{"at":%d,"topic":"{topic}","payload":"'

    def get(self, code: int, line: bool) -> str:
        table = self.line if line else self.raw
        if code not in table:
            # a probe-off reading has no respiratory rate: its column is swallowed
            rr = ("%.0s" if code & PROBE_OFF else ',"rr":%d') if self.rr else ""
            body = self.fields.replace("{RR}", rr)
            flags = [name for bit, name in FLAG_NAMES if code & bit]
            body += (',"flags":[' + ",".join(f'"{f}"' for f in flags) + "]" if flags else "")
            body += "}"
            self.raw[code] = "%.0s" + body
            self.line[code] = self.line_prefix + escape(body) + '"}\n'
        return table[code]

    def render(self, cols: list[np.ndarray], codes: np.ndarray, line: bool) -> list[str]:
        lists = [c.tolist() for c in cols]
        base = self.get(0, line)
        out = [base % row for row in zip(*lists, strict=True)]
        for i in np.flatnonzero(codes).tolist():
            out[i] = self.get(int(codes[i]), line) % tuple(c[i] for c in lists)
        return out

    def wrap(self, at: int, payload: str) -> str:
        """A raw payload as a file line."""
        return self.line_prefix % at + escape(payload) + '"}\n'


@dataclass(frozen=True, slots=True)
class Columns:
    """An oximeter's live readings as columns instead of payloads (`Stream(columns=True)`):
    what each payload would say, `ts` in epoch ms (an RFC 3339 time says the same instant).
    `rr` is -1 where the payload has none; `codes` are the flag bits."""

    ts: np.ndarray
    seq: np.ndarray
    spo2: np.ndarray
    hr: np.ndarray
    rr: np.ndarray
    battery: np.ndarray
    codes: np.ndarray

    @staticmethod
    def concat(blocks: list[Columns]) -> Columns:
        return Columns(*(np.concatenate([getattr(b, f) for b in blocks])
                         for f in Columns.__slots__))

    def take(self, rows: np.ndarray) -> Columns:
        return Columns(*(getattr(self, f)[rows] for f in Columns.__slots__))


def ts_column(d: DevicePlan, ts: np.ndarray, utc_offset: int) -> np.ndarray:
    if d.ts_format != "rfc3339":
        return ts
    local = (ts + utc_offset).astype("datetime64[ms]")
    sign = "-" if utc_offset < 0 else "+"
    off = abs(utc_offset) // MINUTE
    suffix = f"{sign}{off // 60:02d}:{off % 60:02d}"
    return np.char.add(np.datetime_as_string(local, unit="ms"), suffix)


def ts_field(d: DevicePlan) -> str:
    return '{"ts":"%s"' if d.ts_format == "rfc3339" else '{"ts":%d'


def _window_shape(t: np.ndarray, s: int, e: int) -> np.ndarray:
    """A triangle over [s, e): 0 at the ends, 1 in the middle."""
    x = (t - s) / max(e - s, 1)
    return np.where((x >= 0) & (x < 1), 1 - np.abs(2 * x - 1), 0.0)


def split_batches(sizes: list[int], most: int = MAX_BATCH, max_bytes: int = MAX_BATCH_BYTES
                  ) -> list[tuple[int, int]]:
    """[first, end) ranges of readings (of these payload sizes) for batches of at most `most`
    readings and `max_bytes` of payload, each as full as it can be."""
    out, first, size = [], 0, len('{"readings":[]}')
    for j, n in enumerate(sizes):
        if j > first and (j - first >= most or size + n + 1 > max_bytes):
            out.append((first, j))
            first, size = j, len('{"readings":[]}')
        size += n + 1
    if sizes:
        out.append((first, len(sizes)))
    return out


MALFORMED = ("truncated", "string_value", "string_seq", "bad_kind")
_VALUE = re.compile(r'"(spo2|temp)":([-0-9.]+)')
_SEQ = re.compile(r'"seq":(\d+)')


def malform(payload: str, u: float, in_batch: bool) -> tuple[str, str]:
    """A broken version of a raw reading payload, chosen by `u` in [0, 1). A truncated
    payload is never valid JSON (a prefix of an object); the other variants are JSON with a
    wrong type, which ingest rejects as `schema`. Inside a batch only the latter."""
    if in_batch:
        variant = MALFORMED[1 + min(int(u * 3), 2)]
    else:
        variant = MALFORMED[0] if u < 0.4 else MALFORMED[1 + min(int((u - 0.4) / 0.2), 2)]
    if variant == "truncated":
        return payload[:1 + int(u / 0.4 * (len(payload) - 2))], variant
    if variant == "string_value":
        return _VALUE.sub(r'"\1":"\2"', payload, count=1), variant
    if variant == "string_seq":
        return _SEQ.sub(r'"seq":"\1"', payload, count=1), variant
    return payload.replace('"kind":"', '"kind":"x', 1), variant


class DeviceSim:
    """One device's state across chunks."""

    def __init__(self, sim: Simulation, patient: PatientPlan, di: int, index: int,
                 status_index: int, line: bool, columns: bool = False) -> None:
        """Device `di` of `patient`; `index` and `status_index` order its messages and
        status messages among all devices'. `columns`: an oximeter hands its live readings
        over as `Columns` (not rendered; `payload` renders one on demand)."""
        device = patient.devices[di]
        self.sim, self.p, self.d = sim, patient, device
        self.index, self.status_index, self.line = index, status_index, line
        self.columns = columns and not line and device.type == "oximeter"
        self.topic = f"vitals/v1/{patient.id}/{device.id}"
        self.status_topic = self.topic + "/status"
        self.noise = np.random.Generator(np.random.PCG64(sim.seed_for(patient.index, 1, di, 0)))
        self.uniform = np.random.Generator(np.random.PCG64(sim.seed_for(patient.index, 1, di, 1)))
        self.zi = np.zeros((1, 3))
        a = np.exp(-device.interval / 1000 / np.array([tc for tc, _ in AR]))
        self.ar_a = a
        sd = np.array([device.noise if i == 0 else s for i, (_, s) in enumerate(AR)])
        self.ar_b = sd * np.sqrt(1 - a * a)
        # offline buffers: window index -> lists of (true time, seq, raw payload, u)
        self.buffer: dict[int, list[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]]] = {}
        tsf = ts_field(device)
        if device.type == "oximeter":
            fields = tsf + ',"kind":"oximetry","seq":%d,"spo2":%d,"hr":%d{RR},"battery":%d'
            self.templates = Templates(fields, self.topic, rr=device.rr)
        else:
            unit = ',"unit":"F"' if device.unit == "F" else ""
            fields = (tsf + f',"kind":"temperature","seq":%d,"temp":%.2f{unit},'
                      f'"site":"{device.site}","battery":%d')
            self.templates = Templates(fields, self.topic)
        self.status_tmpl = tsf + ',"state":"%s","battery":%d}'
        offline = device.w("offline")
        # the last will carries the time the device connected: the previous reconnect
        self.connected = np.concatenate([[sim.start], offline.end[:-1]])
        self._plan_reports()

    def _plan_reports(self) -> None:
        """The patient's reports, when this is its app: one `seq` counter with the app's
        own readings (readings first at the same ms). A report made while the app is offline
        goes out when it reconnects, as the app queues it."""
        d, sim = self.d, self.sim
        self.reports = [r for r in self.p.reports if not r.missed] \
            if self.p.report_device == d.id else []
        self.report_t = np.array([r.at for r in self.reports], np.int64)
        if not self.reports:
            self.report_at = self.report_seq = self.report_t
            return
        off = d.w("offline")
        w = off.index_at(self.report_t)
        self.report_at = np.where(w >= 0, off.end[np.maximum(w, 0)] + d.upload_delay,
                                  self.report_t) if len(off) else self.report_t
        readings_before = np.maximum(
            0, (self.report_t - sim.start - d.phase) // d.interval + 1)
        self.report_seq = d.seq_start + np.arange(len(self.reports)) + readings_before

    # -- per-sample pieces ------------------------------------------------------------------

    def battery(self, t: np.ndarray) -> np.ndarray:
        used = 100 - self.d.battery_start + self.d.drain_per_hour * (t - self.sim.start) / HOUR
        return np.floor(100.5 - used % 90).astype(np.int64)  # 100 .. 10, then recharged

    def skewed(self, t: np.ndarray) -> np.ndarray:
        ts = t + self.d.clock_skew
        cs = self.d.w("clock_skew")
        if len(cs):
            i = cs.index_at(t)
            ts = ts + np.where(i >= 0, cs.value[np.maximum(i, 0)], 0).astype(np.int64)
        return ts

    def in_windows(self, kind: str, t: np.ndarray) -> np.ndarray:
        w = self.d.w(kind)
        return w.index_at(t) >= 0 if len(w) else np.zeros(len(t), bool)

    def oximetry(self, t: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        v = physiology.vitals(self.p, t)
        z, self.zi = self._ar(len(t))
        spo2 = v.spo2 + self.d.bias + z[:, 0]
        hr = v.hr + z[:, 1]
        rr = v.rr + z[:, 2]
        codes = np.zeros(len(t), np.int64)
        motion = self.d.w("motion")
        for i in motion.overlapping(int(t[0]), int(t[-1]) + 1).tolist():
            shape = _window_shape(t, int(motion.start[i]), int(motion.end[i]))
            spo2 = spo2 - motion.value[i] * shape
            hr = hr + MOTION_HR_PER_SPO2 * motion.value[i] * shape
            if motion.flag[i]:
                codes |= np.where(shape > 0, MOTION, 0)
        spo2 = np.clip(np.rint(spo2), 50, 100).astype(np.int64)
        hr = np.clip(np.rint(hr), 30, 240).astype(np.int64)
        rr = np.clip(np.rint(rr), 4, 60).astype(np.int64)
        off = self.in_windows("probe_off", t)
        if off.any():  # finger out: the sentinels low-cost BLE oximeters send
            spo2[off], hr[off] = 127, 255
            codes[off] = PROBE_OFF  # a motion flag means nothing without a finger
        return ([spo2, hr, rr] if self.d.rr else [spo2, hr]), codes

    def _ar(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        e = self.noise.standard_normal((n, 3))
        out = np.empty((n, 3))
        zi = self.zi.copy()
        for j in range(3):
            out[:, j], zi[:, j] = lfilter([self.ar_b[j]], [1.0, -self.ar_a[j]], e[:, j],
                                          zi=zi[:, j])
        return out, zi

    def temperature(self, t: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        core = physiology.core_temperature(self.p, t)
        temp = core + self.d.site_offset + self.d.noise * self.noise.standard_normal(len(t))
        patch = self.d.w("patch_off")
        for i in patch.overlapping(int(t[0]), int(t[-1]) + 1).tolist():
            s, e, room = int(patch.start[i]), int(patch.end[i]), float(patch.value[i])
            on_skin = float(physiology.core_temperature(self.p, np.array([s]))[0]
                            + self.d.site_offset)
            drift = room + 0.8 * np.sin(2 * np.pi * (t - s) / (3 * HOUR))
            off = drift + (on_skin - room) * np.exp(-np.maximum(t - s, 0) / PATCH_COOL)
            temp = np.where((t >= s) & (t < e), off, temp)
        blanket = self.d.w("blanket")
        for i in blanket.overlapping(int(t[0]), int(t[-1]) + 1).tolist():
            s, e = int(blanket.start[i]), int(blanket.end[i])
            temp = temp + np.where((t >= s) & (t < e), blanket.value[i] * smoothstep(
                (t - s) / BLANKET_WARM), 0.0)
        if self.d.unit == "F":
            temp = temp * 9 / 5 + 32
        return [np.round(temp, 2)], np.full(len(t), MANUAL if self.d.manual else 0, np.int64)

    # -- one chunk --------------------------------------------------------------------------

    def chunk(self, c0: int, c1: int, emit: Emit, record: Record,
              emit_columns: EmitColumns | None = None) -> None:
        d, start = self.d, self.sim.start
        k0 = -((start + d.phase - c0) // d.interval)  # ceil((c0 - start - phase) / interval)
        k1 = -((start + d.phase - c1) // d.interval)
        if k1 > k0:
            k = np.arange(k0, k1, dtype=np.int64)
            t = start + d.phase + k * d.interval
            seq = d.seq_start + k
            if len(self.report_t):  # the app's reports took their seq numbers in between
                seq = seq + np.searchsorted(self.report_t, t, side="left")
            self._readings(t, seq, emit, record, emit_columns)
        if len(self.report_t):
            self._reports(c0, c1, emit)
        self._status_and_uploads(c0, c1, emit, record)

    def _reports(self, c0: int, c1: int, emit: Emit) -> None:
        i0, i1 = np.searchsorted(self.report_at, [c0, c1], side="left").tolist()
        if i1 <= i0:
            return
        ts = ts_column(self.d, self.skewed(self.report_t[i0:i1]), self.p.utc_offset).tolist()
        at = self.report_at[i0:i1]
        seq = self.report_seq[i0:i1]
        items = []
        for j, (a, s) in enumerate(zip(at.tolist(), seq.tolist(), strict=True)):
            text = reports_.payload(self.reports[i0 + j], ts[j], s)
            items.append(reports_.file_line(a, self.topic, text) if self.line else text)
        emit(self.index, at, seq * 8 + LIVE, items, 1)

    def _readings(self, t: np.ndarray, seq: np.ndarray, emit: Emit, record: Record,
                  emit_columns: EmitColumns | None) -> None:
        d = self.d
        values, codes = self.oximetry(t) if d.type == "oximeter" else self.temperature(t)
        battery = self.battery(t)
        codes = codes | np.where(battery < LOW_BATTERY_BELOW, LOW_BATTERY, 0)
        epoch = self.skewed(t)
        u = self.uniform.random((len(t), 3))  # malformed?, duplicate?, which/when
        window = d.w("offline").index_at(t)
        live = window < 0
        bad = u[:, 0] < d.malformed_rate
        normal = live & ~bad
        dup = normal & (u[:, 1] < d.duplicate_rate)
        sel = slice(None) if normal.all() else np.flatnonzero(normal)  # a view when all
        if self.columns and emit_columns is not None:
            emit_columns(self.index, t[sel], seq[sel] * 8 + LIVE, self._columns(
                epoch[sel], seq[sel], [v[sel] for v in values], battery[sel], codes[sel]))
            if normal.all() and not dup.any():
                return  # nothing below to render
        ts = ts_column(d, epoch, self.p.utc_offset)
        cols = [t, ts, seq, *values, battery]
        if not (self.columns and emit_columns is not None):
            items = self.templates.render([c[sel] for c in cols], codes[sel], self.line)
            emit(self.index, t[sel], seq[sel] * 8 + LIVE, items, 1)
        if dup.any():
            i = np.flatnonzero(dup)
            delay = (1000 + u[i, 2] * 9000).astype(np.int64)  # QoS 1 redelivery
            cols2 = [c[i] for c in cols]
            cols2[0] = t[i] + delay
            items = self.templates.render(cols2, codes[i], self.line)
            emit(self.index, t[i] + delay, seq[i] * 8 + LIVE_DUP, items, 1)
            for a, b, s in zip(t[i].tolist(), (t[i] + delay).tolist(), seq[i].tolist(),
                               strict=True):
                record("duplicate", a, b, s, "")
        if (bad & live).any():
            i = np.flatnonzero(bad & live)
            raws = self.templates.render([c[i] for c in cols], codes[i], False)
            items = []
            for a, s, raw, uu in zip(t[i].tolist(), seq[i].tolist(), raws, u[i, 2].tolist(),
                                     strict=True):
                payload, variant = malform(raw, uu, in_batch=False)
                items.append(self.templates.wrap(a, payload) if self.line else payload)
                record("malformed", a, a, s, variant)
            emit(self.index, t[i], seq[i] * 8 + LIVE, items, 1)
        if not live.all():
            if not d.buffer:
                return  # readings taken while offline are lost
            i = np.flatnonzero(~live)
            raws = self.templates.render([c[i] for c in cols], codes[i], False)
            for w in np.unique(window[i]).tolist():
                m = window[i] == w
                pick = [r for r, keep in zip(raws, m.tolist(), strict=True) if keep]
                self.buffer.setdefault(w, []).append((t[i][m], seq[i][m], pick, u[i][m]))

    def _columns(self, ts: np.ndarray, seq: np.ndarray, values: list[np.ndarray],
                 battery: np.ndarray, codes: np.ndarray) -> Columns:
        rr = values[2] if self.d.rr else np.full(len(ts), -1, np.int64)
        return Columns(ts, seq, values[0], values[1], rr, battery, codes)

    def payload(self, columns: Columns, row: int) -> str:
        """Row `row` of columns this device made, as the payload it stands for."""
        ts = ts_column(self.d, columns.ts[row:row + 1], self.p.utc_offset)[0]
        values = [columns.spo2[row], columns.hr[row]] + ([columns.rr[row]] if self.d.rr else [])
        row_values = [0, ts, columns.seq[row], *values, columns.battery[row]]
        return self.templates.get(int(columns.codes[row]), False) % tuple(
            v.item() if isinstance(v, np.generic) else v for v in row_values)

    def _status_and_uploads(self, c0: int, c1: int, emit: Emit, record: Record) -> None:
        d, off = self.d, self.d.w("offline")
        # the windows whose last will, reconnection or delayed upload may fall in this chunk
        for w in off.overlapping(c0 - max(WILL_DELAY, d.upload_delay + 1), c1).tolist():
            s, e = int(off.start[w]), int(off.end[w])
            if d.status and e - s > WILL_DELAY and c0 <= s + WILL_DELAY < c1:
                self._status(s + WILL_DELAY, "offline", int(self.connected[w]), s, emit)
            if c0 <= e < c1 and d.status:
                self._status(e, "online", e, e, emit)
            if c0 <= e + d.upload_delay < c1:
                self._upload(w, e + d.upload_delay, emit, record)

    def _status(self, at: int, state: str, connected: int, battery_at: int, emit: Emit
                ) -> None:
        ts = ts_column(self.d, self.skewed(np.array([connected])), self.p.utc_offset)[0]
        bat = int(self.battery(np.array([battery_at]))[0])
        payload = self.status_tmpl % (ts, state, bat)
        item = (f'{{"at":{at},"topic":"{self.status_topic}","payload":"{escape(payload)}"}}\n'
                if self.line else payload)
        emit(self.status_index, np.array([at]), np.array([STATUS]), [item], 0)

    def _upload(self, w: int, at: int, emit: Emit, record: Record) -> None:
        """Store-and-forward: everything buffered in window `w`, as batches sent at `at`."""
        parts = self.buffer.pop(w, [])
        if not parts:
            return
        t = np.concatenate([p[0] for p in parts])
        seq = np.concatenate([p[1] for p in parts])
        raws = [r for p in parts for r in p[2]]
        u = np.concatenate([p[3] for p in parts])
        for i in np.flatnonzero(u[:, 0] < self.d.malformed_rate).tolist():
            raws[i], variant = malform(raws[i], float(u[i, 2]), in_batch=True)
            record("malformed", int(t[i]), at, int(seq[i]), variant)
        for first, end in split_batches([len(r) for r in raws]):
            batch = '{"readings":[' + ",".join(raws[first:end]) + "]}"
            self._emit_batch(batch, end - first, at, int(seq[first]), u[first], emit, record)

    def _emit_batch(self, batch: str, n: int, at: int, first_seq: int, u: np.ndarray,
                    emit: Emit, record: Record) -> None:
        sends = [(at, BATCH)]
        if u[1] < self.d.duplicate_rate:
            sends.append((at + 2000 + int(u[2] * 8000), BATCH_DUP))
            record("duplicate", at, sends[1][0], first_seq, "batch")
        for a, kind in sends:
            item = self.templates.wrap(a, batch) if self.line else batch
            emit(self.index, np.array([a]), np.array([first_seq * 8 + kind]), [item], n)
