"""The frame of the stages: `Flow` (one event and what the stages learned about it), `Decision`
(a stage's answer), `Stage` (what a stage is), `Pipeline` (stages in order, as Alertmanager's
MultiStage) and `Verdict` (the outcome, and which stage decided it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from alerting.lifecycle import Effect, Incident, Policy
from alerting.stages.records import Record
from alerting.store import Lookups, Row
from vitals.records import AlertEvent


@dataclass(frozen=True)
class Flow:
    """One alert event on its way through the stages, with what they have learned so far."""

    event: AlertEvent
    now: int  # epoch ms
    known: Row | None = None  # dedup: the alert as recorded before (for a resolved event)
    team: str | None = None  # route: the patient's on-call team
    policy: Policy | None = None  # route, or clear: the escalation of the incident's team
    incident_id: str | None = None  # group: the incident the alert joins or opens
    incident: Incident | None = None  # group: the open incident it joins; escalate: either
    effects: tuple[Effect, ...] = ()  # escalate: what to tell the people paged
    outcome: str = ""  # escalate: paged, paged_again, grouped, cleared


@dataclass(frozen=True)
class Decision:
    """A stage's answer: go on with `flow`, or stop (flow None) with `outcome`; plus records.

    The records are written either way, before the next stage looks anything up."""

    flow: Flow | None
    outcome: str = ""
    records: tuple[Record, ...] = ()

    @property
    def stops(self) -> bool:
        """Whether the event goes no further."""
        return self.flow is None


def go_on(flow: Flow, *records: Record) -> Decision:
    """The event goes on to the next stage, as `flow`."""
    return Decision(flow, "", records)


def stop(outcome: str, *records: Record) -> Decision:
    """The event stops here, with this outcome."""
    return Decision(None, outcome, records)


class Stage(Protocol):
    """One step of the pipeline: a name (for the log), and `exec` (a decision, no writes)."""

    name: str

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Decide about one event."""
        ...


@dataclass(frozen=True)
class Verdict:
    """What became of an event (duplicate, silenced, paged, ...) and the stage that decided."""

    stage: str
    outcome: str


Write = Callable[[Sequence[Record]], None]


class Pipeline:
    """Stages run in order; the first that stops the event decides (Alertmanager's MultiStage)."""

    def __init__(self, *stages: Stage) -> None:
        self.stages = stages

    @property
    def names(self) -> tuple[str, ...]:
        """The stages' names, in order."""
        return tuple(stage.name for stage in self.stages)

    def run(self, flow: Flow, lookups: Lookups, write: Write) -> Verdict:
        """The verdict of the stages, each deciding in turn and its records written at once.

        Records go to `write` before the next stage runs, so its look-ups see them; the
        transaction around it all is the caller's."""
        for stage in self.stages:
            decision = stage.exec(flow, lookups)
            write(decision.records)
            if decision.flow is None:
                return Verdict(stage.name, decision.outcome)
            flow = decision.flow
        return Verdict(self.stages[-1].name, flow.outcome)
