"""The canary rule (CONTRACT section 7): it fires on every canary reading, so that alerting
can time each round trip (published -> ingest -> judged -> received) and page the operators
when they stop. The canary is no patient: it has no engine and no state, and its events are
marked synthetic; alerting never pages a nurse for them.

`judged_at` is the only wall-clock time in the rules: it measures the pipeline, not the
patient, and decides nothing a patient's alerts depend on."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vitals import canary
from vitals.records import AlertEvent, Reading

SOURCE = "CONTRACT section 7: the end-to-end canary"


class CanaryRule:
    """One `canary` event per canary reading of `patient_id`; `clock` is wall seconds."""

    def __init__(self, patient_id: str, clock: Callable[[], float]) -> None:
        self.patient_id = patient_id
        self.clock = clock

    def events(self, readings: Iterable[object]) -> list[AlertEvent]:
        """An event for each canary reading among `readings` (device statuses are skipped)."""
        judged_at = int(self.clock() * 1000)
        return [self.event(reading, judged_at) for reading in readings
                if isinstance(reading, Reading)]

    def event(self, reading: Reading, judged_at: int) -> AlertEvent:
        """The round trip of one canary reading so far, as a firing `canary` event."""
        return AlertEvent(
            alert_id=canary.alert_id(reading.device_id, reading.seq, reading.ts),
            status="firing", rule=canary.RULE, severity="info", patient_id=self.patient_id,
            start=reading.ts, detected_at=reading.ts,
            summary=f"canary round {reading.seq}: synthetic, never paged to a nurse",
            source=SOURCE,
            evidence={"synthetic": True, "published_at": reading.ts,
                      "ingest_at": reading.received_at, "judged_at": judged_at,
                      "temp": reading.temp})
