"""The operators' page when the canary's round trips are late (CONTRACT section 7): PagerDuty
`payload.source` "vitals", `payload.class` "pipeline", severity critical, to the first step of
the on-call file's `operators:` team (without one, of every team: someone must learn that
patients' pages may be late), and the global webhook. Written as intents in the outbox, like
any page, so the dispatcher retries them through an outage and a restart sends them once.
Resolved at the same addresses when round trips resume (not by e-mail: a mail per resolve only
adds to the alarm burden, as for patients' incidents)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from alerting.notify.base import Facts
from alerting.stages.notify import GLOBAL_WEBHOOK, Delivery, Notify
from alerting.store import Owner, Store
from alerting.watch import OpenPage, Watch, hm

RULE = "pipeline"  # payload.class
SOURCE = "vitals"  # payload.source
SEVERITY = "critical"


class OperatorsPage:
    """Opens and resolves the pipeline's own incident, as outbox intents and audit rows."""

    def __init__(self, notify: Notify, public_url: str) -> None:
        self.notify = notify
        self.public_url = public_url.rstrip("/")

    def deliveries(self, now: int) -> list[Delivery]:
        """The operators' first step (or every team's), then the global webhook."""
        oncall = self.notify.oncall
        teams = [oncall.operators] if oncall.operators else list(oncall.teams)
        at = dt.datetime.fromtimestamp(now / 1000, dt.UTC)
        out: list[Delivery] = []
        for team in teams:
            for delivery in self.notify.deliveries_of_step(oncall.teams[team].escalation[0], at):
                if delivery not in out:
                    out.append(delivery)
        if self.notify.webhook_url:
            out.append(Delivery(GLOBAL_WEBHOOK, "webhook", self.notify.webhook_url))
        return out

    def open(self, watch: Watch, now: int, store: Store) -> OpenPage:
        """Page the operators now: the page's intents and its audit row."""
        page = OpenPage(id=f"pipeline-{watch.since}", since=watch.since, paged_at=now)
        facts = self.facts(page, watch, now)
        for delivery in self.deliveries(now):
            notifier = self.notify.notifiers.get(delivery.channel)
            if notifier is None:
                store.audit(now, "not_sent", incident_id=page.id, channel=delivery.channel,
                            target=delivery.target, status="error",
                            detail=f"trigger: channel {delivery.channel} is not configured")
                continue
            request = self.request("trigger", facts, delivery)
            store.add_intent(Owner(page.id), delivery.channel, delivery.target, "trigger", 0,
                             request, now)
            page.deliveries.append((delivery.channel, delivery.target, delivery.address))
        store.audit(now, "pipeline_late", incident_id=page.id, status=SEVERITY,
                    detail=facts.summary())
        return page

    def resolve(self, page: OpenPage, watch: Watch, now: int, store: Store) -> None:
        """Round trips resumed: resolve the page where it went (e-mail aside), audited."""
        facts = self.facts(page, watch, now, state="resolved")
        for channel, target, address in page.deliveries:
            if channel == "email" or channel not in self.notify.notifiers:
                continue
            request = self.request("resolve", facts, Delivery(target, channel, address))
            store.add_intent(Owner(page.id), channel, target, "resolve", None, request, now)
        store.audit(now, "pipeline_resumed", incident_id=page.id,
                    detail=f"canary round trips resumed; delayed since {hm(page.since)}")

    def facts(self, page: OpenPage, watch: Watch, now: int, state: str = "paged") -> Facts:
        """The pipeline's incident as the notifiers' facts: one `pipeline` alert."""
        summary = watch.summary() if state == "paged" else (
            f"Monitoring pipeline back: canary round trips resumed (delayed since "
            f"{hm(page.since)}).")
        alert: dict[str, Any] = {
            "alert_id": page.id, "rule": RULE, "severity": SEVERITY, "summary": summary,
            "source": "CONTRACT section 7: no canary round trip within VITALS_CANARY_LATE_S",
            "start": page.since, "detected_at": page.paged_at,
            "evidence": {"last_round_trip_published": watch.state.last_published,
                         "late_after_s": watch.late_ms / 1000,
                         **{f"{stage}_last_seen": at for stage, at in watch.state.seen.items()}},
        }
        team = self.notify.oncall.operators or "all teams"
        return Facts(page.id, SOURCE, SEVERITY, [alert], 0, f"{self.public_url}/", state,
                     None, {"team": team})

    def request(self, action: str, facts: Facts, delivery: Delivery) -> dict[str, Any]:
        """The channel's request; e-mail in the operators' words, not a patient's page."""
        if delivery.channel == "email":
            return {"to": delivery.address, "subject": f"[vitals pipeline] {facts.summary()}"[:200],
                    "body": facts.summary() + "\n\nRunbook: deploy/README.md, \"The operators' "
                            "page: monitoring delayed\"."}
        return self.notify.notifiers[delivery.channel].request(action, facts, delivery.address)
