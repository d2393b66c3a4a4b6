"""Each stage on its own, against look-ups held in memory: what it decides (go on, or stop with
an outcome) and what it asks to be written. Then the pipeline's frame, and the verdicts of the
real orchestrator: which stage stops which event."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
import pytest

from alerting.lifecycle import MIN, Ack, Incident, Page, Resolve
from alerting.notify.pagerduty import PagerDuty
from alerting.notify.webhook import Webhook
from alerting.oncall import OnCall
from alerting.stages.clear import Clear
from alerting.stages.dedup import Dedup
from alerting.stages.escalate import Escalate
from alerting.stages.group import Group
from alerting.stages.notify import GLOBAL_WEBHOOK, Notify
from alerting.stages.pipeline import Decision, Flow, Pipeline, Verdict, go_on, stop
from alerting.stages.records import Audit, Intent, RecordAlert, ResolveAlert, SaveIncident
from alerting.stages.route import Route
from alerting.stages.severity import Severity
from alerting.stages.silence import Silence
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings
from vitals.patients import Patient, PatientRegistry

NOW = 1_795_000_900_000
ONCALL = OnCall.model_validate({
    "targets": {"nurse-alice": {"pagerduty": "key-alice"},
                "nurse-bob": {"pagerduty": "key-bob"},
                "registrar": {"pagerduty": "key-registrar", "webhook": "https://hook/registrar",
                              "email": "registrar@example.org"}},
    "schedules": {"ward-nurse": {"timezone": "Europe/London", "start": "2026-11-02T08:00",
                                 "rotation": ["nurse-alice", "nurse-bob"]}},
    "teams": {"haem-a": {"escalation": [{"after_min": 0, "notify": ["ward-nurse"]},
                                        {"after_min": 10, "notify": ["registrar"]}]}},
    "paging": {"severities": ["critical", "error"], "repeat_min": 15, "resolve_hold_min": 5},
})
PATIENTS = PatientRegistry([Patient(id="P001", infusion=dt.date(2026, 11, 18), team="haem-a"),
                            Patient(id="P002", infusion=dt.date(2026, 11, 18), team="gone")])


class Lookups:
    """The stages' look-ups (alerting.store.Lookups) over plain dicts and lists."""

    def __init__(self, alerts: list[dict[str, Any]] = (), incidents: list[Incident] = (),
                 silences: list[dict[str, Any]] = (), paged: list[dict[str, Any]] = ()) -> None:
        self.alerts = {row["alert_id"]: row for row in alerts}
        self.incidents = {incident.id: incident for incident in incidents}
        self.silences = list(silences)
        self.paged = list(paged)

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        return self.alerts.get(alert_id)

    def alerts_of(self, incident_id: str, firing_only: bool = False) -> list[dict[str, Any]]:
        return [row for row in self.alerts.values() if row["incident_id"] == incident_id
                and (row["status"] == "firing" or not firing_only)]

    def incident(self, incident_id: str) -> Incident | None:
        return self.incidents.get(incident_id)

    def open_incident_of(self, patient_id: str) -> Incident | None:
        return next((incident for incident in self.incidents.values()
                     if incident.patient_id == patient_id and incident.open), None)

    def matching_silence(self, patient_id: str, rule: str, now: int) -> dict[str, Any] | None:
        return next((silence for silence in self.silences
                     if silence["patient_id"] in (None, patient_id)
                     and silence["rule"] in (None, rule)), None)

    def paged_targets(self, incident_id: str) -> list[dict[str, Any]]:
        return self.paged

    def reports(self, patient_id: str, since: int, until: int) -> list[dict[str, Any]]:
        return []


def recorded(alert, incident_id: str | None = "P001-1", status: str | None = None
             ) -> dict[str, Any]:
    """An alert row as the store returns it."""
    return {"alert_id": alert.alert_id, "patient_id": alert.patient_id,
            "status": status or alert.status, "incident_id": incident_id,
            "severity": alert.severity, "event": msgspec.to_builtins(alert)}


def incident(**kw: Any) -> Incident:
    return Incident(**{"id": "P001-1", "patient_id": "P001", "team": "haem-a",
                       "severity": "error", "opened_at": 1, **kw})


def audits(decision: Decision) -> list[tuple[str, str | None]]:
    return [(record.event, record.detail) for record in decision.records
            if isinstance(record, Audit)]


# dedup
def test_dedup_lets_a_new_alert_on_and_audits_it_as_received() -> None:
    decision = Dedup().exec(Flow(event(), NOW), Lookups())
    assert not decision.stops and decision.flow == Flow(event(), NOW)
    [received] = decision.records
    assert (received.event, received.alert_id, received.status) == (
        "received", "P001/fever/1795000000000", "error")


def test_dedup_stops_an_alert_already_recorded_and_writes_nothing() -> None:
    decision = Dedup().exec(Flow(event(), NOW), Lookups(alerts=[recorded(event())]))
    assert decision == stop("duplicate")


def test_dedup_stops_a_second_resolve_but_passes_the_first_with_the_alert_as_recorded() -> None:
    cleared = event(status="resolved")
    twice = Dedup().exec(Flow(cleared, NOW), Lookups(alerts=[recorded(cleared)]))
    assert twice == stop("duplicate")
    firing = recorded(event())
    first = Dedup().exec(Flow(cleared, NOW), Lookups(alerts=[firing]))
    assert first.flow is not None and first.flow.known == firing
    assert audits(first) == [("cleared", cleared.summary)]


# silence
def test_a_silenced_event_stops_at_silence_recorded_and_audited() -> None:
    silence = {"id": 7, "patient_id": "P001", "rule": None, "reason": "admitted to hospital"}
    decision = Silence().exec(Flow(event(), NOW), Lookups(silences=[silence]))
    assert decision.stops and decision.outcome == "silenced"
    assert decision.records[0] == RecordAlert(event(), "silenced")
    assert audits(decision) == [("not_paged", "silenced by silence 7: admitted to hospital")]


def test_an_event_no_silence_covers_goes_on_unchanged() -> None:
    other = {"id": 1, "patient_id": "P002", "rule": None, "reason": "x"}
    assert Silence().exec(Flow(event(), NOW), Lookups(silences=[other])) == go_on(
        Flow(event(), NOW))


# severity
@pytest.mark.parametrize("severity", ["warning", "info"])
def test_a_warning_stops_at_severity_recorded_as_not_paging(severity: str) -> None:
    decision = Severity(ONCALL).exec(Flow(event(severity=severity), NOW), Lookups())
    assert decision == stop("not_paging", RecordAlert(event(severity=severity), "not_paging"))


@pytest.mark.parametrize("severity", ["critical", "error"])
def test_a_paging_severity_goes_on(severity: str) -> None:
    flow = Flow(event(severity=severity), NOW)
    assert Severity(ONCALL).exec(flow, Lookups()) == go_on(flow)


# route
def test_route_finds_the_team_and_its_policy() -> None:
    decision = Route(ONCALL, PATIENTS).exec(Flow(event(), NOW), Lookups())
    assert decision.flow is not None and decision.flow.team == "haem-a"
    assert decision.flow.policy is not None
    assert decision.flow.policy.after_ms == (0, 10 * MIN)
    assert decision.flow.policy.repeat_ms == 15 * MIN and decision.flow.policy.hold_ms == 5 * MIN


@pytest.mark.parametrize("patient", ["P404", "P002"])  # not enrolled; a team not in the file
def test_an_unroutable_patient_stops_at_route(patient: str) -> None:
    decision = Route(ONCALL, PATIENTS).exec(Flow(event(patient=patient), NOW), Lookups())
    assert decision.stops and decision.outcome == "no_team"
    assert decision.records[0] == RecordAlert(event(patient=patient), "no_team")
    assert audits(decision) == [("not_paged", "patient not enrolled or team without escalation")]


# group
def test_the_first_alert_of_a_patient_opens_an_incident_named_by_patient_and_time() -> None:
    decision = Group().exec(Flow(event(), NOW), Lookups())
    assert decision.flow is not None and decision.flow.incident is None
    assert decision.flow.incident_id == f"P001-{NOW}"
    assert decision.records == (RecordAlert(event(), "paged", f"P001-{NOW}"),)


def test_a_later_alert_joins_the_open_incident() -> None:
    open_one = incident()
    decision = Group().exec(Flow(event(rule="tachycardia"), NOW), Lookups(incidents=[open_one]))
    assert decision.flow is not None and decision.flow.incident is open_one
    assert decision.records == (RecordAlert(event(rule="tachycardia"), "paged", "P001-1"),)


# escalate
def routed(flow: Flow) -> Flow:
    return dataclasses.replace(flow, team="haem-a", policy=ONCALL.policy("haem-a"))


def test_escalate_opens_a_new_incident_and_pages_step_one_at_once() -> None:
    flow = routed(Flow(event(), NOW, incident_id="P001-x"))
    decision = Escalate().exec(flow, Lookups())
    assert decision.flow is not None and decision.records == ()
    assert decision.flow.outcome == "paged"
    assert decision.flow.effects == (Page((0,), "new"),)
    assert decision.flow.incident is not None and decision.flow.incident.id == "P001-x"


def test_escalate_groups_an_alert_as_bad_and_pages_again_for_a_worse_one() -> None:
    joined = Escalate().exec(routed(Flow(event(), NOW, incident_id="P001-1",
                                         incident=incident())), Lookups())
    assert joined.flow is not None
    assert (joined.flow.outcome, joined.flow.effects) == ("grouped", ())
    worse = Escalate().exec(routed(Flow(event(severity="critical"), NOW, incident_id="P001-1",
                                        incident=incident())), Lookups())
    assert worse.flow is not None and worse.flow.outcome == "paged_again"
    assert worse.flow.effects == (Page((0,), "worse"),)


def test_escalate_holds_the_resolve_when_the_last_alert_clears() -> None:
    flow = Flow(event(status="resolved"), NOW, incident_id="P001-1", incident=incident(),
                policy=ONCALL.policy("haem-a"))
    decision = Escalate().exec(flow, Lookups())
    assert decision.flow is not None and decision.flow.outcome == "cleared"
    assert decision.flow.effects == () and decision.flow.incident.state == "resolving"


# clear
def test_clear_records_an_alert_that_cleared_before_it_was_seen() -> None:
    cleared = event(status="resolved")
    assert Clear(ONCALL).exec(Flow(cleared, NOW), Lookups()) == stop(
        "cleared", RecordAlert(cleared, "cleared_unseen"))


def test_clear_stops_while_another_alert_of_the_incident_still_fires() -> None:
    fever, other = event(), event(rule="tachycardia")
    lookups = Lookups(alerts=[recorded(fever), recorded(other)], incidents=[incident()])
    decision = Clear(ONCALL).exec(Flow(event(status="resolved"), NOW, known=recorded(fever)),
                                  lookups)
    assert decision == stop("cleared", ResolveAlert(fever.alert_id))


def test_clear_passes_the_incident_on_when_its_last_alert_clears() -> None:
    fever = event()
    lookups = Lookups(alerts=[recorded(fever)], incidents=[incident()])
    decision = Clear(ONCALL).exec(Flow(event(status="resolved"), NOW, known=recorded(fever)),
                                  lookups)
    assert decision.records == (ResolveAlert(fever.alert_id),)
    assert decision.flow is not None and decision.flow.incident == incident()
    assert decision.flow.policy == ONCALL.policy("haem-a")


def test_clear_of_an_alert_that_never_paged_only_resolves_it() -> None:
    silenced = recorded(event(), incident_id=None)
    decision = Clear(ONCALL).exec(Flow(event(status="resolved"), NOW, known=silenced),
                                  Lookups(alerts=[silenced]))
    assert decision == stop("cleared", ResolveAlert(silenced["alert_id"]))


# notify
def notify(**kw: Any) -> Notify:
    return Notify(ONCALL, {"pagerduty": PagerDuty("http://pd"), "webhook": Webhook(None)},
                  "https://vitals.example.org/", **kw)


def intents(records: list[Any]) -> list[tuple[str, str, str, int | None]]:
    return [(record.channel, record.target, record.action, record.step) for record in records
            if isinstance(record, Intent)]


def test_notify_pages_the_person_on_duty_and_saves_the_incident_first() -> None:
    lookups = Lookups(alerts=[recorded(event())])
    decision = notify().exec(Flow(event(), NOW, incident=incident(),
                                  effects=(Page((0,), "new"),)), lookups)
    assert decision.records[0] == SaveIncident(incident())
    assert audits(decision) == [("page", "step 1 (new)")]
    assert intents(list(decision.records)) == [("pagerduty", "nurse-alice", "trigger", 0)]
    [intent] = [record for record in decision.records if isinstance(record, Intent)]
    assert intent.request["routing_key"] == "key-alice"
    assert intent.request["dedup_key"] == "P001-1"
    assert intent.request["payload"]["custom_details"]["ack_url"] == (
        "https://vitals.example.org/alerts/P001-1")


def test_notify_reaches_every_channel_of_a_target_and_audits_the_unconfigured_one() -> None:
    records = notify().plan(incident(step=1), [Page((1,), "escalate")], NOW,
                            Lookups(alerts=[recorded(event())]))
    assert intents(records) == [("pagerduty", "registrar", "trigger", 1),
                                ("webhook", "registrar", "trigger", 1)]
    not_sent = [record for record in records if isinstance(record, Audit)
                and record.event == "not_sent"]
    assert [(record.channel, record.target, record.detail) for record in not_sent] == [
        ("email", "registrar", "trigger: channel email is not configured")]


def test_notify_pages_several_steps_after_downtime_and_the_feed_once() -> None:
    records = notify(webhook_url="https://feed").plan(
        incident(step=1), [Page((0, 1), "escalate")], NOW, Lookups(alerts=[recorded(event())]))
    assert intents(records) == [("pagerduty", "nurse-alice", "trigger", 0),
                                ("pagerduty", "registrar", "trigger", 1),
                                ("webhook", "registrar", "trigger", 1),
                                ("webhook", GLOBAL_WEBHOOK, "trigger", 1)]


def test_notify_tells_everyone_paged_of_an_ack_except_by_mail() -> None:
    paged = [{"channel": "pagerduty", "target": "nurse-alice",
              "request": {"routing_key": "key-alice"}},
             {"channel": "webhook", "target": "registrar", "request": {"url": "https://hook"}},
             {"channel": "email", "target": "registrar", "request": {"to": "r@example.org"}}]
    records = notify().plan(incident(state="acknowledged"), [Ack("bob")], NOW,
                            Lookups(alerts=[recorded(event())], paged=paged))
    assert [(record.event, record.actor) for record in records
            if isinstance(record, Audit)] == [("acknowledged", "bob")]
    assert intents(records) == [("pagerduty", "nurse-alice", "acknowledge", None),
                                ("webhook", "registrar", "acknowledge", None)]
    [hook] = [record for record in records if isinstance(record, Intent)
              and record.channel == "webhook"]
    assert hook.request["url"] == "https://hook" and hook.request["body"]["by"] == "bob"


def test_notify_resolve_by_the_rules_names_nobody() -> None:
    records = notify().plan(incident(state="resolved"), [Resolve(None)], NOW,
                            Lookups(alerts=[recorded(event(), status="resolved")]))
    assert [(record.event, record.actor, record.detail) for record in records
            if isinstance(record, Audit)] == [
        ("resolved", None, "the rules cleared every alert")]


def test_notify_cannot_page_a_team_gone_from_the_oncall_file() -> None:
    records = notify().plan(incident(team="gone"), [Page((0,), "repeat")], NOW, Lookups())
    assert [(record.event, record.status) for record in records
            if isinstance(record, Audit)] == [("not_paged", "error")]
    assert intents(records) == []


# the pipeline
class Named:
    """A stage that records what it saw and answers as told."""

    def __init__(self, name: str, answer: Any, seen: list[Any]) -> None:
        self.name, self.answer, self.seen = name, answer, seen

    def exec(self, flow: Flow, lookups: Any) -> Decision:
        self.seen.append((self.name, list(lookups.written)))
        return self.answer(flow) if callable(self.answer) else self.answer


class Written:
    def __init__(self) -> None:
        self.written: list[Any] = []


def test_the_pipeline_stops_at_the_first_stage_that_drops_the_event() -> None:
    seen: list[Any] = []
    mark = Audit("received")
    pipeline = Pipeline(Named("a", lambda flow: go_on(flow, mark), seen),
                        Named("b", stop("silenced", Audit("not_paged")), seen),
                        Named("c", lambda flow: go_on(flow), seen))
    written = Written()
    verdict = pipeline.run(Flow(event(), NOW), written, written.written.extend)
    assert verdict == Verdict("b", "silenced")
    # b saw a's record already written; c never ran
    assert seen == [("a", []), ("b", [mark])]
    assert written.written == [mark, Audit("not_paged")]
    assert pipeline.names == ("a", "b", "c")


def test_a_pipeline_run_to_the_end_has_the_last_stage_and_the_flow_outcome() -> None:
    pipeline = Pipeline(Named("a", lambda flow: go_on(dataclasses.replace(
        flow, outcome="paged")), []), Named("z", lambda flow: go_on(flow), []))
    written = Written()
    assert pipeline.run(Flow(event(), NOW), written, written.written.extend) == Verdict(
        "z", "paged")


# the real orchestrator: which stage decides
def test_each_kind_of_event_is_decided_by_its_stage(tmp_path: Path,
                                                     receiver: PagerDutyStandIn) -> None:
    clock = Clock()
    core, _ = build(make_settings(tmp_path, receiver, hold=5), clock)
    assert core.firing.names == ("dedup", "silence", "severity", "route", "group", "escalate",
                                 "notify")
    assert core.clearing.names == ("dedup", "clear", "escalate", "notify")
    assert core.process(event()) == Verdict("notify", "paged")
    assert core.process(event()) == Verdict("dedup", "duplicate")
    assert core.process(event(rule="desaturation", severity="warning")) == Verdict(
        "severity", "not_paging")
    assert core.process(event(patient="P404")) == Verdict("route", "no_team")
    assert core.process(event(rule="tachycardia", start=1_795_000_060_000)) == Verdict(
        "notify", "grouped")
    assert core.process(event(status="resolved")) == Verdict("clear", "cleared")
    assert core.process(event(rule="tachycardia", start=1_795_000_060_000,
                              status="resolved")) == Verdict("notify", "cleared")
    assert core.process(event(status="resolved")) == Verdict("dedup", "duplicate")
    with core.store.tx():
        core.store.add_silence("P002", None, core.now(), core.now() + 60 * MIN, "admitted",
                               "alice", core.now())
    assert core.process(event(patient="P002")) == Verdict("silence", "silenced")
    assert core.duplicates == 2
    core.close()
