"""The audit log's outside forms: the `since` filter and the CSV export.

Rows are written by the stages themselves (store.audit): received, cleared, not_paged, page,
notified / delivery_failed (channel, target, response status), acknowledged, resolved (by whom),
silenced / unsilenced."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from alerting.store import AUDIT_FIELDS


def parse_since(value: str) -> int:
    """Epoch milliseconds, or an ISO 8601 time (UTC when it has no offset)."""
    if value.isdigit():
        return int(value)
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since: expected epoch ms or an ISO 8601 time, got {value!r}"
                         ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["time_utc", *AUDIT_FIELDS])
    for r in rows:
        when = dt.datetime.fromtimestamp(r["at"] / 1000, dt.UTC).isoformat(timespec="milliseconds")
        w.writerow([when, *(_safe(r.get(f)) for f in AUDIT_FIELDS)])
    return out.getvalue()


def _safe(v: Any) -> Any:
    # A cell starting with = + - @ is a formula in spreadsheets; alert text is not trusted.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v
    return "" if v is None else v
