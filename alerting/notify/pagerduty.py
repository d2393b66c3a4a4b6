"""PagerDuty Events API v2 (CONTRACT section 4): trigger, acknowledge, resolve.

dedup_key is the incident id (one patient's group of concurrent alerts, stable for its whole
life), so a resend after a restart or a repeat page updates the same PagerDuty alert.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from alerting.notify.base import Facts, Notifier, Outcome, http_session, iso, post


class PagerDuty(Notifier):
    """PagerDuty Events API v2: trigger, acknowledge, resolve; dedup_key = the incident id."""

    channel = "pagerduty"

    def __init__(self, url: str) -> None:
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    def request(self, action: str, facts: Facts, address: str) -> dict[str, Any]:
        """The event for `address` (a routing key); a trigger carries the payload."""
        body: dict[str, Any] = {"routing_key": address, "event_action": action,
                                "dedup_key": facts.incident_id}
        if action == "trigger":
            worst = facts.worst
            body["payload"] = {
                "summary": facts.summary(),
                "source": facts.patient_id,
                "severity": facts.severity,
                "class": worst["rule"],
                "component": "vitals",
                "group": facts.extra.get("team", "vitals"),
                "timestamp": iso(worst["detected_at"]),
                "custom_details": facts.details(),
            }
            body["client"] = "vitals alerting"
            body["client_url"] = facts.ack_url
            body["links"] = [{"href": facts.ack_url, "text": "Acknowledge"}]
        return body

    async def send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        """POST the event to the Events API."""
        if self._session is None:
            self._session = http_session()
        return await post(self._session, self.url, json.dumps(request).encode(),
                          {"Content-Type": "application/json"})

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
