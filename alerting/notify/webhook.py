"""A generic JSON webhook with the same facts as a PagerDuty page, signed with HMAC-SHA256.

Headers: `X-Vitals-Signature: sha256=<hex of HMAC(secret, raw body)>` and
`X-Vitals-Delivery: <intent id>`, the same on a resend, so a receiver can drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp

from alerting.notify.base import Facts, Notifier, Outcome, http_session, post

SIGNATURE_HEADER = "X-Vitals-Signature"


def sign(secret: str, body: bytes) -> str:
    """The X-Vitals-Signature value of a body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class Webhook(Notifier):
    """A JSON webhook with the same facts as a page, signed when a secret is set."""

    channel = "webhook"

    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self._session: aiohttp.ClientSession | None = None

    def request(self, action: str, facts: Facts, address: str) -> dict[str, Any]:
        """The URL and the JSON body."""
        body = {
            "event": action,  # trigger, acknowledge, resolve (as PagerDuty's event_action)
            "incident_id": facts.incident_id,
            "patient_id": facts.patient_id,
            "severity": facts.severity,
            "summary": facts.summary(),
            "by": facts.actor,
            **facts.details(),
        }
        return {"url": address, "body": body}

    async def send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        """POST the body, signed, with X-Vitals-Delivery."""
        if self._session is None:
            self._session = http_session()
        raw = json.dumps(request["body"], sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "X-Vitals-Delivery": str(delivery_id)}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, raw)
        return await post(self._session, request["url"], raw, headers)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
