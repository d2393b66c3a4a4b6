"""The rule engine: (state, readings) -> (state, alert events, trend points). Pure: no I/O, no
clock, no Faust. Event time decides everything.

Each kind of reading (temperature, oximetry) has its own cursor: a minute is judged once that
kind's newest reading is `lateness_s` past the minute's end. A device that was offline and
uploads its buffer therefore has its minutes judged in order when the upload arrives, and what
they cause is marked late. Rules that need every signal at once (NEWS2, CRS suspicion, no data)
follow the slowest kind that is not more than `late_after_min` behind. Every step depends only
on the sequence of readings, so any batching of the same readings gives the same events, and a
duplicate (same device and seq, or same ts) changes nothing.

What each rule judges, and how its page reads, is in the registry (`stream_rules.rules`); the
engine treats every rule alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from stream_rules import calibration, describe
from stream_rules import late as late_pass
from stream_rules.config import RulesFile
from stream_rules.features import slope_of
from stream_rules.hysteresis import step
from stream_rules.quiet_kinds import QuietKinds
from stream_rules.rules import RULES, Judgement, Minute, RuleSpec, no_data, reports
from stream_rules.rules.news2 import combined_minute
from stream_rules.rules.spec import MINUTE, Severity
from stream_rules.series import DAY_MIN
from stream_rules.spike_filter import minute_median
from stream_rules.state import KIND_SIGNALS, DeviceState, KindState, PatientState, RuleState
from stream_rules.state import remember_episode as remember_episode
from vitals.patients import Patient
from vitals.records import REPORT_KINDS, AlertEvent, DeviceStatus, Reading, TrendPoint

__all__ = ["ARTEFACT_FLAGS", "MINUTE", "Engine", "Output"]

ARTEFACT_FLAGS = frozenset({"motion", "probe_off", "low_perfusion"})
# A device that reports less often than this (learned from its readings) has each reading's
# minute judged on arrival: a 5-minute thermometer's fever is judged 5 minutes sooner (#16).
SPARSE_MS = 90_000


class Known(Protocol):
    """Where a kind's minutes close from more than the state holds (`stream_rules.runs`: rows
    taken in bulk, and minute values computed ahead)."""

    def closing(self, minute: int, samples: dict[str, list[float]] | None
                ) -> dict[str, float]:
        """Per signal, the value `minute` closes with: the median of all its samples, those
        in the state (`samples`) and any not put there."""


@dataclass(slots=True)
class Output:
    """What the engine said: alert events and trend points, in the order they arose."""

    alerts: list[AlertEvent] = field(default_factory=list)
    trends: list[TrendPoint] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _PatientRule:
    """A registered rule with one patient's settings."""

    spec: RuleSpec
    config: object
    fire_after_min: float
    clear_after_min: float
    worse: Callable[[float, float], float]  # of two values, the worse: min or max

    def severity(self, rules_file: RulesFile, day: float) -> Severity:
        """Its severity on this day after infusion."""
        if self.spec.severity is not None:
            return self.spec.severity(self.config, rules_file, day)
        return self.config.severity  # type: ignore[attr-defined]


class Engine:
    """The rules for one patient (the rules file with the patient's overrides merged in)."""

    def __init__(self, rules: RulesFile, patient: Patient, slopes: bool = True) -> None:
        """`slopes=False`: trend points without their slopes, which no rule reads (the
        evaluation keeps only the levels)."""
        self.patient = patient
        self.slopes = slopes
        self.rules_file = rules.for_patient(patient.id)
        self.lateness_ms = int(self.rules_file.evaluation.lateness_s * 1000)
        self.late_after_min = self.rules_file.evaluation.late_after_min
        override = rules.patients.get(patient.id)
        self.baseline = override.baseline if override else None
        self._rules: dict[str, _PatientRule] = {}
        for rule in RULES:
            config = getattr(self.rules_file.rules, rule.name)
            self._rules[rule.name] = _PatientRule(
                rule, config, getattr(config, "fire_after_min", 0),
                getattr(config, "clear_after_min", 0), min if rule.lower_is_worse else max)
        # (rule, config) judged on each minute of a kind of reading, and on combined minutes
        self._judged_on: dict[str, list[tuple[RuleSpec, object]]] = {
            "temperature": [], "oximetry": [], "combined": []}
        for rule in RULES:
            self._judged_on[rule.judged_on].append((rule, self._rules[rule.name].config))
        self._quiet_kinds = QuietKinds(self._judged_on)
        # the infusion day's midnight, epoch s (exact: a whole number of days)
        self._day_zero_s = -patient.day_since_infusion(0) * 86400
        self._names = {group: tuple(rule.name for rule, _ in rules)
                       for group, rules in self._judged_on.items()}
        # the combined minute's rules, each with its rule states' keys by device
        # ("name:device_id", made once) when it is judged per device
        self._combined: list[tuple[RuleSpec, object, dict[str, str] | None]] = [
            (rule, config, {} if rule.per_device else None)
            for rule, config in self._judged_on["combined"]]

    def new_state(self) -> PatientState:
        """A patient's state before any reading (with the baseline set in the rules file)."""
        state = PatientState(self.patient.id)
        if self.baseline is not None:
            state.hr_baseline, state.temp_baseline = self.baseline.hr, self.baseline.temp
            state.spo2_baseline = self.baseline.spo2
        return state

    def process(self, state: PatientState | None,
                records: Iterable[Reading | DeviceStatus]) -> Output:
        """Feed readings and device statuses (in arrival order) into `state`, which is
        updated in place. A status judges nothing by itself: a last will ("offline") is
        remembered for the live no-data page (`silence`)."""
        state = state if state is not None else self.new_state()
        out = Output()
        for record in records:
            if record.patient_id != state.patient_id:
                continue
            if isinstance(record, DeviceStatus):
                self._status(state, record)
            elif record.kind in REPORT_KINDS:
                out.alerts += self._report(state, record)
            elif self._take(state, record):
                kind = state.kinds[record.kind]
                closes = self._closes(state, record)
                # the common case, one reading inside a minute, closes none: no call
                if closes > kind.cursor or \
                        (kind.max_ts - self.lateness_ms) // MINUTE - 1 > kind.cursor:
                    self._advance(state, record.kind, out, final=False, closes=closes)
        return out

    def flush(self, state: PatientState) -> Output:
        """The end of a recorded stream: judge every minute up to the newest reading."""
        out = Output()
        for kind in list(state.kinds):
            self._advance(state, kind, out, final=True)
        return out

    def silence(self, state: PatientState, now_ms: int) -> Output:
        """Live only: devices from which nothing has been received for their `no_data` time
        (`silent_after_ms`) by the wall clock. Event time cannot notice a patient whose every
        device went quiet; the worker calls this from a timer. It shares the no_data rule
        state with the event-time check, so the two never page twice for one silence, and
        data arriving clears it."""
        out = Output()
        rule = self._rules[no_data.NAME]
        config: no_data.NoData = rule.config  # type: ignore[assignment]
        for device_id, device in state.devices.items():
            key = f"{no_data.NAME}:{device_id}"
            rule_state = state.rules.get(key)
            after = no_data.silent_after_ms(device, config)
            quiet = device.last_received >= 0 and after is not None and \
                now_ms - device.last_received >= after
            if not quiet or (rule_state is not None and rule_state.firing):
                continue
            assert after is not None
            # since when: the moment its last will said it went offline, else the moment
            # its silence reached `after_min`
            offline = device.offline_at >= device.last_received
            rule_state = state.rules[key] = RuleState(
                firing=True, start=device.offline_at if offline else device.last_received + after)
            judgement = no_data.silent_by_wall_clock(device_id, device, now_ms, after)
            out.alerts.append(self._event(state, key, rule, rule_state, "fired",
                                          (rule_state.start or 0) // MINUTE, judgement,
                                          late=False))
        return out

    # --- readings and statuses -----------------------------------------------------------

    @staticmethod
    def _status(state: PatientState, status: DeviceStatus) -> None:
        """A device's status: "offline" (its last will) is remembered unless data came after
        it; "online" forgets it. A device never heard from has no state to change."""
        device = state.devices.get(status.device_id)
        if device is None:
            return
        if status.battery is not None:
            device.battery = status.battery
        if status.state == "online":
            device.offline_at = -1
        elif status.received_at >= device.last_received:
            device.offline_at = max(device.offline_at, status.received_at)

    def _report(self, state: PatientState, reading: Reading) -> list[AlertEvent]:
        """A patient's or caregiver's report, judged at once (`rules.reports`); it is not a
        vital sign, so no other rule sees it."""
        reporter = state.reporters.get(reading.device_id)
        if reporter is None:
            reporter = state.reporters[reading.device_id] = DeviceState(reading.kind)
        if not reporter.first_time(reading.seq, reading.ts):
            return []
        reporter.last_ts = max(reporter.last_ts, reading.ts)
        late = state.max_ts - reading.ts > self.late_after_min * MINUTE
        return [self._report_event(state, change, reading.ts, late)
                for change in reports.judge(state, reading, self.rules_file)]

    def _report_event(self, state: PatientState, change: reports.Change, ts: int,
                      late: bool) -> AlertEvent:
        day = self.patient.day_since_infusion(ts)
        evidence = {**change.evidence, "day_since_infusion": round(day, 2)}
        if late:
            evidence["late_by_min"] = max(0, (state.max_ts - ts) // MINUTE)
        return AlertEvent(
            alert_id=f"{state.patient_id}/{change.key}/{change.start}", status=change.status,
            rule=change.rule, severity=change.severity, patient_id=state.patient_id,
            start=change.start, detected_at=ts,
            summary=describe.summary(state.patient_id, change.rule, change.status,
                                     change.start, evidence, day),
            source=change.source, day_since_infusion=round(day, 2), late=late,
            evidence=evidence)

    def _take(self, state: PatientState, reading: Reading) -> bool:
        device = state.devices.get(reading.device_id)
        if device is None:
            device = state.devices[reading.device_id] = DeviceState(reading.kind,
                                                                    first_ts=reading.ts)
        if not device.first_time(reading.seq, reading.ts):
            return False
        ts = reading.ts
        newest = ts >= device.last_ts  # not a buffered reading older than live ones
        if newest:
            device.learn_gap(ts)
            device.last_ts = ts
            device.manual = "manual" in reading.flags
        if reading.received_at > device.last_received:
            device.last_received = reading.received_at
        if reading.received_at > device.offline_at:
            device.offline_at = -1  # back: data came after its last will
        if reading.battery is not None:
            device.battery = reading.battery
        minute = ts // MINUTE
        kind = state.kinds.get(reading.kind)
        if kind is None:
            kind = state.kinds[reading.kind] = KindState(cursor=minute - 1)
            if state.combined_cursor < 0:
                state.combined_cursor = minute - 1
        if state.first_ts < 0:
            state.first_ts = ts
        samples = self._samples(state, reading, device, newest)
        if samples:
            if ts > device.last_valid_ts:
                device.last_valid_ts = ts
            if minute > kind.cursor:
                pending = kind.open
            elif minute > kind.cursor - DAY_MIN:
                pending = kind.late  # judged already: filled in and judged again (late.py)
            else:
                pending = None
                state.stale_readings += 1  # older than the day of history kept
            if pending is not None:
                slot = pending.get(minute)
                if slot is None:
                    slot = pending[minute] = {}
                for signal, value in samples.items():
                    values = slot.get(signal)
                    if values is None:
                        slot[signal] = [value]
                    else:
                        values.append(value)
        if ts > kind.max_ts:
            kind.max_ts = ts
        if ts > state.max_ts:
            state.max_ts = ts
        return True

    def _samples(self, state: PatientState, reading: Reading, device: DeviceState,
                 newest: bool) -> dict[str, float]:
        """The vital signs a reading carries; artefacts and sensor-off readings carry none.
        Only the device's newest reading says where it sits and whether it is off the skin
        (a buffered older one must not undo that)."""
        if reading.flags and not ARTEFACT_FLAGS.isdisjoint(reading.flags):
            return {}
        if reading.kind == "temperature":
            if reading.temp is None:
                return {}
            temperature = self.rules_file.temperature
            off = reading.temp < temperature.sensor_off_below_c  # room air, not hypothermia
            if newest:
                device.site, device.sensor_off = reading.site, off
            if off:
                return {}
            if "manual" in reading.flags:
                calibration.spot_check(state, reading, temperature)
            else:
                calibration.remember(device, reading, temperature)
            if newest:
                device.last_temp = reading.temp
            # raw: corrected when its minute closes, by the spot checks taken before it
            return {calibration.raw_key(reading.device_id): reading.temp}
        out = {}
        if reading.hr is not None:
            out["hr"] = reading.hr
        if reading.spo2 is not None and self._spo2_trusted(state, device, reading, newest):
            out["spo2"] = reading.spo2
        if reading.rr is not None:
            out["rr"] = reading.rr
        return out

    def _spo2_trusted(self, state: PatientState, device: DeviceState, reading: Reading,
                      newest: bool) -> bool:
        """Whether a reading's SpO2 is believed (`oximetry` in the rules file): not at a low
        perfusion index, nor while its pulse has leapt more than `max_hr_jump` from the last
        believed reading's (at first: the last judged minute's), for at most `leap_max_s`
        (motion; a pulse that stays up is real and believed again). A buffered older reading
        is not compared."""
        oximetry = self.rules_file.oximetry
        if oximetry is None:
            return True
        if oximetry.min_pi is not None and reading.pi is not None and \
                reading.pi < oximetry.min_pi:
            return False
        if oximetry.max_hr_jump is None or reading.hr is None or not newest:
            return True
        reference = device.believed_hr
        if reference is None:
            pulse, minute = state.series["hr"], reading.ts // MINUTE
            if not minute - 5 <= pulse.head < minute or math.isnan(pulse.get(pulse.head)):
                return True  # nothing to compare with yet
            reference = pulse.get(pulse.head)
        if abs(reading.hr - reference) <= oximetry.max_hr_jump or (
                0 <= device.leap_since <= reading.ts - oximetry.leap_max_s * 1000):
            device.believed_hr, device.leap_since = reading.hr, -1
            return True
        if device.leap_since < 0:
            device.leap_since = reading.ts
        return False

    # --- judging minutes ---------------------------------------------------------------

    @staticmethod
    def _closes(state: PatientState, reading: Reading) -> int:
        """The minute this reading closes at once: its own, when it is its device's newest
        and the device reports less often than every `SPARSE_MS` (its next reading falls in
        a later minute, so waiting `lateness_s` for more would only delay the judging);
        else -1. Another device's reading for that minute comes to the late pass."""
        device = state.devices[reading.device_id]
        if reading.ts == device.last_ts and device.interval_ms >= SPARSE_MS:
            return reading.ts // MINUTE
        return -1

    def _advance(self, state: PatientState, kind_name: str, out: Output, final: bool,
                 closes: int = -1, known: Known | None = None) -> None:
        """Judge the kind's minutes that are due, then the combined ones. `known`: where the
        minutes close from more than the state holds (`stream_rules.runs`)."""
        kind = state.kinds[kind_name]
        end = kind.max_ts if final else kind.max_ts - self.lateness_ms
        target = max(end // MINUTE - (0 if final else 1), closes)
        if target - kind.cursor > DAY_MIN:  # a long silence: history beyond a day is not kept
            kind.cursor = target - DAY_MIN
        if target <= kind.cursor and not final:
            return  # no minute closed: the common case, one reading inside a minute
        group = "temperature" if kind_name == "temperature" else "oximetry"
        while kind.cursor < target:
            minute = kind.cursor + 1
            self._close_minute(state, kind, kind_name, minute, known)
            kind.cursor = minute
            late = state.max_ts - (minute + 1) * MINUTE > self.late_after_min * MINUTE
            out.alerts += self.judge_kind_minute(state, group, minute, state.rules, late)
        self._advance_combined(state, out, final)
        if late_pass.pending(state):
            late_pass.judge(self, state, out)

    def _close_minute(self, state: PatientState, kind: KindState, kind_name: str,
                      minute: int, known: Known | None = None) -> None:
        samples = kind.open.pop(minute, None)
        if kind_name == "temperature":
            temperature = self.rules_file.temperature
            calibration.settle(state, minute, temperature)
            if samples:
                samples = calibration.corrected(state, samples, minute, temperature, True)
        if known is not None:
            for signal, value in known.closing(minute, samples).items():
                state.series[signal].set(minute, value)
        elif samples:
            for signal in KIND_SIGNALS[kind_name]:
                values = samples.get(signal)
                if values:
                    state.series[signal].set(minute, minute_median(values))

    def _advance_combined(self, state: PatientState, out: Output, final: bool) -> None:
        cursors = [kind.cursor for kind in state.kinds.values()]
        newest = max(cursors)
        target = newest if final else min(
            cursor for cursor in cursors if newest - cursor <= self.late_after_min)
        while state.combined_cursor < target:
            minute = state.combined_cursor + 1
            state.combined_cursor = minute
            now = (minute + 1) * MINUTE
            if minute % 60 == 0:
                self._learn_baseline(state, minute)
            late = state.max_ts - now > self.late_after_min * MINUTE
            alerts, trend = self.judge_combined_minute(state, minute, state.rules, late)
            out.alerts += alerts
            out.trends.append(trend)

    def judge_kind_minute(self, state: PatientState, group: str, minute: int,
                          rule_states: dict[str, RuleState], late: bool) -> list[AlertEvent]:
        """Judge one minute of a kind of reading ("temperature" or "oximetry") with the rules
        judged on it, through the hysteresis in `rule_states`; the events that result."""
        rules = self._judged_on[group]
        quiet_kinds = self._quiet_kinds
        covered = group in quiet_kinds.groups
        if covered and quiet_kinds.holds(state, group, minute) and \
                _all_idle(rule_states, self._names[group]):
            quiet_kinds.note(state, group, minute)
            return []  # every rule still proven quiet, none pending: nothing would change
        at = Minute(state, minute, self.rules_file, self.rules_file.rules)
        judged = {}
        quiet = True
        for rule, config in rules:
            if rule.quiet is not None and rule.quiet(at, config):
                if _idle(rule_states.get(rule.name)):
                    continue  # cannot fire, nothing pending or to clear: nothing would change
            else:
                quiet = False
            judged[rule.name] = rule.judge(at, config)
        if covered and quiet:
            quiet_kinds.note(state, group, minute)
        return self._apply(state, rule_states, judged, minute, late)

    def judge_combined_minute(self, state: PatientState, minute: int,
                              rule_states: dict[str, RuleState], late: bool,
                              per_device: bool = True) -> tuple[list[AlertEvent], TrendPoint]:
        """Judge one combined minute (every signal at once); its events and trend point.
        `per_device=False` leaves out the rules judged per device (no data)."""
        day = ((minute + 1) * 60 - self._day_zero_s) / 86400  # `day_since_infusion`, inline
        at = combined_minute(state, minute, self.rules_file, day)
        judged: dict[str, Judgement] = {}
        for rule, config, keys in self._combined:
            if keys is None:
                if rule.quiet is not None and rule.quiet(at, config) and \
                        _idle(rule_states.get(rule.name)):
                    continue  # as in judge_kind_minute
                judged[rule.name] = rule.judge(at, config)
            elif per_device:
                for device_id in state.devices:
                    key = keys.get(device_id)
                    if key is None:
                        key = keys[device_id] = f"{rule.name}:{device_id}"
                    if rule.quiet is not None and rule.quiet(at, config, device_id) and \
                            _idle(rule_states.get(key)):
                        continue  # as in judge_kind_minute
                    judged[key] = rule.judge(at, config, device_id)
        return self._apply(state, rule_states, judged, minute, late), self._trend(at)

    def _learn_baseline(self, state: PatientState, minute: int) -> None:
        """Heart-rate, temperature and SpO2 baselines from the first hours, unless set per
        patient."""
        hours = self.rules_file.evaluation.baseline_hours
        first = state.first_ts // MINUTE
        if minute - first < hours * 60:
            return
        span = int(min(hours * 60, DAY_MIN))
        for signal, attribute in (("hr", "hr_baseline"), ("temp", "temp_baseline"),
                                  ("spo2", "spo2_baseline")):
            if getattr(state, attribute) is None:
                window = state.series[signal].window(first + span - 1, span)
                if np.count_nonzero(~np.isnan(window)) >= span // 10:
                    setattr(state, attribute, round(float(np.nanmedian(window)), 2))

    # --- alert events ---------------------------------------------------------------------

    def _apply(self, state: PatientState, rule_states: dict[str, RuleState],
               judged: dict[str, Judgement], minute: int, late: bool) -> list[AlertEvent]:
        """Each judgement through its rule's hysteresis; an event for each change."""
        if not judged:
            return []  # the usual minute: every rule quiet and idle
        events = []
        for key, judgement in judged.items():
            rule_state = rule_states.get(key)
            if rule_state is None:
                if not judgement.fire:
                    continue  # nothing to remember for a rule that has never been near firing
                rule_state = rule_states[key] = RuleState()
            rule = self._rules[key.partition(":")[0]]
            change = step(rule_state, minute, judgement.fire, judgement.clear,
                          rule.fire_after_min, rule.clear_after_min,
                          judgement.confirmed_since)
            if rule_state.firing and not math.isnan(judgement.value):
                rule_state.peak = judgement.value if rule_state.peak is None else rule.worse(
                    rule_state.peak, judgement.value)
            if change is None:
                continue
            if change == "cleared":
                remember_episode(rule_state, (minute + 1) * MINUTE)
            events.append(self._event(state, key, rule, rule_state, change, minute, judgement,
                                      late))
        return events

    def _event(self, state: PatientState, key: str, rule: _PatientRule, rule_state: RuleState,
               change: str, minute: int, judgement: Judgement, late: bool) -> AlertEvent:
        name = rule.spec.name
        detected = (minute + 1) * MINUTE
        day = self.patient.day_since_infusion(detected)
        start = rule_state.start if rule_state.start is not None else detected
        status = "firing" if change == "fired" else "resolved"
        evidence = {**judgement.evidence,
                    "peak": None if rule_state.peak is None else round(rule_state.peak, 2),
                    "day_since_infusion": round(day, 2)}
        if late:  # how long after it was measured it was judged (event time, not the clock)
            evidence["late_by_min"] = max(0, (state.max_ts - detected) // MINUTE)
        return AlertEvent(
            alert_id=f"{state.patient_id}/{key}/{start}", status=status, rule=name,
            severity=rule.severity(self.rules_file, day), patient_id=state.patient_id,
            start=start, detected_at=detected,
            summary=describe.summary(state.patient_id, name, status, start, evidence, day),
            source=rule.config.source,  # type: ignore[attr-defined]
            day_since_infusion=round(day, 2), late=late, evidence=evidence)

    def _trend(self, at: Minute) -> TrendPoint:
        """The trend point of a combined minute: its levels, slopes, baseline and NEWS2."""
        assert at.levels is not None and at.news2 is not None
        state, minute, levels = at.state, at.minute, at.levels
        news2, scores = at.news2
        temp_slope = hr_slope = None
        if self.slopes:
            temp_slope = rounded(slope_of(state.series["temp"], minute, 120, 4), 3)
            hr_slope = rounded(slope_of(state.series["hr"], minute, 60, 10), 2)
        return TrendPoint(
            patient_id=state.patient_id, ts=(minute + 1) * MINUTE,
            temp=rounded(levels["temp"], 2), hr=rounded(levels["hr"]),
            spo2=rounded(levels["spo2"]), rr=rounded(levels["rr"]),
            temp_slope=temp_slope, hr_slope=hr_slope,
            hr_baseline=state.hr_baseline, news2=news2 if len(scores) >= 2 else None,
            news2_parameters=tuple(scores))


def _all_idle(rule_states: dict[str, RuleState], names: tuple[str, ...]) -> bool:
    """Whether every rule of `names` is idle (`_idle`)."""
    for name in names:
        rule_state = rule_states.get(name)
        if rule_state is not None and (rule_state.firing or rule_state.pending_since is not None):
            return False
    return True


def _idle(rule_state: RuleState | None) -> bool:
    """Whether a rule has nothing pending or firing: a judgement that does not fire changes
    nothing then (`hysteresis.step` with no fire only clears a pending run)."""
    return rule_state is None or not (rule_state.firing or rule_state.pending_since is not None)


def rounded(value: float, digits: int = 1) -> float | None:
    """A trend point's number: None for NaN (not measured)."""
    return None if math.isnan(value) else round(value, digits)
