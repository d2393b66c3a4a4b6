"""The canary rule in the rules' batch step: one `canary` event per canary reading, stamped
with when it was judged; no engine, no state; patients' judging untouched."""

from __future__ import annotations

from stream_rules.batch import judge_batch
from stream_rules.canary import CanaryRule
from vitals.records import DeviceStatus, Reading

T = 1_795_000_000_000


def test_each_canary_reading_fires_once_and_never_reaches_an_engine() -> None:
    rule = CanaryRule("CANARY", clock=lambda: (T + 5000) / 1000)
    records = [Reading("CANARY", "canary", T + i * 1000, "temperature", T + i * 1000 + 40,
                       seq=i, temp=39.5, site="core", flags=("synthetic",)) for i in range(3)]
    records.append(DeviceStatus("CANARY", "canary", "online", T))
    engines_asked: list[str] = []

    def engine_for(patient_id: str) -> None:
        engines_asked.append(patient_id)
        return None

    batch = judge_batch(records, lambda *_: None, engine_for, rule)  # type: ignore[arg-type]
    assert engines_asked == [] and batch.judged == []
    [(patient, out)] = batch.outputs
    assert patient == "CANARY" and out.trends == []
    assert [event.alert_id for event in out.alerts] == [
        "canary-canary-0", "canary-canary-1", "canary-canary-2"]
    first = out.alerts[0]
    assert first.rule == "canary" and first.status == "firing" and first.severity == "info"
    assert first.start == T and first.evidence == {
        "synthetic": True, "published_at": T, "ingest_at": T + 40, "judged_at": T + 5000,
        "temp": 39.5}


def test_without_a_canary_rule_the_canary_is_a_patient_not_enrolled_here() -> None:
    reading = Reading("CANARY", "canary", T, "temperature", T, seq=1, temp=39.5)
    batch = judge_batch([reading], lambda *_: None, lambda _: None)  # type: ignore[arg-type]
    assert batch.outputs == [] and batch.skipped == ["CANARY"]
