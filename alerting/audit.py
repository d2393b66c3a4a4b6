"""The audit log's outside forms: the `since` filter and the CSV export.

Rows are written with the decisions of the stages (alerting.stages.records.Audit), by the
dispatcher and by the API: received, cleared, not_paged, page, notified / delivery_failed
(channel, target, response status), not_sent, acknowledged, resolved (by whom), silenced /
unsilenced, bad_record."""

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
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since: expected epoch ms or an ISO 8601 time, got {value!r}"
                         ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The audit rows as CSV, a UTC time column first; formula-like cells are quoted."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time_utc", *AUDIT_FIELDS])
    for row in rows:
        when = dt.datetime.fromtimestamp(row["at"] / 1000, dt.UTC).isoformat(
            timespec="milliseconds")
        writer.writerow([when, *(_safe(row.get(field)) for field in AUDIT_FIELDS)])
    return out.getvalue()


def _safe(value: Any) -> Any:
    # A cell starting with = + - @ is a formula in spreadsheets; alert text is not trusted.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value
