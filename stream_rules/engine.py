"""The rule engine: (state, readings) -> (state, alert events, trend points). Pure: no I/O, no
clock, no Faust. Event time decides everything.

Each kind of reading (temperature, oximetry) has its own cursor: a minute is judged once that
kind's newest reading is `lateness_s` past the minute's end. A device that was offline and
uploads its buffer therefore has its minutes judged in order when the upload arrives, and what
they cause is marked late. Rules that need every signal at once (NEWS2, CRS suspicion, no data)
follow the slowest kind that is not more than `late_after_min` behind. Every step depends only
on the sequence of readings, so any batching of the same readings gives the same events, and a
duplicate (same device and seq, or same ts) changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from stream_rules import describe
from stream_rules.config import RulesFile
from stream_rules.features import minute_median, slope_of
from stream_rules.hysteresis import step
from stream_rules.rules import Judgement, combined_rules, oximetry_rules, temperature_rules
from stream_rules.series import DAY_MIN
from stream_rules.state import KIND_SIGNALS, DeviceState, KindState, PatientState, RuleState
from vitals.patients import Patient
from vitals.records import AlertEvent, Reading, TrendPoint

ARTEFACT_FLAGS = frozenset({"motion", "probe_off", "low_perfusion"})
LOW_IS_WORSE = frozenset({"desaturation", "severe_desaturation"})
MINUTE = 60_000


@dataclass(slots=True)
class Output:
    alerts: list[AlertEvent] = field(default_factory=list)
    trends: list[TrendPoint] = field(default_factory=list)


class Engine:
    """The rules for one patient (the rules file with the patient's overrides merged in)."""

    def __init__(self, rules: RulesFile, patient: Patient) -> None:
        self.patient = patient
        self.rf = rules.for_patient(patient.id)
        self.lateness_ms = int(self.rf.evaluation.lateness_s * 1000)
        self.late_after_min = self.rf.evaluation.late_after_min
        override = rules.patients.get(patient.id)
        self.baseline = override.baseline if override else None

    def new_state(self) -> PatientState:
        s = PatientState(self.patient.id)
        if self.baseline is not None:
            s.hr_baseline, s.temp_baseline = self.baseline.hr, self.baseline.temp
        return s

    def process(self, state: PatientState | None, readings: Iterable[Reading]) -> Output:
        """Feed readings (in arrival order) into `state`, which is updated in place."""
        s = state if state is not None else self.new_state()
        out = Output()
        for r in readings:
            if r.patient_id == s.patient_id and self._take(s, r):
                self._advance(s, r.kind, out, final=False)
        return out

    def flush(self, state: PatientState) -> Output:
        """The end of a recorded stream: judge every minute up to the newest reading."""
        out = Output()
        for kind in list(state.kinds):
            self._advance(state, kind, out, final=True)
        return out

    def silence(self, state: PatientState, now_ms: int) -> Output:
        """Live only: devices from which nothing has been received for `no_data.after_min` by
        the wall clock. Event time cannot notice a patient whose every device went quiet; the
        worker calls this from a timer. It shares the no_data rule state with the event-time
        check, so the two never page twice for one silence, and data arriving clears it."""
        out = Output()
        cfg = self.rf.rules.no_data
        after = cfg.after_min * MINUTE
        for device_id, dev in state.devices.items():
            key = f"no_data:{device_id}"
            st = state.rules.get(key)
            if dev.last_received < 0 or now_ms - dev.last_received < after or (
                    st is not None and st.firing):
                continue
            st = state.rules[key] = RuleState(firing=True, start=dev.last_received + after)
            last = dev.last_valid_ts if dev.last_valid_ts >= 0 else dev.first_ts
            silent_min = (now_ms - dev.last_received) / MINUTE
            j = Judgement(True, False, silent_min, {
                "device": device_id, "kind": dev.kind, "silent_min": silent_min,
                "after_min": cfg.after_min, "last_valid_at": last, "battery": dev.battery,
                "sensor_off": dev.sensor_off, "judged_by": "wall clock"})
            out.alerts.append(self._event(state, key, "no_data", st, "fired",
                                          (st.start or 0) // MINUTE, j, late=False))
        return out

    # --- readings ---------------------------------------------------------------------

    def _take(self, s: PatientState, r: Reading) -> bool:
        dev = s.devices.get(r.device_id)
        if dev is None:
            dev = s.devices[r.device_id] = DeviceState(r.kind, first_ts=r.ts)
        if not dev.first_time(r.seq, r.ts):
            return False
        dev.last_ts = max(dev.last_ts, r.ts)
        dev.last_received = max(dev.last_received, r.received_at)
        if r.battery is not None:
            dev.battery = r.battery
        minute = r.ts // MINUTE
        kind = s.kinds.get(r.kind)
        if kind is None:
            kind = s.kinds[r.kind] = KindState(cursor=minute - 1)
            if s.combined_cursor < 0:
                s.combined_cursor = minute - 1
        if s.first_ts < 0:
            s.first_ts = r.ts
        samples = self._samples(s, r, dev)
        if samples:
            dev.last_valid_ts = max(dev.last_valid_ts, r.ts)
            if minute <= kind.cursor:
                s.stale_readings += 1  # that minute was judged already
            else:
                slot = kind.open.setdefault(minute, {})
                for signal, value in samples.items():
                    slot.setdefault(signal, []).append(value)
        kind.max_ts = max(kind.max_ts, r.ts)
        s.max_ts = max(s.max_ts, r.ts)
        return True

    def _samples(self, s: PatientState, r: Reading, dev: DeviceState) -> dict[str, float]:
        """The vital signs a reading carries; artefacts and sensor-off readings carry none."""
        if ARTEFACT_FLAGS.intersection(r.flags):
            return {}
        if r.kind == "temperature":
            if r.temp is None:
                return {}
            dev.site = r.site
            if r.temp < self.rf.temperature.sensor_off_below_c:
                dev.sensor_off = True  # room air, not hypothermia
                return {}
            dev.sensor_off = False
            s.temp_site = r.site
            correction = self.rf.temperature.site_correction_c.get(r.site or "axillary", 0.0)  # type: ignore[call-overload]
            return {"temp": r.temp + correction}
        out = {}
        if r.hr is not None:
            out["hr"] = r.hr
        if r.spo2 is not None:
            out["spo2"] = r.spo2
        if r.rr is not None:
            out["rr"] = r.rr
        return out

    # --- judging minutes ---------------------------------------------------------------

    def _advance(self, s: PatientState, kind_name: str, out: Output, final: bool) -> None:
        k = s.kinds[kind_name]
        end = k.max_ts if final else k.max_ts - self.lateness_ms
        target = end // MINUTE - (0 if final else 1)
        if target - k.cursor > DAY_MIN:  # a long silence: history beyond a day is not kept
            k.cursor = target - DAY_MIN
        if target <= k.cursor and not final:
            return  # no minute closed: the common case, one reading inside a minute
        rules = temperature_rules if kind_name == "temperature" else oximetry_rules
        while k.cursor < target:
            m = k.cursor + 1
            self._close_minute(s, k, kind_name, m)
            k.cursor = m
            late = s.max_ts - (m + 1) * MINUTE > self.late_after_min * MINUTE
            self._apply(s, rules(s, m, self.rf), m, late, out)
        self._advance_combined(s, out, final)

    def _close_minute(self, s: PatientState, k: KindState, kind_name: str, m: int) -> None:
        samples = k.open.pop(m, None)
        if samples:
            for signal in KIND_SIGNALS[kind_name]:
                values = samples.get(signal)
                if values:
                    s.series[signal].set(m, minute_median(values))

    def _advance_combined(self, s: PatientState, out: Output, final: bool) -> None:
        cursors = [k.cursor for k in s.kinds.values()]
        newest = max(cursors)
        target = newest if final else min(
            c for c in cursors if newest - c <= self.late_after_min)
        while s.combined_cursor < target:
            m = s.combined_cursor + 1
            s.combined_cursor = m
            now = (m + 1) * MINUTE
            if m % 60 == 0:
                self._learn_baseline(s, m)
            day = self.patient.day_since_infusion(now)
            judged, levels, (news2, scores) = combined_rules(s, m, self.rf, day)
            judged.update(self._silence(s, now))
            late = s.max_ts - now > self.late_after_min * MINUTE
            self._apply(s, judged, m, late, out)
            out.trends.append(self._trend(s, m, levels, news2, scores))

    def _silence(self, s: PatientState, now: int) -> dict[str, Judgement]:
        after = self.rf.rules.no_data.after_min * MINUTE
        out = {}
        for device_id, dev in s.devices.items():
            last = dev.last_valid_ts if dev.last_valid_ts >= 0 else dev.first_ts
            silent = now - last
            fire = silent >= after
            out[f"no_data:{device_id}"] = Judgement(fire, not fire, silent / MINUTE, {
                "device": device_id, "kind": dev.kind, "silent_min": silent / MINUTE,
                "after_min": self.rf.rules.no_data.after_min,
                "last_valid_at": dev.last_valid_ts if dev.last_valid_ts >= 0 else None,
                "battery": dev.battery, "sensor_off": dev.sensor_off})
        return out

    def _learn_baseline(self, s: PatientState, m: int) -> None:
        """Heart-rate and temperature baselines from the first hours, unless set per patient."""
        hours = self.rf.evaluation.baseline_hours
        first = s.first_ts // MINUTE
        if m - first < hours * 60:
            return
        span = int(min(hours * 60, DAY_MIN))
        for signal, attr in (("hr", "hr_baseline"), ("temp", "temp_baseline")):
            if getattr(s, attr) is None:
                window = s.series[signal].window(first + span - 1, span)
                if np.count_nonzero(~np.isnan(window)) >= span // 10:
                    setattr(s, attr, round(float(np.nanmedian(window)), 2))

    # --- alert events ---------------------------------------------------------------------

    def _apply(self, s: PatientState, judged: dict[str, Judgement], m: int, late: bool,
               out: Output) -> None:
        for key, j in judged.items():
            rule = key.partition(":")[0]
            cfg = getattr(self.rf.rules, rule)
            st = s.rules.get(key)
            if st is None:
                if not j.fire:
                    continue  # nothing to remember for a rule that has never been near firing
                st = s.rules[key] = RuleState()
            fire_after = getattr(cfg, "fire_after_min", 0)
            clear_after = getattr(cfg, "clear_after_min", 0)
            change = step(st, m, j.fire, j.clear, fire_after, clear_after)
            if st.firing and not math.isnan(j.value):
                worse = min if rule in LOW_IS_WORSE else max
                st.peak = j.value if st.peak is None else worse(st.peak, j.value)
            if change is not None:
                out.alerts.append(self._event(s, key, rule, st, change, m, j, late))

    def _event(self, s: PatientState, key: str, rule: str, st: RuleState, change: str, m: int,
               j: Judgement, late: bool) -> AlertEvent:
        cfg = getattr(self.rf.rules, rule)
        detected = (m + 1) * MINUTE
        day = self.patient.day_since_infusion(detected)
        severity = cfg.severity
        if rule == "crs_suspicion" and day > self.rf.evaluation.crs_window_days:
            severity = cfg.severity_after_window
        start = st.start if st.start is not None else detected
        status = "firing" if change == "fired" else "resolved"
        evidence = {**j.evidence, "peak": None if st.peak is None else round(st.peak, 2),
                    "day_since_infusion": round(day, 2)}
        return AlertEvent(
            alert_id=f"{s.patient_id}/{key}/{start}", status=status, rule=rule,
            severity=severity, patient_id=s.patient_id, start=start, detected_at=detected,
            summary=describe.summary(s.patient_id, rule, status, start, evidence, day),
            source=cfg.source, day_since_infusion=round(day, 2), late=late, evidence=evidence)

    def _trend(self, s: PatientState, m: int, levels: dict[str, float], news2: int,
               scores: dict[str, int]) -> TrendPoint:
        def val(x: float, digits: int = 1) -> float | None:
            return None if math.isnan(x) else round(x, digits)

        temp_slope = slope_of(s.series["temp"], m, 120, 4)
        hr_slope = slope_of(s.series["hr"], m, 60, 10)
        return TrendPoint(
            patient_id=s.patient_id, ts=(m + 1) * MINUTE, temp=val(levels["temp"], 2),
            hr=val(levels["hr"]), spo2=val(levels["spo2"]), rr=val(levels["rr"]),
            temp_slope=val(temp_slope, 3), hr_slope=val(hr_slope, 2),
            hr_baseline=s.hr_baseline, news2=news2 if len(scores) >= 2 else None,
            news2_parameters=tuple(scores))
