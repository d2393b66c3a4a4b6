"""The rules worker's per-batch step (`judge_batch`) without Faust or Kafka: a dict stands in
for the state table, and the worker's order (send everything, then write the states) is
played by hand."""

from __future__ import annotations

import msgspec

from stream_rules import state as state_io
from stream_rules.batch import Batch, Judge, decode_records, judge_batch
from stream_rules.config import load_rules
from tests.hostile import variants
from tests.stream_rules.test_engine import EPISODE, PATIENT
from vitals.patients import PatientRegistry
from vitals.records import AlertEvent, Reading, TrendPoint

RULES = load_rules(None)
SECOND = PATIENT.model_copy(update={"id": "P002"})


def of(patient_id: str, readings: list[Reading]) -> list[Reading]:
    return [msgspec.structs.replace(r, patient_id=patient_id) for r in readings]


def interleaved() -> list[Reading]:
    """Two enrolled patients' episodes, as a partition mixes them, and a stranger's."""
    out: list[Reading] = []
    for own, second, stranger in zip(EPISODE, of("P002", EPISODE), of("P999", EPISODE),
                                     strict=True):
        out += [own, second] if own.ts % 2 else [second, own]
        if own.ts % 7 == 0:
            out.append(stranger)
    return out


class Worker:
    """The worker's loop over `judge_batch`, with a dict as its table."""

    def __init__(self) -> None:
        self.judge = Judge(RULES, PatientRegistry([PATIENT, SECOND]))
        self.table: dict[str, bytes] = {}
        self.sent: list[tuple[str, AlertEvent | TrendPoint]] = []

    def run(self, readings: list[Reading], write: bool = True) -> Batch:
        batch = judge_batch(readings, self.table.get, self.judge.engine)
        for patient_id, out in batch.outputs:
            self.sent += [(patient_id, a) for a in out.alerts]
            self.sent += [(patient_id, t) for t in out.trends]
        if write:  # only once Kafka has acknowledged every output
            self.table.update(batch.states)
        return batch

    def alerts(self, patient_id: str) -> list[AlertEvent]:
        return [a for p, a in self.sent if p == patient_id and isinstance(a, AlertEvent)]

    def trends(self, patient_id: str) -> list[TrendPoint]:
        return [t for p, t in self.sent if p == patient_id and isinstance(t, TrendPoint)]


def test_a_batch_split_in_two_gives_the_same_outputs_and_state_as_one() -> None:
    readings = interleaved()
    whole, halves = Worker(), Worker()
    whole.run(readings)
    for part in (readings[:len(readings) // 3], readings[len(readings) // 3:]):
        halves.run(part)
    # per batch the alerts go before the trend points; per patient each comes in the same order
    for patient_id in ("P001", "P002"):
        assert halves.alerts(patient_id) == whole.alerts(patient_id)
        assert halves.trends(patient_id) == whole.trends(patient_id)
    assert {a.rule for a in whole.alerts("P001")} >= {"fever", "desaturation", "crs_suspicion"}
    assert whole.alerts("P002") == [
        msgspec.structs.replace(a, patient_id="P002", alert_id=a.alert_id.replace("P001", "P002"),
                                summary=a.summary.replace("P001", "P002"))
        for a in whole.alerts("P001")]
    assert halves.table == whole.table


def test_a_patient_not_enrolled_is_skipped_counted_and_gets_no_state() -> None:
    readings = interleaved()
    worker = Worker()
    batch = worker.run(readings)
    strangers = sum(r.patient_id == "P999" for r in readings)
    assert strangers > 0
    assert batch.skipped == ["P999"] and batch.skipped_readings == strangers
    assert [patient_id for patient_id, _ in batch.outputs] == ["P002", "P001"]  # first seen
    assert [patient_id for patient_id, _ in batch.states] == ["P002", "P001"]
    assert set(worker.table) == {"P001", "P002"}
    assert not [p for p, _ in worker.sent if p == "P999"]
    assert batch.alerts == len(worker.alerts("P001")) + len(worker.alerts("P002")) > 0


def test_a_batch_of_only_strangers_writes_no_state() -> None:
    worker = Worker()
    batch = worker.run(of("P999", EPISODE[:100]))
    assert (batch.outputs, batch.states, batch.skipped) == ([], [], ["P999"])
    assert batch.skipped_readings == 100 and worker.table == {}


def test_a_crash_before_the_state_is_written_sends_the_same_alerts_again() -> None:
    """The worker's guarantee: states are written after Kafka has the outputs. A crash in
    between replays the batch from the old state, under the same alert ids; once the state is
    written, the same readings (redelivered) are duplicates and send nothing."""
    readings = of("P001", EPISODE)
    first, second = readings[:len(readings) // 2], readings[len(readings) // 2:]
    worker = Worker()
    worker.run(first)
    before = dict(worker.table)
    crashed = worker.run(second, write=False)
    assert worker.table == before  # nothing written
    replayed = worker.run(second)
    assert replayed.outputs == crashed.outputs and crashed.alerts > 0
    assert worker.table["P001"] == replayed.states[0][1] != before["P001"]
    again = worker.run(second)
    assert again.alerts == 0 and not again.outputs[0][1].trends


def test_the_judge_builds_each_engine_once_and_none_for_a_stranger() -> None:
    judge = Judge(RULES, PatientRegistry([PATIENT]))
    engine = judge.engine("P001")
    assert engine is not None and judge.engine("P001") is engine
    assert judge.engine("P999") is None
    stored = state_io.dump(engine.new_state())
    assert state_io.load(stored).patient_id == "P001"


def test_records_that_are_not_readings_become_dead_letters_and_the_rest_is_judged() -> None:
    valid = msgspec.to_builtins(EPISODE[0])
    hostile = [body for _, body in variants(valid)]
    readings, dead = decode_records([*hostile, msgspec.json.encode(EPISODE[0]), None], 123)
    refused = [body for body in hostile if not decodes(body)]
    assert len(dead) == len(refused) + 1 > 100  # and the empty record
    assert EPISODE[0] in readings and len(readings) == len(hostile) - len(refused) + 1
    assert all(d.reason == "rules_bad_record" and d.topic == "vitals.readings" for d in dead)
    assert all(len(msgspec.json.encode(d)) < 16 * 1024 for d in dead)


def decodes(body: bytes) -> bool:
    try:
        msgspec.json.decode(body, type=Reading)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True
