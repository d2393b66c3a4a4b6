"""Silences: a patient, a rule, or a patient's rule, muted for a period with a reason (admitted
to hospital, device swap). A silenced alert is recorded and shown, and never pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerting.store import Store


@dataclass(frozen=True)
class SilenceRequest:
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
        for name, v in (("patient_id", patient), ("rule", rule)):
            if v is not None and not (isinstance(v, str) and 0 < len(v) <= 128):
                raise ValueError(f"{name} must be a non-empty string")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a silence needs a reason")
        starts = body.get("starts_at", now)
        if "minutes" in body:
            mins = body["minutes"]
            if not isinstance(mins, int | float) or not 0 < mins <= 60 * 24 * 90:
                raise ValueError("minutes must be between 0 and 90 days")
            ends = int(starts + mins * 60_000)
        else:
            ends = body.get("ends_at")
        if not isinstance(starts, int) or not isinstance(ends, int) or ends <= starts:
            raise ValueError("give minutes, or ends_at (epoch ms) after starts_at")
        return cls(patient, rule, starts, ends, reason.strip()[:500])


def add(store: Store, req: SilenceRequest, by: str, now: int) -> int:
    cur = store.db.execute(
        "INSERT INTO silences (patient_id, rule, starts_at, ends_at, reason, created_by,"
        " created_at) VALUES (?,?,?,?,?,?,?)",
        (req.patient_id, req.rule, req.starts_at, req.ends_at, req.reason, by, now))
    sid = int(cur.lastrowid or 0)
    store.audit(now, "silenced", patient_id=req.patient_id, actor=by,
                detail=f"silence {sid}: rule={req.rule or '*'} until {req.ends_at}: "
                       f"{req.reason}")
    return sid


def remove(store: Store, sid: int, by: str, now: int) -> bool:
    row = store.db.execute("SELECT * FROM silences WHERE id=? AND deleted_at IS NULL",
                           (sid,)).fetchone()
    if row is None:
        return False
    store.db.execute("UPDATE silences SET deleted_at=?, deleted_by=? WHERE id=?", (now, by, sid))
    store.audit(now, "unsilenced", patient_id=row["patient_id"], actor=by,
                detail=f"silence {sid} removed")
    return True


def active(store: Store, now: int) -> list[dict[str, Any]]:
    rows = store.db.execute("SELECT * FROM silences WHERE deleted_at IS NULL AND starts_at<=? "
                            "AND ends_at>? ORDER BY id", (now, now)).fetchall()
    return [dict(r) for r in rows]


def matching(store: Store, patient_id: str, rule: str, now: int) -> dict[str, Any] | None:
    """The first active silence covering this patient's rule, if any."""
    row = store.db.execute(
        "SELECT * FROM silences WHERE deleted_at IS NULL AND starts_at<=? AND ends_at>? "
        "AND (patient_id IS NULL OR patient_id=?) AND (rule IS NULL OR rule=?) "
        "ORDER BY id LIMIT 1", (now, now, patient_id, rule)).fetchone()
    return dict(row) if row else None
