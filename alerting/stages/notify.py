"""Stage `notify`: an incident's effects become audit rows and notification intents, written
before anything is sent (the dispatcher sends them afterwards).

A `Page` pages each of its escalation steps: the step's names become targets (a schedule's
person on duty at page time), each target's channels become deliveries, each delivery one
`trigger` intent; the global webhook (VITALS_WEBHOOK_URL) gets one more. An `Ack` or `Resolve`
goes to every (channel, target) paged so far, except e-mail: a mail per ack or resolve would
only add to the alarm burden. A channel without a notifier is audited as `not_sent`.

The clock, acknowledgements and resolves reach the same code through `Notify.plan`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alerting import reports
from alerting.lifecycle import Ack, Effect, Incident, Page, Resolve, worst_first
from alerting.notify.base import Facts, Notifier
from alerting.oncall import OnCall, Step, Target
from alerting.stages.pipeline import Decision, Flow, go_on
from alerting.stages.records import Audit, Intent, Record, SaveIncident
from alerting.store import Lookups

CHANNELS = ("pagerduty", "webhook", "email")  # the order a target's intents are written in
ADDRESS = {"pagerduty": "routing_key", "webhook": "url", "email": "to"}  # in a stored request
GLOBAL_WEBHOOK = "VITALS_WEBHOOK_URL"  # the target name of the feed of every page


@dataclass(frozen=True)
class Delivery:
    """One way to reach one target: a channel and its address (routing key, URL, e-mail)."""

    target: str
    channel: str
    address: str


def deliveries_of_target(target_name: str, target: Target) -> list[Delivery]:
    """A target's channels that have an address, in CHANNELS order."""
    return [Delivery(target_name, channel, getattr(target, channel)) for channel in CHANNELS
            if getattr(target, channel)]


def follow_up_address(paged: Mapping[str, Any]) -> str:
    """Where an acknowledge or resolve goes: the address of the target's last trigger."""
    return paged["request"][ADDRESS[paged["channel"]]]


class Notify:
    """Turns an incident's effects into audit rows and intents (the last stage)."""

    name = "notify"

    def __init__(self, oncall: OnCall, notifiers: Mapping[str, Notifier], public_url: str,
                 webhook_url: str | None = None) -> None:
        self.oncall = oncall
        self.notifiers = notifiers  # channel -> Notifier; a channel without one is not sent
        self.public_url = public_url.rstrip("/")
        self.webhook_url = webhook_url

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """The flow's incident saved, with the records of its effects."""
        assert flow.incident is not None
        return go_on(flow, *self.plan(flow.incident, flow.effects, flow.now, lookups))

    def plan(self, incident: Incident, effects: tuple[Effect, ...] | list[Effect], now: int,
             lookups: Lookups) -> list[Record]:
        """The incident saved, then each effect's audit rows and intents, in order."""
        records: list[Record] = [SaveIncident(incident)]
        for effect in effects:
            if isinstance(effect, Page):
                records += self.page(incident, effect, now, lookups)
            else:
                records += self.follow_up(incident, effect, lookups)
        return records

    def page(self, incident: Incident, page: Page, now: int, lookups: Lookups) -> list[Record]:
        """Each step of the page, then the global webhook (once, at the highest step)."""
        team = self.oncall.teams.get(incident.team)
        if team is None:
            return [Audit("not_paged", patient_id=incident.patient_id, incident_id=incident.id,
                          status="error", detail=f"team {incident.team} is not in the on-call "
                                                 "file")]
        at = dt.datetime.fromtimestamp(now / 1000, dt.UTC)
        records: list[Record] = []
        for step in page.steps:
            records += self.page_step(incident, step, team.escalation[step], page.reason, at,
                                      lookups)
        if self.webhook_url:
            last = max(page.steps)
            records.append(self.intent(incident, Delivery(GLOBAL_WEBHOOK, "webhook",
                                                          self.webhook_url),
                                       "trigger", last, self.facts(incident, last, lookups)))
        return records

    def page_step(self, incident: Incident, step: int, escalation_step: Step, reason: str,
                  at: dt.datetime, lookups: Lookups) -> list[Record]:
        """One step paged: its audit row, then a trigger per delivery of its targets."""
        facts = self.facts(incident, step, lookups)
        records: list[Record] = [Audit("page", patient_id=incident.patient_id,
                                       incident_id=incident.id, status=incident.severity,
                                       detail=f"step {step + 1} ({reason})")]
        for delivery in self.deliveries_of_step(escalation_step, at):
            records.append(self.intent(incident, delivery, "trigger", step, facts))
        return records

    def deliveries_of_step(self, escalation_step: Step, at: dt.datetime) -> list[Delivery]:
        """Every delivery of a step's targets, a schedule resolved to who is on duty at `at`."""
        deliveries: list[Delivery] = []
        for name in escalation_step.notify:
            target_name, target = self.oncall.resolve(name, at)
            deliveries += deliveries_of_target(target_name, target)
        return deliveries

    def follow_up(self, incident: Incident, effect: Ack | Resolve, lookups: Lookups
                  ) -> list[Record]:
        """An acknowledge or resolve: its audit row, then an intent to each target paged."""
        action = "acknowledge" if isinstance(effect, Ack) else "resolve"
        records: list[Record] = [Audit(
            "acknowledged" if isinstance(effect, Ack) else "resolved",
            patient_id=incident.patient_id, incident_id=incident.id, actor=effect.by,
            detail="by a person" if effect.by else "the rules cleared every alert")]
        facts = self.facts(incident, incident.step, lookups, effect.by)
        for paged in lookups.paged_targets(incident.id):
            if paged["channel"] == "email":
                continue  # a mail per ack would only add to the alarm burden
            delivery = Delivery(paged["target"], paged["channel"], follow_up_address(paged))
            records.append(self.intent(incident, delivery, action, None, facts))
        return records

    def intent(self, incident: Incident, delivery: Delivery, action: str, step: int | None,
               facts: Facts) -> Record:
        """The intent for one delivery, its request built now; `not_sent` without a notifier."""
        notifier = self.notifiers.get(delivery.channel)
        if notifier is None:
            return Audit("not_sent", patient_id=incident.patient_id, incident_id=incident.id,
                         channel=delivery.channel, target=delivery.target, status="error",
                         detail=f"{action}: channel {delivery.channel} is not configured")
        return Intent(incident, delivery.channel, delivery.target, action, step,
                      notifier.request(action, facts, delivery.address))

    def facts(self, incident: Incident, step: int | None, lookups: Lookups,
              actor: str | None = None) -> Facts:
        """The incident as a page: its firing alerts (all, once none fires), worst first."""
        rows = (lookups.alerts_of(incident.id, firing_only=True)
                or lookups.alerts_of(incident.id))
        alerts = sorted((row["event"] for row in rows), key=worst_first)
        extra: dict[str, Any] = {"team": incident.team}
        newest = max(alert["detected_at"] for alert in alerts)
        said = lookups.reports(incident.patient_id, newest - reports.IN_PAGE_MS, newest)
        if said:  # what the patient or a caregiver entered in the app in the day before
            extra["reports"] = reports.in_page(said)
        return Facts(incident.id, incident.patient_id, incident.severity, alerts, step,
                     f"{self.public_url}/alerts/{incident.id}", incident.state, actor, extra)
