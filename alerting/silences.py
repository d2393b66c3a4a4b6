"""Silences: a patient, a rule, or a patient's rule, muted for a period with a reason (admitted
to hospital, device swap). A silenced alert is recorded and shown, and never pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerting.store import Store


@dataclass(frozen=True)
class SilenceRequest:
    """A silence as asked for: whom, what, from when to when, and why."""

    patient_id: str | None
    rule: str | None
    starts_at: int
    ends_at: int
    reason: str

    @classmethod
    def parse(cls, body: Any, now: int) -> SilenceRequest:
        """From the API's JSON: `{patient_id?, rule?, minutes | ends_at, starts_at?, reason}`."""
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        patient, rule = body.get("patient_id"), body.get("rule")
        if not patient and not rule:
            raise ValueError("a silence needs patient_id or rule (or both)")
        for name, value in (("patient_id", patient), ("rule", rule)):
            if value is not None and not (isinstance(value, str) and 0 < len(value) <= 128):
                raise ValueError(f"{name} must be a non-empty string")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a silence needs a reason")
        starts = body.get("starts_at", now)
        if "minutes" in body:
            minutes = body["minutes"]
            if not isinstance(minutes, int | float) or not 0 < minutes <= 60 * 24 * 90:
                raise ValueError("minutes must be between 0 and 90 days")
            ends = int(starts + minutes * 60_000)
        else:
            ends = body.get("ends_at")
        if not isinstance(starts, int) or not isinstance(ends, int) or ends <= starts:
            raise ValueError("give minutes, or ends_at (epoch ms) after starts_at")
        return cls(patient, rule, starts, ends, reason.strip()[:500])


def add(store: Store, request: SilenceRequest, by: str, now: int) -> int:
    """Record a silence and audit it, in the caller's transaction; returns its id."""
    silence_id = store.add_silence(request.patient_id, request.rule, request.starts_at,
                                   request.ends_at, request.reason, by, now)
    store.audit(now, "silenced", patient_id=request.patient_id, actor=by,
                detail=f"silence {silence_id}: rule={request.rule or '*'} until "
                       f"{request.ends_at}: {request.reason}")
    return silence_id


def remove(store: Store, silence_id: int, by: str, now: int) -> bool:
    """End a silence and audit it, in the caller's transaction; False if there is none."""
    silence = store.silence(silence_id)
    if silence is None:
        return False
    store.delete_silence(silence_id, by, now)
    store.audit(now, "unsilenced", patient_id=silence["patient_id"], actor=by,
                detail=f"silence {silence_id} removed")
    return True


def active(store: Store, now: int) -> list[dict[str, Any]]:
    """Silences in force at `now`."""
    return store.active_silences(now)

