"""A rule's `quiet` bound (`RuleSpec.quiet`) is a proof: whenever it says the rule cannot fire
at a minute, the rule's judge does not fire there. The engine leaves such a rule unjudged when
nothing of it is pending, and gives the same events as judging every rule every minute."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.run import run_subset
from simulators import cohort
from stream_rules import engine as engine_module
from stream_rules.config import load_rules
from stream_rules.engine import Engine
from stream_rules.quiet_kinds import QuietKinds
from stream_rules.rules import RULES, Minute, RuleSpec
from stream_rules.rules.news2 import combined_minute
from stream_rules.state import DeviceState, IceCheck, PatientState, dump, load
from tests.simulators.helpers import START
from vitals.patients import Patient

RULES_FILE = load_rules(None)
BOUNDED = [rule for rule in RULES if rule.quiet is not None and not rule.per_device]
BOUND = [rule for rule in RULES if rule.bound is not None]
MINUTE = 29_000_000  # an epoch minute in 2025


def values(centre: float, spread: float) -> st.SearchStrategy[list[float | None]]:
    """A window's minutes: values around a threshold, some missing."""
    return st.lists(st.one_of(st.none(), st.floats(centre - spread, centre + spread)),
                    min_size=0, max_size=130)


@settings(max_examples=400, deadline=None)
@given(values(38.3, 2.5), values(125, 45), values(92, 6),
       st.one_of(st.none(), st.floats(50, 110)), st.one_of(st.none(), st.floats(36, 37.5)),
       st.one_of(st.none(), st.floats(88, 99)))
def test_a_rule_said_quiet_never_fires(temp: list[float | None], hr: list[float | None],
                                       spo2: list[float | None], hr_baseline: float | None,
                                       temp_baseline: float | None,
                                       spo2_baseline: float | None) -> None:
    state = PatientState("P001", hr_baseline=hr_baseline, temp_baseline=temp_baseline,
                         spo2_baseline=spo2_baseline)
    for signal, series in (("temp", temp), ("hr", hr), ("spo2", spo2)):
        for i, value in enumerate(series):
            if value is not None:
                state.series[signal].set(MINUTE - len(series) + 1 + i, value)
    rules = RULES_FILE.rules
    state.last_fever_minute = MINUTE - len(temp) if temp and temp[0] is not None else None
    for rule in BOUNDED:
        config = getattr(rules, rule.name)
        at = minute_of(rule, state)
        if rule.quiet(at, config):  # type: ignore[misc]
            fire = rule.judge(minute_of(rule, state), config).fire
            assert not fire, (rule.name, temp[-25:], hr[-12:], spo2[-6:])


def minute_of(rule: RuleSpec, state: PatientState) -> Minute:
    """The minute a rule is judged on: a kind's, or a combined one (levels and NEWS2)."""
    if rule.judged_on == "combined":
        return combined_minute(state, MINUTE, RULES_FILE, 3.0)
    return Minute(state, MINUTE, RULES_FILE, RULES_FILE.rules, day=3.0)


@pytest.mark.parametrize(("signal", "level", "rule", "quiet"), [
    ("temp", 38.6, "fever", False), ("temp", 37.2, "fever", True),
    ("temp", 39.6, "high_fever", False), ("temp", 38.6, "high_fever", True),
    ("hr", 140, "tachycardia", False), ("hr", 100, "tachycardia", True),
    ("spo2", 89, "severe_desaturation", False), ("spo2", 95, "severe_desaturation", True),
])
def test_a_bound_says_quiet_far_from_the_threshold_and_not_near_a_firing_level(
        signal: str, level: float, rule: str, quiet: bool) -> None:
    state = PatientState("P001")
    for minute in range(MINUTE - 30, MINUTE + 1):
        state.series[signal].set(minute, level)
    spec = next(r for r in BOUNDED if r.name == rule)
    config = getattr(RULES_FILE.rules, rule)
    at = Minute(state, MINUTE, RULES_FILE, RULES_FILE.rules, day=3.0)
    assert spec.quiet(at, config) is quiet  # type: ignore[misc]
    assert bool(spec.judge(at, config).fire) is not quiet


@settings(max_examples=300, deadline=None)
@given(st.integers(-1, 40), st.integers(0, 40), st.sampled_from([1_000, 60_000, 900_000]),
       st.booleans(), st.integers(0, 80))
def test_a_device_said_quiet_is_not_silent(last_valid_min: int, first_min: int, interval: int,
                                           manual: bool, minutes_on: int) -> None:
    state = PatientState("P001")
    device = state.devices["ox-1"] = DeviceState(
        "oximetry", first_ts=(MINUTE - first_min) * 60_000, interval_ms=interval, manual=manual,
        last_valid_ts=-1 if last_valid_min < 0 else (MINUTE - last_valid_min) * 60_000)
    at = Minute(state, MINUTE + minutes_on - 40, RULES_FILE, RULES_FILE.rules, day=3.0)
    spec = next(rule for rule in RULES if rule.name == "no_data")
    config = RULES_FILE.rules.no_data
    quiet = spec.quiet(at, config, "ox-1")  # type: ignore[misc]
    assert quiet is not bool(spec.judge(at, config, "ox-1").fire), device


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.integers(0, 3 * 24 * 60)), st.floats(0, 40))
def test_a_neuro_check_said_quiet_is_not_missed(ago_min: int | None, day: float) -> None:
    state = PatientState("P001")
    if ago_min is not None:
        state.last_ice = IceCheck(10, (MINUTE - ago_min) * 60_000, "caregiver")
    at = Minute(state, MINUTE, RULES_FILE, RULES_FILE.rules, day=day)
    spec = next(rule for rule in RULES if rule.name == "neuro_check_missed")
    config = RULES_FILE.rules.neuro_check_missed
    quiet = spec.quiet(at, config)  # type: ignore[misc]
    assert quiet is not bool(spec.judge(at, config).fire), (ago_min, day)


@settings(max_examples=400, deadline=None)
@given(values(38.3, 2.5), values(125, 45), values(92, 6),
       st.one_of(st.none(), st.floats(50, 110)),
       st.lists(st.tuples(st.one_of(st.none(), st.floats(34, 42)),
                          st.one_of(st.none(), st.floats(40, 200)),
                          st.one_of(st.none(), st.floats(80, 100))), min_size=1, max_size=25))
def test_a_bound_quiet_stays_quiet_while_each_new_value_is_within_it(
        temp: list[float | None], hr: list[float | None], spo2: list[float | None],
        hr_baseline: float | None, later: list[tuple[float | None, ...]]) -> None:
    """What `quiet_kinds` rests on: a rule with a bound (`RuleSpec.bound`), quiet at a
    minute, is quiet at the next when the value that minute brings is within the bound, or
    there is none; so every minute after, while that holds."""
    state = PatientState("P001", hr_baseline=hr_baseline)
    for signal, series in (("temp", temp), ("hr", hr), ("spo2", spo2)):
        for i, value in enumerate(series):
            if value is not None:
                state.series[signal].set(MINUTE - len(series) + 1 + i, value)
    rules = RULES_FILE.rules
    quiet = {rule.name: rule.quiet(Minute(state, MINUTE, RULES_FILE, rules, day=3.0),
                                   getattr(rules, rule.name))  # type: ignore[misc]
             for rule in BOUND}
    for minute, values_then in enumerate(later, MINUTE + 1):
        for signal, value in zip(("temp", "hr", "spo2"), values_then, strict=True):
            if value is not None:
                state.series[signal].set(minute, value)
        at = Minute(state, minute, RULES_FILE, rules, day=3.0)
        for rule in BOUND:
            config = getattr(rules, rule.name)
            bound = rule.bound(config, state)  # type: ignore[misc]
            value = state.series[bound.signal].get(minute)
            within = math.isnan(value) or (value < bound.limit if bound.upper else
                                           value > bound.limit)
            quiet[rule.name] = quiet[rule.name] and within
            if quiet[rule.name]:
                assert rule.quiet(at, config), (rule.name, minute - MINUTE)  # type: ignore[misc]
                assert not rule.judge(at, config).fire


@pytest.mark.parametrize("rule", BOUND, ids=lambda rule: rule.name)
def test_a_bound_is_where_its_rule_stops_being_quiet(rule: RuleSpec) -> None:
    """A bound's limit is the quiet bound's own: a value just within it (by the series'
    quantum) keeps the rule quiet, a value at it does not."""
    config = getattr(RULES_FILE.rules, rule.name)
    for within, quiet in ((True, True), (False, False)):
        state = PatientState("P001", hr_baseline=70.0, temp_baseline=36.8, spo2_baseline=97.0)
        bound = rule.bound(config, state)  # type: ignore[misc]
        series = state.series[bound.signal]
        inside = (-1.0 if bound.upper else 1.0) / series.scale
        for minute in range(MINUTE - 60, MINUTE):
            series.set(minute, bound.limit + 20 * inside)
        series.set(MINUTE, bound.limit + inside if within else bound.limit)
        at = Minute(state, MINUTE, RULES_FILE, RULES_FILE.rules, day=3.0)
        assert rule.quiet(at, config) is quiet, (rule.name, within)  # type: ignore[misc]


def test_a_kind_is_skipped_only_while_its_proof_holds() -> None:
    """`QuietKinds.holds`: the chain goes on with each minute's value within every limit, and
    breaks on a value beyond one, a minute set out of turn, or a baseline learned."""
    engine = Engine(RULES_FILE, Patient(id="P001", infusion=dt.date(2026, 11, 1), team="t"))
    kinds = engine._quiet_kinds
    assert kinds.groups == {"temperature", "oximetry"}
    state = engine.new_state()
    hr, spo2 = state.series["hr"], state.series["spo2"]
    for minute in range(MINUTE - 20, MINUTE + 1):
        hr.set(minute, 80.0)
        spo2.set(minute, 97.0)
    assert not kinds.holds(state, "oximetry", MINUTE)  # nothing proven yet
    kinds.note(state, "oximetry", MINUTE)
    hr.set(MINUTE + 1, 85.0)
    assert kinds.holds(state, "oximetry", MINUTE + 1)  # a value within every limit
    assert not kinds.holds(state, "oximetry", MINUTE + 2)  # not the minute after the proof
    kinds.note(state, "oximetry", MINUTE + 1)
    assert kinds.holds(state, "oximetry", MINUTE + 2)  # no value at all
    hr.set(MINUTE + 2, RULES_FILE.rules.tachycardia.fire_at)
    assert not kinds.holds(state, "oximetry", MINUTE + 2)  # at a limit
    kinds.note(state, "oximetry", MINUTE + 2)
    spo2.set(MINUTE - 3, 97.0)  # a late minute filled in
    spo2.set(MINUTE + 3, 97.0)
    assert not kinds.holds(state, "oximetry", MINUTE + 3)
    kinds.note(state, "oximetry", MINUTE + 3)
    state.hr_baseline = 70.0  # learned: the relative limits are new
    assert not kinds.holds(state, "oximetry", MINUTE + 4)
    kinds.note(state, "oximetry", MINUTE + 4)
    spo2.set(MINUTE + 5, RULES_FILE.rules.desaturation.fire_at)  # a lower bound's limit
    assert not kinds.holds(state, "oximetry", MINUTE + 5)
    assert load(dump(state)).quiet == {}  # not part of the state


def test_every_threshold_rule_has_a_bound() -> None:
    assert {rule.name for rule in BOUNDED} == {
        "fever", "high_fever", "rising_temperature", "tachycardia", "tachycardia_relative",
        "tachycardia_disproportionate", "desaturation", "severe_desaturation", "news2",
        "news2_high", "crs_suspicion", "neuro_check_missed"}
    assert {rule.name for rule in BOUND} == {
        "fever", "high_fever", "rising_temperature", "tachycardia", "tachycardia_relative",
        "tachycardia_disproportionate", "desaturation", "severe_desaturation"}
    state = PatientState("P001", hr_baseline=70.0)
    assert all(rule.bound(getattr(RULES_FILE.rules, rule.name), state).signal == rule.signal
               for rule in BOUND)  # type: ignore[misc]
    assert [rule.name for rule in RULES if rule.per_device and rule.quiet] == ["no_data"]


def test_the_bounds_leave_every_event_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rule judged every minute (no bound, so no minute skipped either) gives the same
    events and trend points."""
    sim = cohort.generate(4, 3, 4, START)  # fevers, tachycardia, desaturation, NEWS2, CRS
    skipped = []
    holds = QuietKinds.holds

    def spy(kinds: QuietKinds, state: PatientState, group: str, minute: int) -> bool:
        skipped.append(holds(kinds, state, group, minute))
        return skipped[-1]

    monkeypatch.setattr(QuietKinds, "holds", spy)
    bounded = run_subset(sim, RULES_FILE, [0, 1, 2, 3])
    assert sum(skipped) > len(skipped) / 2  # most of the kinds' minutes were skipped
    monkeypatch.setattr(engine_module, "RULES", tuple(
        dataclasses.replace(rule, quiet=None) for rule in engine_module.RULES))
    judged = run_subset(sim, RULES_FILE, [0, 1, 2, 3])
    fired = {a.rule for r in judged.patients.values() for a in r.alerts}
    assert {"fever", "high_fever", "rising_temperature", "tachycardia", "desaturation",
            "news2", "crs_suspicion"} <= fired
    for pid, run in judged.patients.items():
        assert bounded.patients[pid].alerts == run.alerts, pid
        assert bounded.patients[pid].ts == run.ts
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(
            bounded.patients[pid].hr, run.hr, strict=True))
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(
            bounded.patients[pid].temp, run.temp, strict=True))
