"""The orchestrator of alerting. An alert event goes through the stages (`alerting.stages`):

    firing:   dedup -> silence -> severity -> route -> group -> escalate -> notify
    resolved: dedup -> clear -> escalate -> notify

and the clock (escalation, repeats, held resolves), acknowledgements and resolves drive the
incident lifecycle through the same `notify` stage. Whatever they decide is written in one
store transaction (state, audit rows and notification intents together), before the
dispatcher sends anything.

Every method here waits for the store and runs on the store thread (`alerting.store.thread`):
the event loop awaits `core.off_loop(core.process, event)`; tests and scripts may call
`core.handle(event)` directly. Time comes from the injected clock (seconds, like `time.time`),
so tests drive escalation without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from alerting import lifecycle, reports, views
from alerting.lifecycle import Effect, Incident
from alerting.notify.base import Notifier
from alerting.oncall import OnCall
from alerting.operators import OperatorsPage
from alerting.stages.clear import Clear
from alerting.stages.dedup import Dedup
from alerting.stages.escalate import Escalate
from alerting.stages.group import Group
from alerting.stages.notify import Notify
from alerting.stages.pipeline import Flow, Pipeline, Verdict
from alerting.stages.records import Record
from alerting.stages.route import Route
from alerting.stages.severity import Severity
from alerting.stages.silence import Silence
from alerting.store import Row, Store
from alerting.store.thread import StoreThread
from alerting.watch import Watch
from vitals.patients import PatientRegistry
from vitals.records import AlertEvent, Reading, TrendPoint

Clock = Callable[[], float]
T = TypeVar("T")
TREND_KEEP_MS = 6 * 3600_000  # the nurse page shows the last hours


class NotFound(LookupError):
    """No incident or alert has this id."""


class Conflict(ValueError):
    """The action does not apply: an alert that was never paged, an incident resolved."""


class Alerting:
    """Events, the clock, acks and resolves: each one transaction of the stages' decisions."""

    def __init__(self, store: Store, oncall: OnCall, patients: PatientRegistry,
                 notifiers: Mapping[str, Notifier], clock: Clock, public_url: str,
                 webhook_url: str | None = None, wake: Callable[[], None] = lambda: None,
                 thread: StoreThread | None = None, canary_patient: str = "CANARY",
                 canary_late_s: float = 180.0) -> None:
        self.store = store
        self.oncall = oncall
        self.patients = patients
        self.notifiers = notifiers
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.webhook_url = webhook_url
        self.wake = wake  # the dispatcher's: new intents are committed (any thread may call it)
        self.thread = thread or StoreThread()  # whoever else uses `store` must share it
        self.duplicates = 0
        # progress, for /healthz and /metrics (epoch ms): the consumer's last poll and last
        # batch read, the clock's last tick
        self.polled_at = self.ticked_at = self.now()
        self.kafka_read_at = 0
        self.notify = Notify(oncall, notifiers, public_url, webhook_url)
        self.firing = Pipeline(Dedup(), Silence(), Severity(oncall), Route(oncall, patients),
                               Group(), Escalate(), self.notify)
        self.clearing = Pipeline(Dedup(), Clear(oncall), Escalate(), self.notify)
        # CONTRACT section 7: the canary's round trips, and the operators' page when late
        self.canary_patient = canary_patient
        self.operators = OperatorsPage(self.notify, public_url)
        self.late_ms = int(canary_late_s * 1000)
        self.watch = self.thread.call(
            lambda: Watch.restore(self.late_ms, store.watch_state(), self.now()))
        # whether this instance leads (`alerting.leader`): set by the service
        self.leading: Callable[[], bool] = lambda: True

    def now(self) -> int:
        """The injected clock, in epoch milliseconds."""
        return int(self.clock() * 1000)

    async def off_loop(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the store thread, awaited: how the event loop reaches the store."""
        return await self.thread.run(function, *args)

    def close(self) -> None:
        """Close the store on its thread, then end the thread."""
        self.thread.call(self.store.close)
        self.thread.close()

    # events from the rules
    def process(self, event: AlertEvent) -> Verdict:
        """Record one alert event; the verdict says what became of it and which stage said so."""
        verdict = self.thread.call(self._process, event)
        if verdict.outcome == "duplicate":
            self.duplicates += 1
        else:
            self.wake()
        return verdict

    def handle(self, event: AlertEvent) -> str:
        """Record one alert event; returns what became of it (for logs and tests)."""
        return self.process(event).outcome

    def _process(self, event: AlertEvent) -> Verdict:
        now = self.now()
        pipeline = self.clearing if event.status == "resolved" else self.firing
        with self.store.tx():
            return pipeline.run(Flow(event, now), self.store, self._writer(now))

    def trend(self, point: TrendPoint) -> None:
        """Keep a trend point for the nurse page's charts (the patient's last hours)."""
        self.thread.call(self._trend, point)

    def _trend(self, point: TrendPoint) -> None:
        with self.store.tx():
            self.store.add_trend(point.patient_id, point.ts,
                                 msgspec.json.encode(point).decode(), point.ts - TREND_KEEP_MS)

    def report(self, reading: Reading) -> None:
        """Keep what a patient or caregiver entered in the app, for the nurse page and pages."""
        self.thread.call(self._report, reading)

    def _report(self, reading: Reading) -> None:
        with self.store.tx():
            self.store.add_report(reading.patient_id, reading.device_id, reading.ts, reading.kind,
                                  msgspec.json.encode(reading).decode(),
                                  reading.ts - reports.KEEP_MS)

    def bad_record(self, detail: str) -> None:
        """Audit a record that could not be decoded."""
        self.thread.call(self._bad_record, detail)

    def _bad_record(self, detail: str) -> None:
        with self.store.tx():
            self.store.audit(self.now(), "bad_record", status="error", detail=detail)

    # the clock
    def tick(self) -> int:
        """Escalate, repeat and finish held resolves that are due; returns effects applied."""
        applied = self.thread.call(self._tick)
        if applied:
            self.wake()
        return applied

    def follow(self) -> None:
        """A standby's tick: the canary watch as the leader last saved it (for the nurse
        page's banner and /pipeline), keeping this instance's own late clock."""
        self.thread.call(self._follow)

    def _follow(self) -> None:
        self.ticked_at = self.now()
        self.watch = Watch.restore(self.late_ms, self.store.watch_state(),
                                   self.watch.watching_since)

    def take_over(self) -> None:
        """This instance begins to lead: the state the last leader saved is read afresh, and
        the late clock starts now, as after a restart."""
        self.thread.call(self._take_over)

    def _take_over(self) -> None:
        now = self.now()
        self.polled_at = self.ticked_at = now
        self.watch = Watch.restore(self.late_ms, self.store.watch_state(), now)

    def _tick(self) -> int:
        now, applied = self.now(), 0
        self.ticked_at = now
        with self.store.tx():
            for incident in self.store.open_incidents():
                applied += self._advance(incident, now)
            applied += self._watch_tick(now)
        return applied

    # the canary (CONTRACT section 7): recorded, never paged to a nurse
    def canary_event(self, event: AlertEvent) -> None:
        """A canary's event reached alerting: a round trip (on the store thread, in a tx)."""
        self.watch.round_trip(event, self.now())
        self.store.save_watch_state(self.watch.dump())

    def canary_ingested(self, received_at: int) -> None:
        """Ingest passed a canary reading at `received_at` (on the store thread, in a tx)."""
        self.watch.ingest_passed(received_at)
        self.store.save_watch_state(self.watch.dump())

    def _watch_tick(self, now: int) -> int:
        """Page the operators when round trips are late, resolve when they resume."""
        self.watch.alerting_read(self.kafka_read_at)
        due = self.watch.due(now)
        if due == "page":
            self.watch.opened(self.operators.open(self.watch, now, self.store))
        elif due == "resolve":
            page = self.watch.closed()
            assert page is not None
            self.operators.resolve(page, self.watch, now, self.store)
        else:
            return 0
        self.store.save_watch_state(self.watch.dump())
        return 1

    def _advance(self, incident: Incident, now: int) -> int:
        """What the clock does to one open incident, if anything is due; returns effects."""
        policy = self.oncall.policy(incident.team)
        due_at = lifecycle.next_wakeup(incident, policy)
        if due_at is None or due_at > now:
            return 0
        effects = lifecycle.due(incident, now, policy)
        self._apply(incident, effects, now)
        return len(effects)

    # people
    def ack(self, ref: str, who: str) -> Incident:
        """A person acknowledges the incident (or the alert's incident) `ref`."""
        incident = self.thread.call(self._ack, ref, who)
        self.wake()
        return incident

    def _ack(self, ref: str, who: str) -> Incident:
        now = self.now()
        with self.store.tx():
            incident, _ = self._find(ref)
            if incident is None:
                raise Conflict("this alert was not paged (silenced or not a paging severity)")
            try:
                effects = lifecycle.acknowledge(incident, who, now)
            except ValueError as exc:
                raise Conflict(str(exc)) from None
            self._apply(incident, effects, now)
        return incident

    def resolve(self, ref: str, who: str) -> Incident | None:
        """A person resolves the incident `ref`, or an alert that was never paged (None)."""
        incident = self.thread.call(self._resolve, ref, who)
        if incident is not None:
            self.wake()
        return incident

    def _resolve(self, ref: str, who: str) -> Incident | None:
        now = self.now()
        with self.store.tx():
            incident, row = self._find(ref)
            if incident is None:
                assert row is not None
                self.store.resolve_alert(row["alert_id"], now, who)
                self.store.audit(now, "resolved", patient_id=row["patient_id"],
                                 alert_id=row["alert_id"], actor=who)
                return None
            self.store.resolve_incident_alerts(incident.id, now, who)
            self._apply(incident, lifecycle.resolve_by(incident, who, now), now)
        return incident

    def _find(self, ref: str) -> tuple[Incident | None, Row | None]:
        """An incident by its id, or an alert by its id with the alert's incident."""
        incident = self.store.incident(ref)
        if incident is not None:
            return incident, None
        row = self.store.alert(ref)
        if row is None:
            raise NotFound(ref)
        return (self.store.incident(row["incident_id"]) if row["incident_id"] else None), row

    # decisions -> the store
    def _apply(self, incident: Incident, effects: list[Effect], now: int) -> None:
        """An incident's transition: saved, with its effects' audit rows and intents."""
        self._writer(now)(self.notify.plan(incident, effects, now, self.store))

    def _writer(self, now: int) -> Callable[[Sequence[Record]], None]:
        def write(records: Sequence[Record]) -> None:
            for record in records:
                record.write(self.store, now)

        return write

    # views
    def open_alerts(self) -> list[dict[str, Any]]:
        """Open alerts as the API shows them, worst first, then newest."""
        return self.thread.call(views.open_alerts, self.store, self.public_url)
