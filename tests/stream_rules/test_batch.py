"""The rules worker's per-batch step (`judge_batch`) and its checkpoints without Faust or Kafka:
a dict stands in for the state table and a number for the committed input offset, and the
worker's order (send everything; at a checkpoint write the states, then release the inputs)
is played by hand, crashes included."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_rules import state as state_io
from stream_rules.batch import Batch, Judge, decode_records, judge_batch
from stream_rules.checkpoint import Checkpoints
from stream_rules.config import load_rules
from stream_rules.engine import Engine
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
    """The worker's loop over `judge_batch` and its checkpoints. Inputs are numbered by their
    offset; what survives a crash is `table` and `committed` (the first offset not released),
    from which a new Worker starts."""

    def __init__(self, table: dict[str, bytes] | None = None) -> None:
        self.judge = Judge(RULES, PatientRegistry([PATIENT, SECOND]))
        self.table: dict[str, bytes] = {} if table is None else table
        self.checkpoints: Checkpoints[int] = Checkpoints(self.table.get, 30.0, 10**9)
        self.sent: list[tuple[str, AlertEvent | TrendPoint]] = []
        self.committed = 0
        self.next_offset = 0

    def run(self, readings: list[Reading]) -> Batch:
        batch = judge_batch(readings, self.checkpoints.state, self.judge.engine)
        for patient_id, out in batch.outputs:
            self.sent += [(patient_id, a) for a in out.alerts]
            self.sent += [(patient_id, t) for t in out.trends]
        offsets = range(self.next_offset, self.next_offset + len(readings))
        self.checkpoints.judged(batch.judged, offsets)
        self.next_offset = offsets.stop
        return batch

    def checkpoint(self, release: bool = True) -> None:
        """Once Kafka has every output: write the states, then release the inputs (unless
        the worker dies in between: `release=False`)."""
        taken = self.checkpoints.take(0.0)
        self.table.update(taken.states)
        if taken.inputs and release:
            self.committed = taken.inputs[-1] + 1

    def alerts(self, patient_id: str) -> list[AlertEvent]:
        return [a for p, a in self.sent if p == patient_id and isinstance(a, AlertEvent)]

    def trends(self, patient_id: str) -> list[TrendPoint]:
        return [t for p, t in self.sent if p == patient_id and isinstance(t, TrendPoint)]


def test_a_batch_split_in_two_gives_the_same_outputs_and_state_as_one() -> None:
    readings = interleaved()
    whole, halves = Worker(), Worker()
    whole.run(readings)
    whole.checkpoint()
    for part in (readings[:len(readings) // 3], readings[len(readings) // 3:]):
        halves.run(part)
        halves.checkpoint()
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
    worker.checkpoint()
    strangers = sum(r.patient_id == "P999" for r in readings)
    assert strangers > 0
    assert batch.skipped == ["P999"] and batch.skipped_readings == strangers
    assert [patient_id for patient_id, _ in batch.outputs] == ["P002", "P001"]  # first seen
    assert batch.judged == ["P002", "P001"]
    assert set(worker.table) == {"P001", "P002"}
    assert not [p for p, _ in worker.sent if p == "P999"]
    assert batch.alerts == len(worker.alerts("P001")) + len(worker.alerts("P002")) > 0


def test_a_batch_of_only_strangers_writes_no_state() -> None:
    worker = Worker()
    batch = worker.run(of("P999", EPISODE[:100]))
    worker.checkpoint()
    assert (batch.outputs, batch.judged, batch.skipped) == ([], [], ["P999"])
    assert batch.skipped_readings == 100 and worker.table == {}


def test_a_crash_before_a_checkpoint_sends_the_same_alerts_again() -> None:
    """What a crash keeps is the table and the committed offset: a new worker re-judges from
    there and sends the same alerts, under the same ids; records redelivered after a
    checkpoint wrote their states (the offsets not yet released) are duplicates."""
    readings = of("P001", EPISODE)
    first, second = readings[:len(readings) // 2], readings[len(readings) // 2:]
    worker = Worker()
    worker.run(first)
    worker.checkpoint()
    before = dict(worker.table)
    crashed = worker.run(second)
    assert worker.table == before and worker.committed == len(first)  # nothing written
    restarted = Worker(dict(worker.table))
    replayed = restarted.run(readings[worker.committed:])
    assert replayed.outputs == crashed.outputs and crashed.alerts > 0
    restarted.checkpoint()
    assert restarted.table["P001"] != before["P001"]
    again = Worker(dict(restarted.table)).run(second)  # the release was lost
    assert again.alerts == 0 and not again.outputs[0][1].trends


READINGS = interleaved()
PURE = {patient.id: Engine(RULES, patient).process(
    None, [r for r in READINGS if r.patient_id == patient.id]).alerts
    for patient in (PATIENT, SECOND)}


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(1, 3000),
                                st.sampled_from(["", "checkpoint", "crash", "written"])),
                      min_size=1, max_size=25))
def test_any_kill_point_gives_exactly_the_pure_engines_alerts(
        steps: list[tuple[int, str]]) -> None:
    """Batches of any size; after each, maybe a checkpoint, maybe a crash (memory lost: a new
    worker from the table and the committed offset), maybe a crash after a checkpoint wrote
    the states but before it released the inputs. Every alert the pure engine gives is sent,
    none other, and a repeat is the same event."""
    worker, sent = Worker(), []
    for size, then in steps:
        if worker.next_offset >= len(READINGS):
            break
        worker.run(READINGS[worker.next_offset:worker.next_offset + size])
        if then == "checkpoint":
            worker.checkpoint()
        if then in ("crash", "written"):
            if then == "written":
                worker.checkpoint(release=False)
            sent += worker.sent
            crashed, worker = worker, Worker(worker.table)
            worker.committed = worker.next_offset = crashed.committed
    worker.run(READINGS[worker.next_offset:])
    sent += worker.sent
    for patient_id, pure in PURE.items():
        got = [a for p, a in sent if p == patient_id and isinstance(a, AlertEvent)]
        assert {a.alert_id for a in got} == {a.alert_id for a in pure}
        by_key = {(a.alert_id, a.status): a for a in pure}
        assert all(by_key[(a.alert_id, a.status)] == a for a in got)


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
