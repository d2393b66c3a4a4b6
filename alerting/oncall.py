"""The on-call file (`VITALS_ONCALL`, CONTRACT section 3, extended): targets and their channels,
teams and their escalation steps, weekly rotating schedules, bearer tokens, paging policy.

A name in a team's `notify` list is a target or a schedule; a schedule resolves to the target
on duty at page time (overrides first, then the weekly rotation in the schedule's time zone).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import logging
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from alerting.lifecycle import MIN, Policy
from vitals.configfile import embedded, load_model
from vitals.settings import ConfigError

log = logging.getLogger(__name__)

Severity = Literal["critical", "error", "warning", "info"]
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
Role = Literal["nurse", "lead"]  # nurse: read, ack, resolve; lead: also silences
ROLES: dict[str, int] = {"nurse": 0, "lead": 1}
Secret = Annotated[str, StringConstraints(min_length=16, max_length=200)]


def number(low: float, high: float, *, above: bool = False) -> Any:
    """A finite number of the on-call file within [low, high] (or (low, high] with `above`):
    NaN, infinities, booleans, strings and absurd values stop the command at start."""
    if above:
        return Field(gt=low, le=high, allow_inf_nan=False, strict=True)
    return Field(ge=low, le=high, allow_inf_nan=False, strict=True)


DAY_MIN = 24 * 60


class _Strict(BaseModel):
    """Frozen, and an unknown key is an error that names it."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Strict):
    """A person or a pager; at least one channel."""

    pagerduty: Annotated[str, StringConstraints(min_length=1)] | None = None  # routing key
    webhook: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    # the environment variable holding this target's webhook secret (alerting/notify/webhook.py)
    secret_env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None

    @model_validator(mode="after")
    def _some_channel(self) -> Target:
        if not (self.pagerduty or self.webhook or self.email):
            raise ValueError("needs at least one of pagerduty, webhook, email")
        return self


class Step(_Strict):
    """One escalation step: who is paged once the incident is `after_min` unacknowledged."""

    after_min: Annotated[float, number(0, DAY_MIN)]
    notify: tuple[Name, ...] = Field(min_length=1)


PHONE = re.compile(r"[0-9 +()-]{1,32}")


class Team(_Strict):
    """A team's escalation steps, in order, and the number its patients call."""

    escalation: tuple[Step, ...] = Field(min_length=1)
    repeat_min: Annotated[float, number(1, DAY_MIN)] | None = None  # overrides paging's
    # shown on the patient's page (patient_app) as a tel: link: digits and + - ( ) and
    # spaces only, so it can never be markup or another kind of link
    phone: str | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is not None and (not PHONE.fullmatch(v) or not any(c.isdigit() for c in v)):
            raise ValueError("a phone number is at most 32 characters of digits, spaces, "
                             "+ - ( ), e.g. \"+44 20 7946 0000\"")
        return v

    @field_validator("escalation")
    @classmethod
    def _ordered(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        if any(later.after_min < earlier.after_min
               for earlier, later in itertools.pairwise(steps)):
            raise ValueError("after_min must not decrease from one step to the next")
        return steps


class Token(_Strict):
    """A token entry that names its role: `{token: ..., role: lead}`."""

    token: Secret
    role: Role = "nurse"


class Override(_Strict):
    """A one-off swap in a schedule: `target` is on duty from `start` to `end`."""

    target: Name
    start: dt.datetime  # local time of the schedule unless it carries an offset
    end: dt.datetime


class Schedule(_Strict):
    """A weekly rotation: `rotation[0]` is on duty for the 7 days from `start`, then the next."""

    timezone: str = "UTC"
    start: dt.datetime
    rotation: tuple[Name, ...] = Field(min_length=1)
    overrides: tuple[Override, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    def _local(self, when: dt.datetime) -> dt.datetime:
        zone = ZoneInfo(self.timezone)
        return when.replace(tzinfo=zone) if when.tzinfo is None else when.astimezone(zone)

    def on_duty(self, now: dt.datetime) -> str:
        """The target on duty at `now`: the first override that covers it, else the rotation."""
        for override in self.overrides:
            if self._local(override.start) <= now < self._local(override.end):
                return override.target
        # Whole weeks of local wall-clock time, so a handoff stays at 08:00 across DST changes.
        local = now.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        start = self._local(self.start).replace(tzinfo=None)
        weeks = (local - start) // dt.timedelta(days=7)
        return self.rotation[weeks % len(self.rotation)]


class Paging(_Strict):
    """Paging policy: which severities page, repeats, the held resolve, links, e-mail sender."""

    severities: tuple[Severity, ...] = ("critical", "error")  # CLINICAL.md: alarm burden
    repeat_min: Annotated[float, number(1, DAY_MIN)] | None = 10  # last step repeats; null: never
    resolve_hold_min: Annotated[float, number(0, DAY_MIN)] = 5  # flap damping, see README
    silence_max_days: Annotated[float, number(0, 30, above=True)] = 7  # how far a silence reaches
    public_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    email_from: str = "vitals-alerting@localhost"
    # alerting's own "down" page is resolved once a restart has served this long: a crash
    # loop keeps one incident open instead of paging the operators at every restart
    self_alert_resolve_after_min: Annotated[float, number(0, 60)] = 2


class OnCall(_Strict):
    """The whole on-call file, validated: every name in a step or schedule exists."""

    targets: dict[Name, Target]
    teams: dict[Name, Team]
    schedules: dict[Name, Schedule] = {}
    tokens: dict[Name, Secret | Token] = {}  # a bare string is a nurse's token
    paging: Paging = Paging()
    operators: Name | None = None  # CONTRACT section 7: the team paged about the pipeline

    @model_validator(mode="after")
    def _names(self) -> OnCall:
        if self.operators is not None and self.operators not in self.teams:
            raise ValueError(f"operators: no team {self.operators} under teams:")
        both = set(self.targets) & set(self.schedules)
        if both:
            raise ValueError(f"{sorted(both)[0]} is both a target and a schedule")
        for name, sched in self.schedules.items():
            for who in (*sched.rotation, *(override.target for override in sched.overrides)):
                if who not in self.targets:
                    raise ValueError(f"schedules.{name}: unknown target {who}")
        for name, team in self.teams.items():
            for i, step in enumerate(team.escalation):
                for who in step.notify:
                    if who not in self.targets and who not in self.schedules:
                        raise ValueError(f"teams.{name}.escalation[{i}].notify: unknown target "
                                         f"or schedule {who}")
        return self

    def resolve(self, name: str, now: dt.datetime) -> tuple[str, Target]:
        """The target a name stands for at `now` (a schedule's person on duty)."""
        if name in self.schedules:
            name = self.schedules[name].on_duty(now)
        return name, self.targets[name]

    def identify(self, token: str) -> tuple[str, Role] | None:
        """The person a bearer token belongs to, and their role; tokens may be stored as
        `sha256:<hex>`. Every entry is compared (constant time), whichever matches."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = None
        for person, entry in self.tokens.items():
            stored, role = (entry, "nurse") if isinstance(entry, str) else (entry.token,
                                                                             entry.role)
            want = stored.removeprefix("sha256:") if stored.startswith("sha256:") else (
                hashlib.sha256(stored.encode()).hexdigest())
            if hmac.compare_digest(want, digest):
                found = (person, role)
        return found  # type: ignore[return-value]

    def who(self, token: str) -> str | None:
        """The person a bearer token belongs to."""
        found = self.identify(token)
        return found[0] if found else None

    def pages(self, severity: str) -> bool:
        """Whether alerts of this severity page (paging.severities)."""
        return severity in self.paging.severities

    def repeat_min(self, team: str) -> float | None:
        """How often the team's last step repeats, in minutes (None: never)."""
        return self.teams[team].repeat_min or self.paging.repeat_min

    def policy(self, team: str) -> Policy:
        """The team's escalation in milliseconds, for the lifecycle."""
        hold_ms = int(self.paging.resolve_hold_min * MIN)
        found = self.teams.get(team)
        if found is None:  # removed from the on-call file while an incident was open: no steps
            return Policy((0,), None, hold_ms)
        repeat = self.repeat_min(team)
        return Policy(tuple(int(step.after_min * MIN) for step in found.escalation),
                      int(repeat * MIN) if repeat else None, hold_ms)


def default_oncall_path() -> Path:
    """The embedded demo on-call file."""
    return embedded("oncall.yaml")


def load_oncall(path: Path | None, teams_needed: set[str] | None = None) -> OnCall:
    """The on-call file, parsed and validated (`None`: the embedded demo file, whose API
    tokens are disabled: only `vitals demo`, which writes its own file, has tokens).

    A problem raises `ConfigError` in one line that names the file and the field.
    `teams_needed` (from the patients file) must all exist."""
    embedded_demo = path is None
    path = path or default_oncall_path()
    oncall = load_model(OnCall, path, "VITALS_ONCALL")
    if embedded_demo and oncall.tokens:  # public values: never let them open the API
        oncall = oncall.model_copy(update={"tokens": {}})
    if embedded_demo:
        log.warning("VITALS_ONCALL is not set: the embedded demo on-call file is used, and it "
                    "has no API tokens, so the API answers 401 to everyone; set VITALS_ONCALL "
                    "to a file with tokens")
    missing = sorted((teams_needed or set()) - set(oncall.teams))
    if missing:
        raise ConfigError(f"VITALS_ONCALL ({path}): teams: no team {missing[0]}, which "
                          "VITALS_PATIENTS names")
    return oncall
