"""A generic JSON webhook with the same facts as a PagerDuty page, signed as Stripe signs its
webhooks: a timestamp and an HMAC-SHA256 over "<timestamp>.<raw body>" with the receiving
target's own secret.

    Vitals-Signature: t=1795000000,v1=5257a869e7ec...(64 hex digits)
    X-Vitals-Delivery: 42

- `t` is when the request was sent (Unix seconds); a receiver refuses a delivery whose `t` is
  more than `tolerance_s` (300) from its own clock, so a captured request cannot be replayed
  later. A resend after a restart is signed afresh (new `t`) and keeps its `X-Vitals-Delivery`
  (the intent id), by which a receiver drops repeats within the window.
- `v1` is the hex HMAC-SHA256 of `f"{t}.".encode() + body` with the target's secret: the
  on-call file's `secret_env` of the target (the name of an environment variable holding it),
  else VITALS_WEBHOOK_SECRET. The body names its `receiver` (the URL it was sent to), so two
  receivers never see the same signature even when they share the fallback secret; give each
  its own `secret_env` so that one receiver cannot sign for another.
- `verify(header, body, secret, now)` is what a receiver runs (constant-time comparison; more
  than one `v1` is accepted, for a secret being rotated).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from alerting.notify.base import Facts, Notifier, Outcome, http_session, post

SIGNATURE_HEADER = "Vitals-Signature"
DELIVERY_HEADER = "X-Vitals-Delivery"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>"."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: float) -> str:
    """The Vitals-Signature value: `t=<unix seconds>,v1=<hex>`."""
    t = int(now)
    return f"t={t},v1={signature(secret, t, body)}"


def verify(header: str | None, body: bytes, secret: str, now: float,
           tolerance_s: float = TOLERANCE_S) -> bool:
    """What a receiver does: the header parses, its timestamp is within `tolerance_s` of
    `now` (no replay of an old delivery), and a `v1` matches the HMAC with this receiver's
    secret (constant-time)."""
    if not header:
        return False
    t: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1":
            candidates.append(value)
    if t is None or not candidates or abs(now - t) > tolerance_s:
        return False
    want = signature(secret, t, body)
    return any(hmac.compare_digest(want, got) for got in candidates)


class Webhook(Notifier):
    """A JSON webhook with the same facts as a page, signed with the target's secret."""

    channel = "webhook"

    def __init__(self, secret: str | None, secrets: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.secret = secret  # the fallback: VITALS_WEBHOOK_SECRET
        self.secrets = dict(secrets or {})  # URL -> that target's own secret
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def secret_for(self, url: str) -> str | None:
        """The secret that signs requests to `url`."""
        return self.secrets.get(url) or self.secret

    def request(self, action: str, facts: Facts, address: str) -> dict[str, Any]:
        """The URL and the JSON body (never a secret: requests are stored in the outbox)."""
        body = {
            "event": action,  # trigger, acknowledge, resolve (as PagerDuty's event_action)
            "receiver": address,
            "incident_id": facts.incident_id,
            "patient_id": facts.patient_id,
            "severity": facts.severity,
            "summary": facts.summary(),
            "by": facts.actor,
            **facts.details(),
        }
        return {"url": address, "body": body}

    async def send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        """POST the body, signed now, with X-Vitals-Delivery."""
        if self._session is None:
            self._session = http_session()
        raw = json.dumps(request["body"], sort_keys=True).encode()
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: str(delivery_id)}
        secret = self.secret_for(request["url"])
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, raw, self.clock())
        return await post(self._session, request["url"], raw, headers)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
