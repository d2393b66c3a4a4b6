"""What a chaos run (`harness.chaos`) does, decided before it starts: the spec, the seeded fault
schedule and the run's on-call file.

The schedule (`plan`) comes from `random.Random(seed)`: the same seed gives the same faults at
the same times for the same lengths. Faults that hold the stage up (a SIGKILL and the restart,
a broker restart, the Kafka connection cut, the time-series server down) run one at a time, in
a seeded order, at seeded times spread over the publishing with the restarts' expected
lengths left between them, so that they land while devices are publishing. The PagerDuty
windows are passive (the stand-in answers 500, or 429, until the window ends) and may overlap
the others; each begins at a seeded random moment shortly before a page the truth calls for is
due, since a window in which nothing is paged tests nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from simulators.plan import DAY

KILL = "SIGKILL"
WINDOWS = ("pagerduty 500", "pagerduty 429")
OUTAGES = ("mosquitto restart", "kafka cut", *WINDOWS, "tsdb down")
# How long each fault holds the injector (s), to space the schedule: a rules worker is ready
# once its consumer group has rebalanced (~10-15 s here), the others within a few seconds.
RESTART_S = {"rules": 15.0, "mosquitto restart": 1.0}
OTHER_RESTART_S = 3.0


@dataclass(frozen=True)
class Spec:
    """One chaos run: the cohort, how long publishing takes, and how many faults."""

    patients: int = 4
    days: float = 2.0
    seed: int = 1
    publish_s: float = 70.0  # the traffic's wall time (sets the speed)
    kills: int = 1  # SIGKILL + restart of each service, this many times
    outages: int = 1  # of each other fault kind
    outage_s: tuple[float, float] = (5.0, 8.0)  # an outage lasts between these
    rules_workers: int = 2
    partitions: int = 4
    drain_timeout_s: float = 300.0  # for the pipeline to catch up once the faults are over
    # ... unless nothing it lacks moved for this long (all alive, nothing in flight: what is
    # missing then is lost, and the checks say so)
    stall_s: float = 90.0
    start: str = "2026-11-02T00:00:00Z"  # fixed, so that the traffic is the same every run
    skip: tuple[str, ...] = ()  # fault kinds left out ("mosquitto restart"), to isolate one

    @property
    def speed(self) -> float:
        """Simulated time per wall time that publishes the cohort in `publish_s`."""
        return self.days * DAY / 1000 / self.publish_s


@dataclass(frozen=True)
class Fault:
    at_s: float  # after publishing began
    kind: str  # KILL or one of OUTAGES
    target: str = ""  # the service killed
    duration_s: float = 0.0  # how long the outage lasts (0: a kill or restart)
    retry_after_s: int | None = None  # 429's Retry-After

    @property
    def label(self) -> str:
        """How the table names it: "SIGKILL ingest", "kafka cut", ..."""
        return f"{self.kind} {self.target}" if self.kind == KILL else self.kind

    @property
    def window(self) -> bool:
        """A PagerDuty window: passive, it may overlap other faults."""
        return self.kind in WINDOWS


def _holds(kind: str, target: str, duration: float) -> float:
    if kind == KILL:
        return RESTART_S.get(target.split("-")[0], OTHER_RESTART_S)
    return duration or RESTART_S.get(kind, OTHER_RESTART_S)


def plan(spec: Spec, pages_s: list[float]) -> list[Fault]:
    """The seeded schedule; `pages_s`: when the pages the truth calls for are due (s after
    publishing began), which the PagerDuty windows aim at (uniform times without any)."""
    rng = random.Random(spec.seed)
    targets = ["ingest", *(f"rules-{i}" for i in range(1, spec.rules_workers + 1)), "store",
               "alerting"]
    held = [(KILL, t) for t in targets for _ in range(spec.kills)]
    held += [(k, "") for k in OUTAGES if k not in WINDOWS for _ in range(spec.outages)]
    held = [(k, t) for k, t in held if k not in spec.skip]
    rng.shuffle(held)
    lengths = [0.0 if k in (KILL, "mosquitto restart") else round(rng.uniform(*spec.outage_s), 1)
               for k, _ in held]
    needs = [_holds(k, t, d) for (k, t), d in zip(held, lengths, strict=True)]
    # the slack of the publishing time, cut at seeded points, goes between the faults
    slack = max(0.0, 0.9 * spec.publish_s - sum(needs))
    cuts = sorted(rng.uniform(0, slack) for _ in held)
    faults, used = [], 0.0
    for (kind, target), length, need, cut in zip(held, lengths, needs, cuts, strict=True):
        faults.append(Fault(round(0.03 * spec.publish_s + cut + used, 1), kind, target, length))
        used += need
    for kind in (k for k in WINDOWS if k not in spec.skip for _ in range(spec.outages)):
        length = round(rng.uniform(*spec.outage_s), 1)
        page = rng.choice(pages_s) if pages_s else rng.uniform(0.05, 0.9) * spec.publish_s
        at = max(0.0, round(page - rng.uniform(0.1, 0.6) * length, 1))
        retry = rng.randint(1, max(1, round(length / 4))) if kind == "pagerduty 429" else None
        faults.append(Fault(at, kind, "", length, retry))
    return sorted(faults, key=lambda f: f.at_s)


def write_oncall(path: Path, patients: Path) -> dict[str, str]:
    """An on-call file for the patients' teams: one PagerDuty target per team, no escalation
    steps after the first, no repeats and no held resolve, so that each page the truth calls
    for is sent exactly once. Returns each patient's routing key."""
    enrolled = yaml.safe_load(patients.read_text())["patients"]
    teams = sorted({p["team"] for p in enrolled})
    keys = {team: f"{i + 1:02d}" + "c4a05" * 6 for i, team in enumerate(teams)}  # 32 chars
    doc = {"targets": {f"nurse-{t}": {"pagerduty": keys[t]} for t in teams}
           | {"ops-engineer": {"pagerduty": "ff" + "0b5e7" * 6}},
           "teams": {t: {"escalation": [{"after_min": 0, "notify": [f"nurse-{t}"]}]}
                     for t in teams} | {"ops": {"escalation": [{"after_min": 0,
                                                               "notify": ["ops-engineer"]}]}},
           "operators": "ops",
           "paging": {"severities": ["critical", "error"], "repeat_min": None,
                      "resolve_hold_min": 0}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return {p["id"]: keys[p["team"]] for p in enrolled}
