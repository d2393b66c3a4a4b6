"""Pure state transitions of an incident: no I/O, the time is passed in (epoch ms).

An incident is one patient's group of concurrent paging alerts; it is what a nurse is paged
about and acknowledges. States: `paged` -> `acknowledged` -> `resolved`, with `resolving` in
between when every alert has cleared: the resolve is held for `hold_ms` so that a rule which
flaps (clears, then fires again minutes later) re-opens the same incident silently instead of
paging anew. A nurse's resolve is immediate.

Every transition returns the effects the caller turns into notifications:
`Page(steps)` (trigger to the targets of those escalation steps), `Ack`, `Resolve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}
MIN = 60_000


def worst_first(alert: Mapping[str, Any]) -> tuple[int, int]:
    """Sort key of alerts: the highest severity first, then the newest."""
    return -SEVERITY_RANK[alert["severity"]], -alert["detected_at"]


@dataclass(frozen=True)
class Policy:
    """A team's escalation: step k pages when unacknowledged `after_ms[k]` after the base."""

    after_ms: tuple[int, ...]
    repeat_ms: int | None = None  # the last step repeats at this interval
    hold_ms: int = 0  # how long a cleared incident waits before it resolves


@dataclass(frozen=True)
class Page:
    """Trigger the targets of these escalation steps."""

    steps: tuple[int, ...]
    reason: str  # new, escalate, repeat, worse


@dataclass(frozen=True)
class Ack:
    """Tell everyone paged that a person acknowledged."""

    by: str


@dataclass(frozen=True)
class Resolve:
    """Tell everyone paged that the incident is resolved."""

    by: str | None  # None: the rules cleared it


Effect = Page | Ack | Resolve


@dataclass
class Incident:
    """One patient's group of concurrent paging alerts: what a nurse is paged about."""

    id: str
    patient_id: str
    team: str
    severity: str  # the worst paging severity seen; a worse one pages again at once
    opened_at: int
    state: str = "paged"
    esc_base: int = 0  # step k is due at esc_base + after_ms[k]
    step: int = 0  # the highest step paged so far
    last_paged_at: int = 0
    next_at: int | None = None
    acked_by: str | None = None
    acked_at: int | None = None
    resolving_since: int | None = None
    before_resolving: str | None = None
    resolved_by: str | None = None
    resolved_at: int | None = None
    history: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        """Whether it is not resolved yet."""
        return self.state != "resolved"


def _schedule(incident: Incident, policy: Policy) -> None:
    """When the clock next has something to do for a paged incident."""
    if incident.state != "paged":
        incident.next_at = None
    elif incident.step + 1 < len(policy.after_ms):
        incident.next_at = incident.esc_base + policy.after_ms[incident.step + 1]
    elif policy.repeat_ms:
        incident.next_at = incident.last_paged_at + policy.repeat_ms
    else:
        incident.next_at = None


def open_incident(incident_id: str, patient_id: str, team: str, severity: str, now: int,
                  policy: Policy) -> tuple[Incident, list[Effect]]:
    """A first paging alert: step 0 is paged at once (whatever its after_min)."""
    incident = Incident(incident_id, patient_id, team, severity, now, esc_base=now,
                        last_paged_at=now)
    _schedule(incident, policy)
    return incident, [Page((0,), "new")]


def add_alert(incident: Incident, severity: str, now: int, policy: Policy) -> list[Effect]:
    """Another paging alert for the patient joins the open incident."""
    effects: list[Effect] = []
    if incident.state == "resolving":  # the flap: back to where it was, no new page
        incident.state = incident.before_resolving or "paged"
        incident.resolving_since = incident.before_resolving = None
    if SEVERITY_RANK[severity] > SEVERITY_RANK[incident.severity]:
        # Worse: everyone paged so far hears it now, and an ack no longer covers it.
        incident.severity = severity
        incident.state = "paged"
        incident.acked_by = incident.acked_at = None
        incident.esc_base = now - policy.after_ms[min(incident.step, len(policy.after_ms) - 1)]
        incident.last_paged_at = now
        effects.append(Page(tuple(range(incident.step + 1)), "worse"))
    _schedule(incident, policy)
    return effects


def due(incident: Incident, now: int, policy: Policy) -> list[Effect]:
    """What the clock makes happen: escalation steps, repeats, and held resolves."""
    if incident.state == "resolving" and incident.resolving_since is not None:
        if now >= incident.resolving_since + policy.hold_ms:
            return _resolve(incident, None, now)
        return []
    if incident.state != "paged" or incident.next_at is None or now < incident.next_at:
        return []
    new_steps = [step for step in range(incident.step + 1, len(policy.after_ms))
                 if now >= incident.esc_base + policy.after_ms[step]]
    if new_steps:  # several at once only after downtime: each step is still paged once
        incident.step = new_steps[-1]
        incident.last_paged_at = now
        _schedule(incident, policy)
        return [Page(tuple(new_steps), "escalate")]
    incident.last_paged_at = now
    _schedule(incident, policy)
    return [Page((incident.step,), "repeat")]


def acknowledge(incident: Incident, by: str, now: int) -> list[Effect]:
    """A person acknowledges: escalation stops (ValueError when already resolved)."""
    if incident.state == "resolved":
        raise ValueError("already resolved")
    if incident.acked_by is not None and incident.state in ("acknowledged", "resolving"):
        return []  # a second click changes nothing
    incident.acked_by, incident.acked_at = by, now
    if incident.state == "resolving":
        incident.before_resolving = "acknowledged"
    else:
        incident.state = "acknowledged"
    incident.next_at = None
    return [Ack(by)]


def all_cleared(incident: Incident, now: int, policy: Policy) -> list[Effect]:
    """Every alert of the incident has cleared (resolved events from the rules)."""
    if incident.state in ("resolved", "resolving"):
        return []
    if policy.hold_ms <= 0:
        return _resolve(incident, None, now)
    incident.before_resolving = incident.state
    incident.state, incident.resolving_since = "resolving", now
    incident.next_at = None
    return []


def resolve_by(incident: Incident, by: str, now: int) -> list[Effect]:
    """A person resolves: at once, no hold."""
    if incident.state == "resolved":
        return []
    return _resolve(incident, by, now)


def _resolve(incident: Incident, by: str | None, now: int) -> list[Effect]:
    incident.state, incident.resolved_by, incident.resolved_at = "resolved", by, now
    incident.next_at = incident.resolving_since = incident.before_resolving = None
    return [Resolve(by)]


def next_wakeup(incident: Incident, policy: Policy) -> int | None:
    """When `due` next has something to do (epoch ms), or None."""
    if incident.state == "resolving" and incident.resolving_since is not None:
        return incident.resolving_since + policy.hold_ms
    return incident.next_at
