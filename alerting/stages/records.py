"""What the stages ask to be written. A stage only decides; the orchestrator writes its records,
in order, inside the transaction of the event (or tick, ack, resolve): `record.write(ledger,
now)`. Being data, they are what a stage's unit test looks at."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from alerting.lifecycle import Incident
from alerting.store import Ledger
from vitals.records import AlertEvent


class Record(Protocol):
    """Something to write to the store."""

    def write(self, ledger: Ledger, now: int) -> None:
        """Write it, at `now` (epoch ms)."""
        ...


@dataclass(frozen=True)
class Audit:
    """An audit row (alerting/README.md, Audit)."""

    event: str
    patient_id: str | None = None
    incident_id: str | None = None
    alert_id: str | None = None
    actor: str | None = None
    channel: str | None = None
    target: str | None = None
    status: str | None = None
    detail: str | None = None

    def write(self, ledger: Ledger, now: int) -> None:
        """Append the row."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                  if field.name != "event" and getattr(self, field.name) is not None}
        ledger.audit(now, self.event, **fields)


@dataclass(frozen=True)
class RecordAlert:
    """An alert event, kept with what became of it (its disposition).

    paged (into `incident_id`), silenced, not_paging, no_team or cleared_unseen."""

    event: AlertEvent
    disposition: str
    incident_id: str | None = None

    def write(self, ledger: Ledger, now: int) -> None:
        """Insert the alert."""
        ledger.insert_alert(msgspec.to_builtins(self.event), self.disposition, self.incident_id,
                            now)


@dataclass(frozen=True)
class ResolveAlert:
    """A firing alert has cleared (by None: the rules said so)."""

    alert_id: str
    by: str | None = None

    def write(self, ledger: Ledger, now: int) -> None:
        """Mark it resolved."""
        ledger.resolve_alert(self.alert_id, now, self.by)


@dataclass(frozen=True)
class SaveIncident:
    """An incident as it stands after a transition."""

    incident: Incident

    def write(self, ledger: Ledger, now: int) -> None:
        """Insert or replace it."""
        ledger.save_incident(self.incident)


@dataclass(frozen=True)
class Intent:
    """A notification to send, its request exactly as it will go out: stored before sending."""

    incident: Incident
    channel: str
    target: str
    action: str  # trigger, acknowledge, resolve
    step: int | None
    request: dict[str, Any]

    def write(self, ledger: Ledger, now: int) -> None:
        """Put it in the outbox."""
        ledger.add_intent(self.incident, self.channel, self.target, self.action, self.step,
                          self.request, now)
