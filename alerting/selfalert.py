"""The self-alert: when alerting itself cannot go on (its state store failed), it tells the
operators before it exits, over PagerDuty, straight from memory (the outbox is in the store
that failed). CONTRACT section 7: `payload.source` "vitals", `payload.class` "pipeline",
severity critical, to the on-call file's `operators:` team (its first step), or, without one,
to every team's first step: someone must learn that patients' alerts are not being paged."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
from typing import Any

from alerting.notify.base import http_session, post
from alerting.oncall import OnCall

log = logging.getLogger(__name__)
DEDUP_KEY = "vitals-alerting-down"


def routing_keys(oncall: OnCall, now: dt.datetime) -> list[str]:
    """The PagerDuty routing keys of the operators' first step, else of every team's."""
    operators = getattr(oncall, "operators", None)  # CONTRACT section 7 (on-call file, v1.1)
    teams = [operators] if operators in oncall.teams else list(oncall.teams)
    keys: list[str] = []
    for team in teams:
        for name in oncall.teams[team].escalation[0].notify:
            _, target = oncall.resolve(name, now)
            if target.pagerduty and target.pagerduty not in keys:
                keys.append(target.pagerduty)
    return keys


def event(routing_key: str, reason: str, now: dt.datetime) -> dict[str, Any]:
    """The trigger for one routing key."""
    return {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": DEDUP_KEY,
        "client": "vitals alerting",
        "payload": {
            "summary": ("vitals alerting is down and cannot page patients' alerts: "
                        + reason)[:1024],
            "source": "vitals", "class": "pipeline", "severity": "critical",
            "component": "alerting", "timestamp": now.isoformat(),
            "custom_details": {"host": socket.gethostname(), "reason": reason},
        },
    }


async def page_operators(oncall: OnCall, pagerduty_url: str, reason: str,
                         attempts: int = 3) -> int:
    """Trigger the self-alert at every operator's routing key; how many accepted it.
    Never raises: the service is exiting anyway."""
    now = dt.datetime.now(dt.UTC)
    keys = routing_keys(oncall, now)
    if not keys:
        log.error("self-alert: no PagerDuty routing key to page (no operators: team, and no "
                  "team's first step has one)")
        return 0
    accepted = 0
    async with http_session() as session:
        for key in keys:
            body = json.dumps(event(key, reason, now)).encode()
            for attempt in range(attempts):
                outcome = await post(session, pagerduty_url, body,
                                     {"Content-Type": "application/json"})
                if outcome.ok or not outcome.retry:
                    break
                await asyncio.sleep(0.5 * 2 ** attempt)
            if outcome.ok:
                accepted += 1
            else:
                log.error("self-alert to PagerDuty failed: %s %s", outcome.status,
                          outcome.body[:200])
    return accepted
