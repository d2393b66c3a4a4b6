"""The alerting pipeline of one event, as Alertmanager stages: de-duplicate (by alert_id) ->
silence -> severity filter -> group (per patient, into an incident) -> route (the patient's
team, its escalation step, the schedule's person on duty) -> notification intents.

Every method runs one SQLite transaction that records the event, the new state, the audit rows
and the intents together; the dispatcher sends intents afterwards. Time comes from the injected
clock (seconds, like `time.time`), so tests drive escalation without sleeping.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from alerting import lifecycle as lc
from alerting import silences
from alerting.lifecycle import SEVERITY_RANK, Ack, Effect, Incident, Page, Policy, Resolve
from alerting.notify.base import Facts
from alerting.oncall import OnCall
from alerting.store import Store
from vitals.patients import PatientRegistry
from vitals.records import AlertEvent, TrendPoint

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TREND_KEEP_MS = 6 * 3600_000  # the nurse page shows the last hours
GLOBAL_WEBHOOK = "VITALS_WEBHOOK_URL"
ADDRESS = {"pagerduty": "routing_key", "webhook": "url", "email": "to"}


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class Alerting:
    def __init__(self, store: Store, oncall: OnCall, patients: PatientRegistry,
                 notifiers: dict[str, Any], clock: Clock, public_url: str,
                 webhook_url: str | None = None, wake: Callable[[], None] = lambda: None
                 ) -> None:
        self.store = store
        self.oncall = oncall
        self.patients = patients
        self.notifiers = notifiers  # channel -> Notifier; a channel without one is skipped
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.webhook_url = webhook_url
        self.wake = wake
        self.duplicates = 0

    def now(self) -> int:
        return int(self.clock() * 1000)

    def policy(self, team: str) -> Policy:
        t = self.oncall.teams.get(team)
        if t is None:  # removed from the on-call file while an incident was open: no steps
            return Policy((0,), None, int(self.oncall.paging.resolve_hold_min * lc.MIN))
        repeat = self.oncall.repeat_min(team)
        return Policy(tuple(int(s.after_min * lc.MIN) for s in t.escalation),
                      int(repeat * lc.MIN) if repeat else None,
                      int(self.oncall.paging.resolve_hold_min * lc.MIN))

    # events from the rules
    def handle(self, ev: AlertEvent) -> str:
        """Record one alert event; returns what became of it (for logs and tests)."""
        with self.store.tx():
            outcome = self._handle(ev, self.now())
        if outcome not in ("duplicate",):
            self.wake()
        return outcome

    def _handle(self, ev: AlertEvent, now: int) -> str:
        s = self.store
        known = s.alert(ev.alert_id)
        d = msgspec.to_builtins(ev)
        if ev.status == "resolved":
            if known is not None and known["status"] == "resolved":
                self.duplicates += 1
                return "duplicate"
            s.audit(now, "cleared", patient_id=ev.patient_id, alert_id=ev.alert_id,
                    detail=ev.summary[:500])
            if known is None:  # cleared before we saw it fire (we started late): record it
                s.insert_alert(d, "cleared_unseen", None, now)
                return "cleared"
            s.resolve_alerts("alert_id=?", (ev.alert_id,), now, None)
            iid = known["incident_id"]
            inc = s.incident(iid) if iid else None
            if inc is not None and inc.open and not s.alerts_of(inc.id, firing_only=True):
                self._apply(inc, lc.all_cleared(inc, now, self.policy(inc.team)), now)
            return "cleared"
        if known is not None:  # the same alert again (a rule worker restart): nothing changes
            self.duplicates += 1
            return "duplicate"
        s.audit(now, "received", patient_id=ev.patient_id, alert_id=ev.alert_id,
                status=ev.severity, detail=ev.summary[:500])
        patient = self.patients.get(ev.patient_id)
        silence = silences.matching(s, ev.patient_id, ev.rule, now)
        if silence is not None:
            s.insert_alert(d, "silenced", None, now)
            s.audit(now, "not_paged", patient_id=ev.patient_id, alert_id=ev.alert_id,
                    detail=f"silenced by silence {silence['id']}: {silence['reason']}")
            return "silenced"
        if not self.oncall.pages(ev.severity):
            s.insert_alert(d, "not_paging", None, now)
            return "not_paging"
        if patient is None or patient.team not in self.oncall.teams:
            s.insert_alert(d, "no_team", None, now)
            s.audit(now, "not_paged", patient_id=ev.patient_id, alert_id=ev.alert_id,
                    status="error", detail="patient not enrolled or team without escalation")
            log.error("alert %s: patient %s has no on-call team; recorded, not paged",
                      ev.alert_id, ev.patient_id)
            return "no_team"
        inc = s.open_incident_of(ev.patient_id)
        p = self.policy(patient.team)
        if inc is None:
            inc, effects = lc.open_incident(f"{ev.patient_id}-{now}", ev.patient_id,
                                            patient.team, ev.severity, now, p)
            outcome = "paged"
        else:
            effects = lc.add_alert(inc, ev.severity, now, p)
            outcome = "paged_again" if effects else "grouped"
        s.insert_alert(d, "paged", inc.id, now)
        self._apply(inc, effects, now)
        return outcome

    def trend(self, point: TrendPoint) -> None:
        with self.store.tx():
            self.store.add_trend(point.patient_id, point.ts, msgspec.json.encode(point).decode(),
                                 point.ts - TREND_KEEP_MS)

    # the clock
    def tick(self) -> int:
        """Escalate, repeat and finish held resolves that are due; returns effects applied."""
        now, n = self.now(), 0
        with self.store.tx():
            for inc in self.store.open_incidents():
                p = self.policy(inc.team)
                wake = lc.next_wakeup(inc, p)
                if wake is None or wake > now:
                    continue
                effects = lc.due(inc, now, p)
                self._apply(inc, effects, now)
                n += len(effects)
        if n:
            self.wake()
        return n

    # people
    def _find(self, ref: str) -> tuple[Incident | None, Any]:
        inc = self.store.incident(ref)
        if inc is not None:
            return inc, None
        row = self.store.alert(ref)
        if row is None:
            raise NotFound(ref)
        return (self.store.incident(row["incident_id"]) if row["incident_id"] else None), row

    def ack(self, ref: str, who: str) -> Incident:
        now = self.now()
        with self.store.tx():
            inc, _ = self._find(ref)
            if inc is None:
                raise Conflict("this alert was not paged (silenced or not a paging severity)")
            try:
                effects = lc.acknowledge(inc, who, now)
            except ValueError as exc:
                raise Conflict(str(exc)) from None
            self._apply(inc, effects, now)
        self.wake()
        return inc

    def resolve(self, ref: str, who: str) -> Incident | None:
        now = self.now()
        with self.store.tx():
            inc, row = self._find(ref)
            if inc is None:
                self.store.resolve_alerts("alert_id=?", (row["alert_id"],), now, who)
                self.store.audit(now, "resolved", patient_id=row["patient_id"],
                                 alert_id=row["alert_id"], actor=who)
                return None
            self.store.resolve_alerts("incident_id=?", (inc.id,), now, who)
            self._apply(inc, lc.resolve_by(inc, who, now), now)
        self.wake()
        return inc

    # effects -> intents
    def facts(self, inc: Incident, step: int | None, actor: str | None = None) -> Facts:
        rows = self.store.alerts_of(inc.id, firing_only=True) or self.store.alerts_of(inc.id)
        alerts = sorted((json.loads(r["event"]) for r in rows),
                        key=lambda a: (-SEVERITY_RANK[a["severity"]], -a["detected_at"]))
        return Facts(inc.id, inc.patient_id, inc.severity, alerts, step,
                     f"{self.public_url}/alerts/{inc.id}", inc.state, actor,
                     {"team": inc.team})

    def _apply(self, inc: Incident, effects: list[Effect], now: int) -> None:
        s = self.store
        s.save_incident(inc)
        team = self.oncall.teams.get(inc.team)
        at = dt.datetime.fromtimestamp(now / 1000, dt.UTC)
        for e in effects:
            if isinstance(e, Page) and team is None:
                s.audit(now, "not_paged", patient_id=inc.patient_id, incident_id=inc.id,
                        status="error", detail=f"team {inc.team} is not in the on-call file")
            elif isinstance(e, Page):
                for step in e.steps:
                    facts = self.facts(inc, step)
                    s.audit(now, "page", patient_id=inc.patient_id, incident_id=inc.id,
                            status=inc.severity, detail=f"step {step + 1} ({e.reason})")
                    for name in team.escalation[step].notify:
                        person, target = self.oncall.resolve(name, at)
                        for channel in ("pagerduty", "webhook", "email"):
                            address = getattr(target, channel)
                            if address:
                                self._intent(inc, channel, person, "trigger", step, facts,
                                             address, now)
                if self.webhook_url:
                    self._intent(inc, "webhook", GLOBAL_WEBHOOK, "trigger", max(e.steps),
                                 self.facts(inc, max(e.steps)), self.webhook_url, now)
            else:
                action = "acknowledge" if isinstance(e, Ack) else "resolve"
                assert isinstance(e, Ack | Resolve)
                s.audit(now, "acknowledged" if action == "acknowledge" else "resolved",
                        patient_id=inc.patient_id, incident_id=inc.id, actor=e.by,
                        detail="by a person" if e.by else "the rules cleared every alert")
                facts = self.facts(inc, inc.step, e.by)
                for row in s.paged_targets(inc.id):
                    if row["channel"] == "email":
                        continue  # a mail per ack would only add to the alarm burden
                    address = json.loads(row["request"])[ADDRESS[row["channel"]]]
                    self._intent(inc, row["channel"], row["target"], action, None, facts,
                                 address, now)

    def _intent(self, inc: Incident, channel: str, target: str, action: str, step: int | None,
                facts: Facts, address: str, now: int) -> None:
        notifier = self.notifiers.get(channel)
        if notifier is None:
            self.store.audit(now, "not_sent", patient_id=inc.patient_id, incident_id=inc.id,
                             channel=channel, target=target, status="error",
                             detail=f"{action}: channel {channel} is not configured")
            return
        self.store.add_intent(inc, channel, target, action, step,
                              notifier.request(action, facts, address), now)

    # views
    def open_alerts(self) -> list[dict[str, Any]]:
        out, incidents = [], {}
        for r in self.store.open_alerts():
            ev = json.loads(r["event"])
            iid = r["incident_id"]
            if iid and iid not in incidents:
                incidents[iid] = self.store.incident(iid)
            inc = incidents.get(iid) if iid else None
            state = inc.state if inc else r["disposition"]
            out.append({
                "alert_id": r["alert_id"], "patient_id": r["patient_id"], "rule": r["rule"],
                "severity": r["severity"], "status": r["status"], "state": state,
                "summary": ev.get("summary", ""), "source": ev.get("source", ""),
                "start": ev["start"], "detected_at": ev["detected_at"],
                "day_since_infusion": ev.get("day_since_infusion"),
                "evidence": ev.get("evidence", {}), "incident_id": iid,
                "escalation_step": inc.step + 1 if inc else None,
                "acked_by": inc.acked_by if inc else None,
                "ack_url": f"{self.public_url}/alerts/{iid or r['alert_id']}",
                "delivery_errors": self.store.delivery_errors(iid) if iid else [],
            })
        out.sort(key=lambda a: (-SEVERITY_RANK[a["severity"]], -a["detected_at"]))
        return out
