"""What every channel shares: the facts of a page, their wording, and the Notifier interface.

A notifier turns (action, facts, address) into a request that is stored as an intent before it
is sent, so a resend after a restart is byte-for-byte the same; `send` then delivers a stored
request and classifies the answer: done, retry later (429, 5xx, no connection), or refused.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp

SUMMARY_MAX = 1024  # PagerDuty truncates payload.summary beyond this


@dataclass(frozen=True)
class Outcome:
    """A receiver's answer: done, retry later (429, 5xx, no connection), or refused."""

    ok: bool
    status: int | None  # HTTP status (or SMTP reply code); None when nothing answered
    body: str = ""
    retry: bool = False
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Facts:
    """One incident as a page: the patient, the alerts grouped in it, where escalation is."""

    incident_id: str
    patient_id: str
    severity: str
    alerts: list[dict[str, Any]]  # AlertEvent dicts, worst first
    step: int | None
    ack_url: str
    state: str = "paged"
    actor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def worst(self) -> dict[str, Any]:
        """The alert that leads the page (the highest severity, then the newest)."""
        return self.alerts[0]

    def summary(self) -> str:
        """The worst alert's sentence, then the other alerts' rules; at most 1024 characters.

        The sentence is the rules' (patient, what, how high, since when); 1024 is PagerDuty's
        limit for payload.summary."""
        text = self.worst.get("summary") or f"{self.patient_id}: {self.worst['rule']}"
        others = [alert["rule"] for alert in self.alerts[1:]]
        if others:
            text += f" Also firing: {', '.join(others)}."
        if len(text) > SUMMARY_MAX:
            text = text[:SUMMARY_MAX - 1] + "…"
        return text

    def details(self) -> dict[str, Any]:
        """The evidence, for PagerDuty's custom_details and the webhook."""
        day = next((alert.get("day_since_infusion") for alert in self.alerts
                    if alert.get("day_since_infusion") is not None), None)
        return {
            "patient_id": self.patient_id,
            "incident_id": self.incident_id,
            "escalation_step": self.step,
            "days_since_infusion": day,
            "ack_url": self.ack_url,
            "alerts": [{
                "alert_id": alert["alert_id"], "rule": alert["rule"],
                "severity": alert["severity"], "summary": alert.get("summary", ""),
                "source": alert.get("source", ""), "since": iso(alert["start"]),
                "detected_at": iso(alert["detected_at"]), "late": alert.get("late", False),
                "evidence": alert.get("evidence", {}),
            } for alert in self.alerts],
            **self.extra,
        }

    def plain_text(self) -> str:
        """A body a nurse can act on from a phone: what, how high, since when, trend, why."""
        lines = [f"Patient {self.patient_id}: {self.severity.upper()}", ""]
        for alert in self.alerts:
            evidence = alert.get("evidence") or {}
            lines.append(f"* {alert.get('summary') or alert['rule']}")
            lines.append(f"  rule {alert['rule']} ({alert['severity']}), "
                         f"since {iso(alert['start'])}")
            trend = evidence.get("trend")
            if trend is not None:
                lines.append(f"  trend: {trend}")
            if alert.get("source"):
                lines.append(f"  why: {alert['source']}")
            if alert.get("late"):
                lines.append("  note: judged on readings the device uploaded late")
        said = self.extra.get("reports")
        if said:
            lines += ["", "Entered in the app by the patient or a caregiver (last 24 h):"]
            lines += [f"  {report['at']}  {report['said']}" for report in said]
        day = self.details()["days_since_infusion"]
        if day is not None:
            lines += ["", f"Day {day:.1f} after CAR-T infusion."]
        if self.step is not None:
            lines.append(f"Escalation step {self.step + 1}.")
        lines += ["", f"Acknowledge: {self.ack_url}", "",
                  "What was measured at home; not a diagnosis or a CRS grade."]
        return "\n".join(lines)


def iso(ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 UTC to the second (None stays None)."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


class Notifier(ABC):
    """A channel: builds the request to store as an intent, then sends a stored request."""

    channel: ClassVar[str]

    @abstractmethod
    def request(self, action: str, facts: Facts, address: str) -> dict[str, Any]:
        """The JSON-able request for `address` (routing key, URL, e-mail address)."""

    @abstractmethod
    async def send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        """Deliver a stored request; `delivery_id` (the intent's) is the same on a resend."""

    async def close(self) -> None:  # noqa: B027 - only HTTP notifiers hold a session
        """Close connections, if any."""


def classify(status: int, body: str, retry_after: str | None) -> Outcome:
    """An HTTP answer as an Outcome: 2xx done, 429 and 5xx retried, any other refused."""
    if 200 <= status < 300:
        return Outcome(True, status, body)
    if status == 429 or status >= 500:
        return Outcome(False, status, body, retry=True, retry_after_s=_seconds(retry_after))
    return Outcome(False, status, body)  # 400 and the like: retrying sends the same again


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form
        when = dt.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    except ValueError:
        return None


async def post(session: aiohttp.ClientSession, url: str, body: bytes,
               headers: dict[str, str]) -> Outcome:
    """POST a body; a lost connection or a timeout is an Outcome to retry, not an error."""
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            text = await resp.text(errors="replace")
            return classify(resp.status, text, resp.headers.get("Retry-After"))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}", retry=True)


def http_session() -> aiohttp.ClientSession:
    """The HTTP notifiers' session (10 s per request)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
