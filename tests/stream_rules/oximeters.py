"""An oximeter's and a thermometer's readings as the tests of the oximetry runs need them, and
what cuts them into runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np

from stream_rules import runs
from stream_rules.bulk_medians import MinuteMedians
from stream_rules.config import load_rules
from vitals.patients import Patient
from vitals.records import Reading

RULES = load_rules(None)
PATIENT = Patient(id="P001", infusion=dt.date(2026, 11, 18), team="haem-a", product="axi-cel")
T0 = int(dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC).timestamp() * 1000)
MIN = 60_000


FLAG_SETS = ((), ("low_battery",), ("motion",), ("motion", "low_battery"),
             ("probe_off", "no_signal"), ("probe_off", "low_battery", "no_signal"))


def oximeter(seconds: int, seed: int, every_s: int = 1, leaps: bool = True,
             skew_back: bool = True, artefacts: bool = True) -> runs.OximetryRun:
    """An oximeter's readings with what happens to real ones: a desaturation with a racing
    heart, pulse leaps of motion, a dropout, a clock stepping back, no SpO2 or no rate now
    and then, a low battery; `artefacts`: readings flagged for motion, and a finger out for
    40 minutes (no signal: sentinels, which ingest makes None), long enough to be silent."""
    rng = np.random.default_rng(seed)
    s = np.arange(0, seconds, every_s)
    keep = ~((s > seconds * 0.4) & (s < seconds * 0.4 + 600))  # a 10-minute dropout
    s = s[keep]
    ts = T0 + s * 1000
    if skew_back:
        ts[len(ts) * 3 // 4:] -= 90_000  # its clock stepped back 90 s
    desat = (s > seconds * 0.2) & (s < seconds * 0.35)
    spo2 = np.rint(97 - 6 * desat + rng.normal(0, 0.8, len(s)))
    hr = np.rint(80 + 55 * desat + rng.normal(0, 1.5, len(s)))
    motion = np.zeros(len(s), bool)
    if leaps:
        for start in rng.integers(0, len(s) - 30, 6):
            end = start + int(rng.integers(2, 90))
            hr[start:end] += 40  # motion: a leap, some long
            if artefacts and rng.random() < 0.5:
                motion[start:end] = True  # some flagged as such
    spo2[rng.random(len(s)) < 0.01] = np.nan
    rr = np.where(rng.random(len(s)) < 0.05, np.nan, np.rint(16 + rng.normal(0, 1, len(s))))
    off = (s > seconds * 0.6) & (s < seconds * 0.6 + 2400) & artefacts
    hr[off] = spo2[off] = rr[off] = np.nan
    low = np.maximum(10, 90 - s // 600) < 15
    flags = np.where(off, 4, np.where(motion, 2, 0)) + low
    return runs.OximetryRun(
        patient_id="P001", device_id="ox-1", ts=ts, received_at=T0 + s * 1000 + 300,
        seq=np.arange(len(s), dtype=np.int64) + 5, hr=hr, spo2=spo2, rr=rr,
        battery=np.maximum(10.0, 90.0 - s // 600), flags=flags.astype(np.int8),
        flag_sets=FLAG_SETS)


def thermometer(seconds: int, every_s: int = 60) -> list[Reading]:
    return [Reading("P001", "th-1", T0 + t * 1000, "temperature", T0 + t * 1000 + 200,
                    seq=i, temp=37.0 + (1.6 if seconds * 0.2 < t < seconds * 0.5 else 0.0),
                    site="core")
            for i, t in enumerate(range(0, seconds, every_s))]


COLUMNS = ("ts", "received_at", "seq", "hr", "spo2", "rr", "battery", "flags")


def table_of(run: runs.OximetryRun) -> MinuteMedians:
    """The run's minute values computed ahead: every row plain but the artefacts."""
    plain = ~run.artefacts()
    return MinuteMedians.of(run.ts, plain, {"hr": run.hr, "spo2": run.spo2, "rr": run.rr},
                            {"hr": plain, "spo2": run.spo2 == run.spo2, "rr": run.rr == run.rr})


def cut(run: runs.OximetryRun, a: int, b: int, table: MinuteMedians | None = None
        ) -> runs.OximetryRun:
    return runs.OximetryRun(run.patient_id, run.device_id,
                            *(getattr(run, f)[a:b] for f in COLUMNS), flag_sets=run.flag_sets,
                            table=table, row=a)


@contextmanager
def values_ahead() -> Iterator[list[str]]:
    """The minute values computed ahead that minutes closed with (a spy on
    `MinuteMedians.ahead`): a signal's name for each."""
    used: list[str] = []
    ahead = MinuteMedians.ahead

    def spy(self: MinuteMedians, signal: str, group: int, count: int) -> float | None:
        value = ahead(self, signal, group, count)
        if value is not None:
            used.append(signal)
        return value

    with mock.patch.object(MinuteMedians, "ahead", spy):
        yield used
