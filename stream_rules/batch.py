"""One batch of the rules worker as a plain function, without Faust or Kafka.

`judge_batch` takes a batch's decoded readings, a way to get each patient's stored (serialised)
state, and the engines; it runs each enrolled patient's engine once over that patient's
readings and returns what the worker must do, in the order it must do it: first send every
output (alert events, then trend points, patient by patient in the order the patients first
appear in the batch) and wait for Kafka's acknowledgement, only then write the new states.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from stream_rules import state as state_io
from stream_rules.config import RulesFile
from stream_rules.engine import Engine, Output
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

    def __init__(self, rules: RulesFile, registry: PatientRegistry) -> None:
        self.rules = rules
        self.registry = registry
        self._engines: dict[str, Engine] = {}
        self.readings = 0
        self.alerts = 0
        self.bad_records = 0
        self.batch_ms: deque[float] = deque(maxlen=2000)
        self.announced = False

    def stats(self) -> str:
        """One line: readings judged, alert events sent, batch p50 and p99."""
        durations = sorted(self.batch_ms)
        p50 = durations[len(durations) // 2] if durations else 0.0
        p99 = durations[int(len(durations) * 0.99) - 1] if durations else 0.0
        return (f"judged {self.readings} readings, sent {self.alerts} alert events; "
                f"batch p50 {p50:.1f} ms, p99 {p99:.1f} ms")

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
    # each judged patient's new state, serialised: to write once Kafka has every output
    states: list[tuple[str, bytes]] = field(default_factory=list)
    # patients not enrolled here (their readings are not judged), and how many readings
    skipped: list[str] = field(default_factory=list)
    skipped_readings: int = 0

    @property
    def alerts(self) -> int:
        """How many alert events the batch sends."""
        return sum(len(out.alerts) for _, out in self.outputs)


def judge_batch(records: Iterable[Record], stored_state: Callable[[str], bytes | None],
                engine_for: Callable[[str], Engine | None]) -> Batch:
    """Run each enrolled patient's engine over its readings and statuses of the batch, from
    its stored state (a new one when there is none). Stores nothing: the caller writes
    `states` after sending `outputs`."""
    by_patient: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_patient[record.patient_id].append(record)
    batch = Batch()
    for patient_id, patient_readings in by_patient.items():
        engine = engine_for(patient_id)
        if engine is None:
            batch.skipped.append(patient_id)
            batch.skipped_readings += len(patient_readings)
            continue
        stored = stored_state(patient_id)
        state = state_io.load(stored) if stored else engine.new_state()
        batch.outputs.append((patient_id, engine.process(state, patient_readings)))
        batch.states.append((patient_id, state_io.dump(state)))
    return batch
