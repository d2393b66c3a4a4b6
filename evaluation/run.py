"""Drive the pure rule engine over a cohort's traffic: messages in publish order -> ingest's
Parser (receipt time = the message's `at`) -> DuplicateFilter -> one Engine per patient ->
flush at the end. No brokers. A generated cohort is split by patient over worker processes:
each worker streams only its patients (device streams are seeded per patient, so a patient's
traffic is the same byte for byte in any subset), and per-patient order is all the engine sees.
Oximeters' live readings take the fast path of `evaluation.columns`, with the same result.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.dedup import DuplicateFilter
from ingest.parse import Parser
from simulators import cohort, stream
from simulators.plan import Simulation
from simulators.stream import Injected
from stream_rules.bulk_medians import MedianTally
from stream_rules.config import RulesFile
from stream_rules.engine import Engine, Output
from vitals import trafficfile
from vitals.patients import Patient, PatientRegistry
from vitals.records import AlertEvent, Reading


@dataclass
class PatientRun:
    """What the engine said about one patient: alert events and per-minute trend medians."""

    alerts: list[AlertEvent] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    temp: list[float] = field(default_factory=list)
    hr: list[float] = field(default_factory=list)
    spo2: list[float] = field(default_factory=list)

    def add(self, out: Output) -> None:
        self.alerts += out.alerts
        nan = float("nan")
        for t in out.trends:
            self.ts.append(t.ts)
            self.temp.append(nan if t.temp is None else t.temp)
            self.hr.append(nan if t.hr is None else t.hr)
            self.spo2.append(nan if t.spo2 is None else t.spo2)

    def trends(self) -> dict[str, np.ndarray]:
        return {"ts": np.asarray(self.ts, np.int64), "temp": np.asarray(self.temp),
                "hr": np.asarray(self.hr), "spo2": np.asarray(self.spo2)}


@dataclass
class Counts:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Counts) -> None:
        self.messages += other.messages
        self.readings += other.readings
        self.duplicates += other.duplicates
        for k, v in other.rejected.items():
            self.rejected[k] = self.rejected.get(k, 0) + v


@dataclass
class RunResult:
    patients: dict[str, PatientRun]
    counts: Counts
    injected: list[Injected] = field(default_factory=list)


def registry_of(sim: Simulation) -> PatientRegistry:
    return PatientRegistry([Patient(id=p.id, infusion=p.infusion, team=p.team,
                                    product=p.product, devices=tuple(d.id for d in p.devices))
                            for p in sim.patients], source=sim.source)


class Pipeline:
    """Parser -> DuplicateFilter -> Engine per patient, fed message by message."""

    def __init__(self, rules: RulesFile, registry: PatientRegistry) -> None:
        self.parser = Parser(registry)
        self.dedup = DuplicateFilter()
        self.engines = {p.id: Engine(rules, p, slopes=False) for p in registry}
        self.states = {pid: e.new_state() for pid, e in self.engines.items()}
        self.runs = {pid: PatientRun() for pid in self.engines}
        self.tallies = {pid: MedianTally() for pid in self.engines}  # for the fast path
        self.counts = Counts()
        self.pending: dict[str, list[Reading]] = defaultdict(list)

    def feed(self, messages: Iterable[tuple[int, str, bytes]],
             before_oximetry: Callable[[], None] | None = None) -> None:
        """Messages of one slice of time; each patient's readings go to its engine at once
        (the engine gives the same events for any batching of the same readings).
        `before_oximetry`: called before an oximetry reading goes to an engine (`runs.Pause`)."""
        parse, first, counts, pending = self.parser.parse, self.dedup.first_time, self.counts, \
            self.pending
        for at, topic, payload in messages:
            counts.messages += 1
            o = parse(topic, payload, at)
            for rej in o.rejections:
                counts.rejected[rej.reason] = counts.rejected.get(rej.reason, 0) + 1
            for r in o.readings:
                counts.readings += 1
                if first(r):
                    pending[r.patient_id].append(r)
                else:
                    counts.duplicates += 1
        if before_oximetry is not None and any(
                r.kind == "oximetry" for readings in pending.values() for r in readings):
            before_oximetry()
        for pid, readings in pending.items():
            self.runs[pid].add(self.engines[pid].process(self.states[pid], readings))
        pending.clear()

    def finish(self) -> dict[str, PatientRun]:
        for pid, e in self.engines.items():
            self.runs[pid].add(e.flush(self.states[pid]))
        return self.runs


# --- a generated cohort, in worker processes ---------------------------------------------

_SIM: Simulation | None = None
_RULES: RulesFile | None = None


def _init(n: int, seed: int, days: float, start: int, rules: RulesFile) -> None:
    global _SIM, _RULES
    _SIM, _RULES = cohort.generate(n, seed, days, start), rules


def run_subset(sim: Simulation, rules: RulesFile, indices: list[int], columns: bool = True
               ) -> RunResult:
    """The traffic of patients `indices` only, generated and judged. `columns`: oximeters'
    live readings as columns (`evaluation.columns`), else every message as its payload; the
    result is the same."""
    from evaluation.columns import feed_batch

    sub = dataclasses.replace(sim, patients=tuple(sim.patients[i] for i in indices))
    s = stream.Stream(sub, line=False, columns=columns)
    pipe = Pipeline(rules, registry_of(sub))
    for b in s.batches():
        feed_batch(pipe, b, s)
    return RunResult(pipe.finish(), pipe.counts, list(s.injected))


def _task(indices: list[int]) -> RunResult:
    assert _SIM is not None and _RULES is not None
    return run_subset(_SIM, _RULES, indices)


def run_cohort(n: int, seed: int, days: float, start: int, rules: RulesFile, workers: int,
               progress: Callable[[int], None] | None = None) -> tuple[Simulation, RunResult]:
    """Generate and judge a seeded cohort, one patient per task over `workers` processes;
    `progress(patients done)`."""
    sim = cohort.generate(n, seed, days, start)
    total = RunResult({}, Counts())
    tasks = [[i] for i in range(len(sim.patients))]

    def merge(r: RunResult) -> None:
        total.patients.update(r.patients)
        total.counts.merge(r.counts)
        total.injected += r.injected
        if progress:
            progress(len(total.patients))

    if workers <= 1:
        for t in tasks:
            merge(run_subset(sim, rules, t))
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers, _init, (n, seed, days, start, rules)) as pool:
            for r in pool.imap_unordered(_task, tasks):
                merge(r)
    order = [p.id for p in sim.patients]
    total.patients = {pid: total.patients[pid] for pid in order}
    return sim, total


# --- a traffic file, in one process (publish order across patients) -----------------------

def _slices(messages: Iterator[trafficfile.Message], size: int = 5000
            ) -> Iterator[list[tuple[int, str, bytes]]]:
    chunk: list[tuple[int, str, bytes]] = []
    for m in messages:
        chunk.append((m.at, m.topic, m.payload))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_traffic(path: Path, rules: RulesFile, registry: PatientRegistry,
                progress: Callable[[int], None] | None = None) -> RunResult:
    """Judge a traffic file; `progress(messages done)`."""
    pipe = Pipeline(rules, registry)
    for chunk in _slices(trafficfile.read(path)):
        pipe.feed(chunk)
        if progress:
            progress(pipe.counts.messages)
    return RunResult(pipe.finish(), pipe.counts)


def desat_onsets(sim: Simulation, grid: int = 30_000, below: float = 93.0
                 ) -> dict[tuple[str, int], int]:
    """(patient, episode onset) -> the first time the model's SpO2 is <= `below` within the
    episode (30 s grid, as the truth's fever onset), for episodes that have one."""
    from simulators import physiology

    out = {}
    for p in sim.patients:
        for e in p.episodes:
            t = np.arange(e.onset, min(e.end, sim.end) + grid, grid, dtype=np.int64)
            low = np.flatnonzero(physiology.vitals(p, t).spo2 <= below)
            if len(low):
                out[(p.id, e.onset)] = int(t[low[0]])
    return out


def cohort_of(source: str, start: int) -> Simulation | None:
    """The plan behind a truth file written for a generated cohort ("cohort: N patients, seed
    S, D days"), rebuilt to find true desaturation onsets; None for anything else."""
    import re

    m = re.fullmatch(r"cohort: (\d+) patients, seed (\d+), ([\d.e+-]+) days", source)
    if m is None:
        return None
    return cohort.generate(int(m[1]), int(m[2]), float(m[3]), start)
