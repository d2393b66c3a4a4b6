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

from dataclasses import dataclass, field

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}
MIN = 60_000


@dataclass(frozen=True)
class Policy:
    """A team's escalation: step k pages when unacknowledged `after_ms[k]` after the base."""

    after_ms: tuple[int, ...]
    repeat_ms: int | None = None  # the last step repeats at this interval
    hold_ms: int = 0  # how long a cleared incident waits before it resolves


@dataclass(frozen=True)
class Page:
    steps: tuple[int, ...]
    reason: str  # new, escalate, repeat, worse


@dataclass(frozen=True)
class Ack:
    by: str


@dataclass(frozen=True)
class Resolve:
    by: str | None  # None: the rules cleared it


Effect = Page | Ack | Resolve


@dataclass
class Incident:
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
        return self.state != "resolved"


def _schedule(inc: Incident, p: Policy) -> None:
    if inc.state != "paged":
        inc.next_at = None
    elif inc.step + 1 < len(p.after_ms):
        inc.next_at = inc.esc_base + p.after_ms[inc.step + 1]
    elif p.repeat_ms:
        inc.next_at = inc.last_paged_at + p.repeat_ms
    else:
        inc.next_at = None


def open_incident(iid: str, patient_id: str, team: str, severity: str, now: int, p: Policy
                  ) -> tuple[Incident, list[Effect]]:
    """A first paging alert: step 0 is paged at once (whatever its after_min)."""
    inc = Incident(iid, patient_id, team, severity, now, esc_base=now, last_paged_at=now)
    _schedule(inc, p)
    return inc, [Page((0,), "new")]


def add_alert(inc: Incident, severity: str, now: int, p: Policy) -> list[Effect]:
    """Another paging alert for the patient joins the open incident."""
    effects: list[Effect] = []
    if inc.state == "resolving":  # the flap: back to where it was, no new page
        inc.state = inc.before_resolving or "paged"
        inc.resolving_since = inc.before_resolving = None
    if SEVERITY_RANK[severity] > SEVERITY_RANK[inc.severity]:
        # Worse: everyone paged so far hears it now, and an ack no longer covers it.
        inc.severity = severity
        inc.state = "paged"
        inc.acked_by = inc.acked_at = None
        inc.esc_base = now - p.after_ms[min(inc.step, len(p.after_ms) - 1)]
        inc.last_paged_at = now
        effects.append(Page(tuple(range(inc.step + 1)), "worse"))
    _schedule(inc, p)
    return effects


def due(inc: Incident, now: int, p: Policy) -> list[Effect]:
    """What the clock makes happen: escalation steps, repeats, and held resolves."""
    if inc.state == "resolving" and inc.resolving_since is not None:
        if now >= inc.resolving_since + p.hold_ms:
            return _resolve(inc, None, now)
        return []
    if inc.state != "paged" or inc.next_at is None or now < inc.next_at:
        return []
    new_steps = [k for k in range(inc.step + 1, len(p.after_ms))
                 if now >= inc.esc_base + p.after_ms[k]]
    if new_steps:  # several at once only after downtime: each step is still paged once
        inc.step = new_steps[-1]
        inc.last_paged_at = now
        _schedule(inc, p)
        return [Page(tuple(new_steps), "escalate")]
    inc.last_paged_at = now
    _schedule(inc, p)
    return [Page((inc.step,), "repeat")]


def acknowledge(inc: Incident, by: str, now: int) -> list[Effect]:
    if inc.state == "resolved":
        raise ValueError("already resolved")
    if inc.acked_by is not None and inc.state in ("acknowledged", "resolving"):
        return []  # a second click changes nothing
    inc.acked_by, inc.acked_at = by, now
    if inc.state == "resolving":
        inc.before_resolving = "acknowledged"
    else:
        inc.state = "acknowledged"
    inc.next_at = None
    return [Ack(by)]


def all_cleared(inc: Incident, now: int, p: Policy) -> list[Effect]:
    """Every alert of the incident has cleared (resolved events from the rules)."""
    if inc.state in ("resolved", "resolving"):
        return []
    if p.hold_ms <= 0:
        return _resolve(inc, None, now)
    inc.before_resolving, inc.state, inc.resolving_since = inc.state, "resolving", now
    inc.next_at = None
    return []


def resolve_by(inc: Incident, by: str, now: int) -> list[Effect]:
    if inc.state == "resolved":
        return []
    return _resolve(inc, by, now)


def _resolve(inc: Incident, by: str | None, now: int) -> list[Effect]:
    inc.state, inc.resolved_by, inc.resolved_at = "resolved", by, now
    inc.next_at = inc.resolving_since = inc.before_resolving = None
    return [Resolve(by)]


def next_wakeup(inc: Incident, p: Policy) -> int | None:
    if inc.state == "resolving" and inc.resolving_since is not None:
        return inc.resolving_since + p.hold_ms
    return inc.next_at
