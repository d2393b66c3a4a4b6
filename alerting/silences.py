"""Silences: a patient, a rule, or a patient's rule, muted for a period with a reason (admitted
to hospital, device swap). A silenced alert is recorded and shown, and never pages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from alerting.store import Store

DAY_MS = 86_400_000


@dataclass(frozen=True)
class SilenceRequest:
    """A silence as asked for: whom, what, from when to when, and why."""

    patient_id: str | None
    rule: str | None
    starts_at: int
    ends_at: int
    reason: str

    @classmethod
    def parse(cls, body: Any, now: int, max_ms: int = 7 * DAY_MS) -> SilenceRequest:
        """From the API's JSON: `{patient_id?, rule?, ends_at | minutes, starts_at?, reason}`.

        An end is required (`ends_at` in epoch ms, or `minutes` from the start), in the future,
        at most `max_ms` after now (the on-call file's `paging.silence_max_days`)."""
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
        if not _epoch_ms(starts):
            raise ValueError("starts_at must be epoch milliseconds")
        if "minutes" in body:
            minutes = body["minutes"]
            if not _number(minutes) or not 0 < minutes <= max_ms / 60_000:
                raise ValueError(f"minutes must be more than 0 and at most "
                                 f"{max_ms / DAY_MS:g} days")
            ends = int(starts + minutes * 60_000)
        else:
            ends = body.get("ends_at")
            if ends is None:
                raise ValueError("a silence needs an end: ends_at (epoch ms) or minutes")
            if not _epoch_ms(ends):
                raise ValueError("ends_at must be epoch milliseconds")
        if ends <= max(starts, now):
            raise ValueError("ends_at must be in the future and after starts_at")
        if ends - now > max_ms:
            raise ValueError(f"ends_at is more than {max_ms / DAY_MS:g} days ahead "
                             "(paging.silence_max_days)")
        return cls(patient, rule, starts, ends, reason.strip()[:500])

    @property
    def all_patients(self) -> bool:
        """A rule silenced for every patient."""
        return self.patient_id is None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and (
        math.isfinite(value))


def _epoch_ms(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def add(store: Store, request: SilenceRequest, by: str, now: int) -> int:
    """Record a silence and audit it, in the caller's transaction; returns its id."""
    silence_id = store.add_silence(request.patient_id, request.rule, request.starts_at,
                                   request.ends_at, request.reason, by, now)
    store.audit(now, "silenced", patient_id=request.patient_id, actor=by,
                detail=f"silence {silence_id}: rule={request.rule or '*'} "
                       f"patients={request.patient_id or 'ALL'} until "
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

