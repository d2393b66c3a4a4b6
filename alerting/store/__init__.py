"""The alerting state behind one small interface, so that another database (PostgreSQL) can
stand where SQLite stands without the stages, the dispatcher or the API changing.

`Store` is everything they call, in parts: `Lookups` (what the stages read), `Ledger` (what the
orchestrator writes), `Outbox` (the dispatcher's), `SilenceBook`, `AuditLog`, `TrendLog`,
`WatchLog`.
Reads return mappings (`Row`) whose JSON columns come decoded: an alert's `event`, an intent's
`request`. The implementation is `alerting.store.sqlite.SqliteStore`; its calls block (a commit
waits for the disk), so the service makes them on one thread of their own,
`alerting.store.thread.StoreThread`, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from alerting.lifecycle import Incident

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Owner:
    """Whose notification an intent is, when it is not a patient's incident: the pipeline's
    own page (`alerting.watch`), `patient_id` "vitals" as in its PagerDuty `source`."""

    id: str
    patient_id: str = "vitals"

Lane = tuple[str, str, str]  # (incident_id, channel, target): intents sent in order

# `source` last, as in the table (a column added later) and in the CSV export's columns
AUDIT_FIELDS = ("id", "at", "event", "patient_id", "incident_id", "alert_id", "actor",
                "channel", "target", "status", "detail", "source")


class Lookups(Protocol):
    """What the stages read: recorded alerts, incidents, silences and who was paged."""

    def alert(self, alert_id: str) -> Row | None:
        """The alert as recorded, or None."""
        ...

    def alerts_of(self, incident_id: str, firing_only: bool = False) -> list[Row]:
        """An incident's alerts, oldest first."""
        ...

    def incident(self, incident_id: str) -> Incident | None:
        """One incident, or None."""
        ...

    def open_incident_of(self, patient_id: str) -> Incident | None:
        """The patient's incident that is not resolved, if any."""
        ...

    def matching_silence(self, patient_id: str, rule: str, now: int) -> Row | None:
        """The first active silence covering this patient's rule, if any."""
        ...

    def paged_targets(self, incident_id: str) -> list[Row]:
        """Each (channel, target) paged and not failed, with its last trigger's request."""
        ...

    def reports(self, patient_id: str, since: int, until: int) -> list[Row]:
        """What the patient or a caregiver entered in the app from `since` to `until` (epoch
        ms), newest first: `Reading` dicts."""
        ...


class Ledger(Protocol):
    """What the orchestrator writes: one transaction per event, tick, ack or resolve."""

    def tx(self) -> AbstractContextManager[None]:
        """One transaction; nested uses join the outer one."""
        ...

    def insert_alert(self, event: dict[str, Any], disposition: str, incident_id: str | None,
                     now: int) -> None:
        """Record an alert event (an AlertEvent as builtins) and what became of it."""
        ...

    def resolve_alert(self, alert_id: str, now: int, by: str | None) -> None:
        """Mark one firing alert resolved."""
        ...

    def resolve_incident_alerts(self, incident_id: str, now: int, by: str | None) -> None:
        """Mark every firing alert of an incident resolved."""
        ...

    def save_incident(self, incident: Incident) -> None:
        """Insert or replace an incident."""
        ...

    def open_incidents(self) -> list[Incident]:
        """Every incident that is not resolved."""
        ...

    def open_alerts(self) -> list[Row]:
        """Firing alerts, and the alerts of incidents not yet resolved."""
        ...

    def delivery_errors(self, incident_id: str) -> list[dict[str, Any]]:
        """An incident's intents that failed, or are not delivered yet after retries:
        channel, target, action, status ("failed" or "pending"), response."""
        ...

    def add_intent(self, incident: Incident | Owner, channel: str, target: str, action: str,
                   step: int | None, request: dict[str, Any], now: int) -> int:
        """Put a notification intent in the outbox; returns its id."""
        ...

    def audit(self, at: int, event: str, **fields: Any) -> None:
        """Append an audit row (fields among AUDIT_FIELDS)."""
        ...


class Outbox(Protocol):
    """The dispatcher's view of the outbox."""

    def tx(self) -> AbstractContextManager[None]:
        """One transaction; nested uses join the outer one."""
        ...

    def pending_count(self) -> int:
        """How many intents are not sent yet."""
        ...

    def pending_heads(self) -> list[Row]:
        """The oldest intent not sent yet of each lane, oldest first."""
        ...

    def next_pending(self, lane: Lane) -> Row | None:
        """A lane's oldest intent not sent yet."""
        ...

    def finish_intent(self, intent_id: int, status: str, attempts: int, now: int,
                      response_status: int | None, body: str) -> None:
        """Mark an intent sent or failed, with the receiver's answer."""
        ...

    def audit(self, at: int, event: str, **fields: Any) -> None:
        """Append an audit row."""
        ...


class SilenceBook(Protocol):
    """Silences: added, removed, listed."""

    def add_silence(self, patient_id: str | None, rule: str | None, starts_at: int,
                    ends_at: int, reason: str, by: str, now: int) -> int:
        """Record a silence; returns its id."""
        ...

    def silence(self, silence_id: int) -> Row | None:
        """A silence that was not removed, or None."""
        ...

    def delete_silence(self, silence_id: int, by: str, now: int) -> None:
        """Mark a silence removed."""
        ...

    def active_silences(self, now: int) -> list[dict[str, Any]]:
        """Silences in force at `now`."""
        ...


class AuditLog(Protocol):
    """The audit log."""

    def audit(self, at: int, event: str, **fields: Any) -> None:
        """Append an audit row (fields among AUDIT_FIELDS)."""
        ...

    def audit_rows(self, patient: str | None = None, since: int | None = None,
                   limit: int = 10_000) -> list[dict[str, Any]]:
        """Audit rows, oldest first, of one patient and/or from `since` (epoch ms)."""
        ...


class TrendLog(Protocol):
    """Recent trend points of each patient, for the nurse page's charts."""

    def add_trend(self, patient_id: str, ts: int, point: str, keep_from: int) -> None:
        """Keep one point (JSON) and forget the patient's points before `keep_from`."""
        ...

    def trends(self, patient_id: str) -> list[dict[str, Any]]:
        """A patient's points, oldest first."""
        ...


class ReportLog(Protocol):
    """Recent reports of each patient (what they or a caregiver entered in the app), for the
    nurse page and the pages' details (read through `Lookups.reports`)."""

    def add_report(self, patient_id: str, device_id: str, ts: int, kind: str, report: str,
                   keep_from: int) -> None:
        """Keep one report (JSON; the same again replaces it) and forget the patient's reports
        before `keep_from`."""
        ...

    def latest_reports(self, limit: int) -> list[dict[str, Any]]:
        """The newest reports of all patients, newest first."""
        ...


class WatchLog(Protocol):
    """The canary watch's state (`alerting.watch`), one JSON document, saved with its page."""

    def watch_state(self) -> str | None:
        """The state as last saved, or None."""
        ...

    def save_watch_state(self, state: str) -> None:
        """Replace the state."""
        ...


class Store(Lookups, Ledger, Outbox, SilenceBook, AuditLog, TrendLog, ReportLog, WatchLog,
            Protocol):
    """The whole alerting state: what `alerting` reaches the database through."""

    def location(self) -> str:
        """Where the state is, for the log."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...
