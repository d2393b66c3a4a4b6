"""One batch of the rules worker as a plain function, without Faust or Kafka.

`judge_batch` takes a batch's decoded readings, a way to get each patient's state (in memory
between checkpoints: `stream_rules.checkpoint`), and the engines; it runs each enrolled
patient's engine once over that patient's readings, changing the states in place, and returns
the outputs to send (alert events, then trend points, patient by patient in the order the
patients first appear in the batch) and which patients it judged.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from stream_rules.canary import CanaryRule
from stream_rules.config import RulesFile
from stream_rules.engine import Engine, Output
from stream_rules.state import PatientState
from vitals import topics
from vitals.patients import PatientRegistry
from vitals.records import DeviceStatus, Reading, Rejection

__all__ = ["Batch", "Judge", "Record", "decode_records", "judge_batch"]

_decode_reading = msgspec.json.Decoder(Reading).decode
_decode_status = msgspec.json.Decoder(DeviceStatus).decode
Record = Reading | DeviceStatus
# RecursionError: JSON nested deeper than msgspec goes (skipping an unknown field, say)
UNDECODABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def decode_records(raw_batch: Iterable[bytes | None], received_at: int
                   ) -> tuple[list[Record], list[Rejection]]:
    """The readings and device statuses of a batch as Kafka holds them, in order; a record
    that is neither (anything may have been written to the topics) becomes a dead letter
    instead of stopping the worker, and the batch goes on."""
    records: list[Record] = []
    rejected: list[Rejection] = []
    for raw in raw_batch:
        try:
            records.append(_decode_reading(raw or b""))
        except UNDECODABLE as exc:
            try:  # a status has `state` and no `kind`: never both a reading and a status
                records.append(_decode_status(raw or b""))
            except UNDECODABLE:
                rejected.append(Rejection.of("rules_bad_record", f"not a valid reading: {exc}",
                                             topics.READINGS.name, received_at, raw or b""))
    return records, rejected


class Judge:
    """The engines of the enrolled patients, built once each, and what they have done."""

    def __init__(self, rules: RulesFile, registry: PatientRegistry,
                 canary: CanaryRule | None = None) -> None:
        self.rules = rules
        self.registry = registry
        self.canary = canary
        self._engines: dict[str, Engine] = {}
        self.readings = 0
        self.alerts = 0
        self.bad_records = 0
        self.redelivered = 0  # records dropped: judged already, or fetched before a rebalance
        self.checkpoints = 0
        self.state_bytes = 0  # written to the state table
        self.batch_ms: deque[float] = deque(maxlen=2000)
        self.last_progress = 0.0  # wall clock (s) of the last batch judged
        self.announced = False

    def stats(self) -> str:
        """One line: readings judged, alert events sent, batch p50 and p99."""
        durations = sorted(self.batch_ms)
        p50 = durations[len(durations) // 2] if durations else 0.0
        p99 = durations[int(len(durations) * 0.99) - 1] if durations else 0.0
        per_reading = self.state_bytes / self.readings if self.readings else 0.0
        return (f"judged {self.readings} readings, sent {self.alerts} alert events; "
                f"batch p50 {p50:.1f} ms, p99 {p99:.1f} ms; {self.checkpoints} checkpoints, "
                f"{per_reading:.1f} B of state per reading; "
                f"{self.redelivered} records delivered again, dropped")

    def engine(self, patient_id: str) -> Engine | None:
        """The patient's engine; None for a patient not enrolled here."""
        engine = self._engines.get(patient_id)
        if engine is None:
            patient = self.registry.get(patient_id)
            if patient is None:
                return None
            engine = self._engines[patient_id] = Engine(self.rules, patient)
        return engine


@dataclass(slots=True)
class Batch:
    """What one batch of readings comes to, in the order the worker acts on it."""

    # per judged patient, in the order the patients first appear in the batch: to send
    outputs: list[tuple[str, Output]] = field(default_factory=list)
    # the patients judged (their states changed), in the same order
    judged: list[str] = field(default_factory=list)
    # patients not enrolled here (their readings are not judged), and how many readings
    skipped: list[str] = field(default_factory=list)
    skipped_readings: int = 0

    @property
    def alerts(self) -> int:
        """How many alert events the batch sends."""
        return sum(len(out.alerts) for _, out in self.outputs)


def judge_batch(records: Iterable[Record], state_of: Callable[[str, Engine], PatientState],
                engine_for: Callable[[str], Engine | None],
                canary: CanaryRule | None = None) -> Batch:
    """Run each enrolled patient's engine over its readings and statuses of the batch, on the
    state `state_of` gives (changed in place); the canary's readings go to its own rule, no
    engine and no state. Stores nothing."""
    by_patient: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_patient[record.patient_id].append(record)
    batch = Batch()
    for patient_id, patient_readings in by_patient.items():
        if canary is not None and patient_id == canary.patient_id:
            batch.outputs.append((patient_id, Output(alerts=canary.events(patient_readings))))
            continue
        engine = engine_for(patient_id)
        if engine is None:
            batch.skipped.append(patient_id)
            batch.skipped_readings += len(patient_readings)
            continue
        state = state_of(patient_id, engine)
        batch.outputs.append((patient_id, engine.process(state, patient_readings)))
        batch.judged.append(patient_id)
    return batch
