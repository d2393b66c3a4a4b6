"""The rule engine at its boundaries, with artefacts that must not fire, hysteresis, late
uploads, and the invariances that make replay and restarts safe."""

from __future__ import annotations

import datetime as dt
import itertools
import zlib
from collections.abc import Callable

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_rules import state as state_io
from stream_rules.config import Baseline, PatientRules, load_rules
from stream_rules.engine import Engine, Output
from stream_rules.rules.spec import hhmm
from vitals.patients import Patient
from vitals.records import AlertEvent, DeviceStatus, Reading

RULES = load_rules(None)
PATIENT = Patient(id="P001", infusion=dt.date(2026, 11, 18), team="haem-a", product="axi-cel")
T0 = int(dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC).timestamp() * 1000)
MIN = 60_000

Vital = Callable[[int], float | None]  # second -> value (None: no reading)


def readings(minutes: int, temp: Vital | None = None, spo2: Vital | None = None,
             hr: Vital | None = None, ox_flags: Callable[[int], tuple[str, ...]] | None = None,
             temp_every_s: int = 60, site: str = "core", ox_skip: Callable[[int], bool]
             | None = None) -> list[Reading]:
    """A thermometer every `temp_every_s` and an oximeter at 1 Hz, in time order."""
    out = []
    for s in range(minutes * 60):
        ts = T0 + s * 1000
        if temp is not None and s % temp_every_s == 0 and (v := temp(s)) is not None:
            out.append(Reading("P001", "th-1", ts, "temperature", ts + 200, seq=s // temp_every_s,
                               temp=float(v), site=site))  # type: ignore[arg-type]
        if (spo2 is not None or hr is not None) and not (ox_skip and ox_skip(s)):
            sp = None if spo2 is None else spo2(s)
            h = None if hr is None else hr(s)
            out.append(Reading("P001", "ox-1", ts, "oximetry", ts + 200, seq=s,
                               spo2=None if sp is None else float(sp),
                               hr=None if h is None else float(h),
                               flags=ox_flags(s) if ox_flags else ()))
    return out


def run(rs: list[Reading], rules=RULES, flush: bool = True) -> list[AlertEvent]:
    eng = Engine(rules, PATIENT)
    s = eng.new_state()
    out = eng.process(s, rs)
    if flush:
        out.alerts += eng.flush(s).alerts
    return out.alerts


def fired(alerts: list[AlertEvent], rule: str) -> list[AlertEvent]:
    return [a for a in alerts if a.rule == rule and a.status == "firing"]


def const(v: float) -> Vital:
    return lambda _s: v


# --- boundaries ---------------------------------------------------------------------

def test_fever_fires_at_38_0_sustained_and_not_at_37_9() -> None:
    assert fired(run(readings(45, temp=const(38.0))), "fever")
    assert not fired(run(readings(45, temp=const(37.9))), "fever")


def test_fever_needs_its_minimum_duration() -> None:
    # window 20 min median, fires after 10 min of the condition: 38.5 for 5 min is a blip
    blip = readings(60, temp=lambda s: 38.5 if 20 * 60 <= s < 25 * 60 else 37.0)
    assert not fired(run(blip), "fever")


def _first_fever(every_s: int, hot_from_s: int = 30 * 60, temp: float = 38.4
                 ) -> tuple[AlertEvent, int]:
    """The fever page of a thermometer reporting every `every_s` that reads `temp` from
    `hot_from_s`; and the time of its first hot reading."""
    rs = readings(120, temp=lambda s: temp if s >= hot_from_s else 36.9, temp_every_s=every_s)
    first_hot = next(r.ts for r in rs if r.temp == temp)
    (fever,) = fired(run(rs, flush=False), "fever")
    return fever, first_hot


def test_a_ten_minute_thermometer_confirms_a_fever_on_two_readings_in_a_row() -> None:
    """Issue #16: the cadence, not a fixed 20 + 10 minutes, sets the delay; and a sparse
    device's minute is judged when its reading arrives, not a reading later."""
    fever, first_hot = _first_fever(600)
    assert fever.detected_at == first_hot + 10 * MIN + MIN  # the end of the second's minute
    assert fever.start == first_hot and fever.evidence["run_readings"] == 2
    assert "2 readings in a row >= 38 °C over 10 min" in fever.summary


def test_a_two_minute_patch_needs_four_readings_and_a_one_minute_one_six() -> None:
    for every_s, readings_needed in ((120, 4), (60, 6)):
        fever, first_hot = _first_fever(every_s)
        assert fever.evidence["run_readings"] == readings_needed
        # a 1- or 2-minute device waits `lateness_s` for its minute, as an oximeter does
        assert fever.detected_at - first_hot <= (readings_needed - 1) * every_s * 1000 + 4 * MIN


def test_one_high_reading_or_two_too_close_never_confirm_a_fever() -> None:
    lone = readings(120, temp=lambda s: 38.6 if s == 3000 else 36.9, temp_every_s=600)
    assert not fired(run(lone), "fever")
    brief = readings(60, temp=lambda s: 38.6 if 1200 <= s < 1440 else 36.9, temp_every_s=60)
    assert not fired(run(brief), "fever")  # four minutes: a span of 3 < 5


def _patch_and_spot_check(spot: float | None) -> list[Reading]:
    """A skin patch reading 0.7 C below a core of 38.05 C (so 37.85 with the default +0.5), and
    at 20 min a caregiver's oral spot check of `spot` C (None: no check)."""
    rs = readings(90, temp=lambda s: 37.35, temp_every_s=120, site="skin")
    if spot is not None:
        at = T0 + 20 * MIN + 30_000
        rs.append(Reading("P001", "app-1", at, "temperature", at + 200, seq=1, temp=spot,
                          site="oral", flags=("manual",)))
        rs.sort(key=lambda r: r.ts)
    return rs


def test_a_spot_check_calibrates_a_patch_that_reads_low_and_the_page_says_so() -> None:
    assert not fired(run(_patch_and_spot_check(None)), "fever")  # 37.85 with the default
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    alerts = eng.process(s, _patch_and_spot_check(38.05)).alerts
    (fever,) = fired(alerts, "fever")
    assert fever.evidence["site_correction_c"] == 0.7 and fever.evidence["measured"] == 37.35
    assert "(core-equivalent; skin reading 37.4 °C, +0.7 °C from a spot check at" in fever.summary
    assert state_io.load(state_io.dump(s)).devices["th-1"].offsets == [0.7]


def test_a_spot_check_gives_the_same_events_in_whatever_order_it_arrives() -> None:
    """The patch and the caregiver's phone are separate MQTT clients: the spot check can reach
    the rules before the patch readings taken minutes before it, or after the one of its own
    minute (a redelivery, a fast replay). Until the patch's next reading after its minute, the
    events are the same, and the offset is from the patch reading at or before the spot check.
    (Later still, it is late data: the minutes judged meanwhile keep their correction.)"""
    patch = readings(90, temp=lambda s: 37.2 + s / 3600, temp_every_s=120, site="skin")
    at = T0 + 20 * MIN + 30_000
    spot = Reading("P001", "app-1", at, "temperature", at + 200, seq=1, temp=38.1, site="oral",
                   flags=("manual",))
    first = next(i for i, r in enumerate(patch) if r.ts >= at - 4 * MIN)
    following = next(i for i, r in enumerate(patch) if r.ts // MIN > at // MIN)
    outcomes = set()
    for position in range(first, following + 1):
        eng = Engine(RULES, PATIENT)
        s = eng.new_state()
        out = eng.process(s, [*patch[:position], spot, *patch[position:]])
        out.alerts += eng.flush(s).alerts
        assert s.devices["th-1"].offset_at == [at]
        outcomes.add((tuple(msgspec.json.encode(a) for a in out.alerts),
                      tuple(s.devices["th-1"].offsets)))
    [(alerts, offsets)] = outcomes  # one outcome for every arrival order
    paired = max((r for r in patch if r.ts <= at), key=lambda r: r.ts)
    assert offsets == (round(38.1 - paired.temp, 2),) and alerts


def test_a_spot_check_waiting_for_its_minute_survives_a_restart() -> None:
    patch = readings(60, temp=lambda s: 37.35, temp_every_s=120, site="skin")
    at = T0 + 20 * MIN + 30_000
    spot = Reading("P001", "app-1", at, "temperature", at + 200, seq=1, temp=38.05,
                   site="oral", flags=("manual",))
    before = [r for r in patch if r.ts <= at]
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    eng.process(s, [*before, spot])
    assert s.spot_checks == [(at, 38.05)]  # its minute is still open
    s = state_io.load(state_io.dump(s))
    eng.process(s, [r for r in patch if r.ts > at])
    assert s.spot_checks == [] and s.devices["th-1"].offsets == [0.7]


def test_a_spot_check_far_from_the_patch_is_not_used() -> None:
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    eng.process(s, _patch_and_spot_check(39.5))  # +2.15 C: outside 0.0-1.5, not a calibration
    assert s.devices["th-1"].offsets == [] and s.temp_calibrated_at == -1


def test_fever_uses_the_core_equivalent_of_an_axillary_reading() -> None:
    alerts = run(readings(45, temp=const(37.5), site="axillary"))  # +0.5 -> 38.0
    (fever,) = fired(alerts, "fever")
    assert fever.evidence["site"] == "axillary" and fever.evidence["measured"] == 37.5
    assert "axillary reading 37.5" in fever.summary
    assert not fired(run(readings(45, temp=const(37.4), site="axillary")), "fever")


def test_high_fever_boundary() -> None:
    assert fired(run(readings(45, temp=const(39.0))), "high_fever")
    assert not fired(run(readings(45, temp=const(38.9))), "high_fever")


def test_desaturation_fires_at_93_not_94_and_severe_at_90() -> None:
    assert fired(run(readings(20, spo2=const(93), hr=const(70))), "desaturation")
    assert not fired(run(readings(20, spo2=const(94), hr=const(70))), "desaturation")
    assert fired(run(readings(20, spo2=const(90), hr=const(70))), "severe_desaturation")
    assert not fired(run(readings(20, spo2=const(91), hr=const(70))), "severe_desaturation")


def test_tachycardia_fires_at_131_not_130() -> None:
    assert fired(run(readings(30, spo2=const(97), hr=const(131))), "tachycardia")
    assert not fired(run(readings(30, spo2=const(97), hr=const(130))), "tachycardia")


# --- artefacts that must not fire ----------------------------------------------------

def test_motion_flagged_drops_do_not_fire() -> None:
    motion = lambda s: ("motion",) if (s // 60) % 2 == 0 else ()  # noqa: E731
    rs = readings(30, spo2=lambda s: 80 if (s // 60) % 2 == 0 else 97, hr=const(70),
                  ox_flags=motion)
    alerts = run(rs)
    assert not fired(alerts, "desaturation") and not fired(alerts, "severe_desaturation")


def test_short_unflagged_spikes_are_filtered() -> None:
    # 3 s of a false SpO2 80 and heart rate 180 every 20 s: motion the device did not flag
    spike = lambda s: s % 20 < 3  # noqa: E731
    alerts = run(readings(30, spo2=lambda s: 80 if spike(s) else 97,
                          hr=lambda s: 180 if spike(s) else 72))
    for rule in ("desaturation", "severe_desaturation", "tachycardia"):
        assert not fired(alerts, rule), rule


def test_probe_off_sentinels_are_not_vital_signs() -> None:
    rs = readings(40, spo2=const(None), hr=const(None), ox_flags=lambda s: ("no_signal",))
    alerts = run(rs)
    assert not [a for a in alerts if a.rule != "no_data"]
    (silent,) = fired(alerts, "no_data")  # 30 min without a valid reading
    assert silent.evidence["device"] == "ox-1"


def test_a_patch_at_room_temperature_is_sensor_off_not_hypothermia() -> None:
    rs = readings(50, temp=const(26.0), spo2=const(97), hr=const(70))
    alerts = run(rs)
    assert not fired(alerts, "news2") and not fired(alerts, "news2_high")
    (silent,) = fired(alerts, "no_data")
    assert silent.evidence["device"] == "th-1" and silent.evidence["sensor_off"] is True


# --- hysteresis -------------------------------------------------------------------

def test_fever_between_thresholds_stays_and_clears_below_for_long_enough() -> None:
    def temp(s: int) -> float:
        m = s // 60
        return 38.4 if m < 40 else 37.8 if m < 80 else 37.5

    alerts = [a for a in run(readings(150, temp=temp)) if a.rule == "fever"]
    assert [a.status for a in alerts] == ["firing", "resolved"]
    firing, resolved = alerts
    assert firing.alert_id == resolved.alert_id and resolved.start == firing.start
    # 37.8 (above clear_below 37.7) keeps it; clears only after 30 min below
    assert resolved.detected_at >= T0 + (80 + 30) * MIN
    assert resolved.evidence["peak"] == 38.4


def test_a_patient_near_the_threshold_does_not_flap() -> None:
    alerts = run(readings(240, temp=lambda s: 38.05 if (s // 60) % 2 else 37.95))
    assert len([a for a in alerts if a.rule == "fever"]) <= 1


# --- combined rules -----------------------------------------------------------------

def test_masked_fever_with_high_heart_rate_is_still_crs_suspicion() -> None:
    # fever for an hour, then antipyretics bring temperature down while heart rate stays up
    rs = readings(180, temp=lambda s: 38.6 if s < 60 * 60 else 37.2, spo2=const(97),
                  hr=lambda s: 75 if s < 30 * 60 else 132)
    alerts = run(rs)
    crs = fired(alerts, "crs_suspicion")
    assert crs and crs[0].severity == "critical"  # day 2 after infusion: within 14 days
    assert "Not a CRS grade" in crs[0].summary
    assert not [a for a in alerts if a.rule == "crs_suspicion" and a.status == "resolved"]


def test_news2_is_partial_and_says_so() -> None:
    alerts = run(readings(40, temp=const(39.2), spo2=const(92), hr=const(115)))
    (news,) = fired(alerts, "news2")
    assert news.evidence["partial"] is True and "blood pressure" in news.summary
    assert news.evidence["scores"] == {"temp": 2, "hr": 2, "spo2": 2}


# --- late uploads and determinism ---------------------------------------------------------

def test_an_offline_oximeters_upload_is_judged_in_order_and_marked_late() -> None:
    low = lambda s: 88 if 60 * 60 <= s < 90 * 60 else 97  # noqa: E731
    live = readings(150, temp=const(36.8), spo2=low, hr=const(70),
                    ox_skip=lambda s: 40 * 60 <= s < 120 * 60)
    upload = [r for r in readings(150, spo2=low, hr=const(70)) if 40 * 60 <= (r.ts - T0) // 1000
              < 120 * 60]
    # on reconnect at minute 120 the device uploads its buffer, then goes on live
    cut = next(i for i, r in enumerate(live) if r.ts >= T0 + 120 * MIN)
    alerts = run(live[:cut] + upload + live[cut:])
    (severe,) = fired(alerts, "severe_desaturation")
    assert severe.late and T0 + 60 * MIN <= severe.start < T0 + 70 * MIN
    # while it was offline, the device was reported silent (judged as the thermometer's
    # time went on), and that cleared once its readings arrived
    (silent,) = fired(alerts, "no_data")
    assert silent.evidence["device"] == "ox-1" and not silent.late


LOW_SPO2 = lambda s: 88 if 60 * 60 <= s < 90 * 60 else 97  # noqa: E731
OFFLINE = lambda s: 40 * 60 <= s < 120 * 60  # noqa: E731  the oximeter's outage (seconds)


def _buffer_after_live(reconnect_min: int = 130) -> list[Reading]:
    """An oximeter offline from minute 40 to 120 whose gateway sends live readings from
    minute 120 first, and its buffer (a desaturation at minutes 60-90) at `reconnect_min`."""
    live = readings(150, temp=const(36.8), spo2=LOW_SPO2, hr=const(70), ox_skip=OFFLINE)
    upload = [r for r in readings(150, spo2=LOW_SPO2, hr=const(70)) if OFFLINE((r.ts - T0) // 1000)]
    cut = next(i for i, r in enumerate(live) if r.ts >= T0 + reconnect_min * MIN)
    return live[:cut] + upload + live[cut:]


def _episodes(alerts: list[AlertEvent]) -> list[tuple[str, str, int, int]]:
    return sorted((a.rule, a.status, a.start, a.detected_at) for a in alerts
                  if a.rule != "no_data")


def test_a_buffer_sent_after_newer_live_readings_is_judged_again_and_marked_late() -> None:
    """A gateway that sends live readings first and its buffer after: the buffer's minutes
    were judged empty; they are filled in and judged again, and what they show is paged,
    late, with the same starts and times as if the readings had come in order."""
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    alerts = eng.process(s, _buffer_after_live()).alerts + eng.flush(s).alerts
    in_order = run(readings(150, temp=const(36.8), spo2=LOW_SPO2, hr=const(70)))
    assert _episodes(alerts) == _episodes(in_order)
    (severe,) = fired(alerts, "severe_desaturation")
    assert severe.late and severe.evidence["late_by_min"] >= 60
    assert T0 + 60 * MIN <= severe.start < T0 + 70 * MIN
    # the episode was over before it was known: the page says from when to when, and late
    assert f"from {hhmm(severe.start)} to {hhmm(severe.evidence['ended_at'])}" in severe.summary
    assert "Reported late: its readings arrived 1 h" in severe.summary
    assert s.stale_readings == 0 and not any(kind.late for kind in s.kinds.values())


def test_late_readings_for_minutes_that_had_data_are_counted_not_merged() -> None:
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    rs = readings(30, spo2=const(97), hr=const(70))
    again = [msgspec.structs.replace(r, seq=None, ts=r.ts + 1, spo2=80.0) for r in rs[:600]]
    more = readings(40, spo2=const(97), hr=const(70))[1800:]
    alerts = eng.process(s, rs + again + more).alerts
    assert not fired(alerts, "desaturation")
    assert s.stale_readings == len(again)  # each of those minutes had its own readings


def test_a_late_episode_that_overlaps_one_paged_live_is_not_paged_again() -> None:
    """Live judging paged a fever; a buffer then fills minutes inside it: one page only."""
    hot = lambda s: 38.6 if s >= 20 * 60 else 36.8  # noqa: E731
    every = readings(120, temp=hot)
    gap = [r for r in every if 50 * MIN <= r.ts - T0 < 70 * MIN]
    rest = [r for r in every if r not in gap]
    cut = next(i for i, r in enumerate(rest) if r.ts >= T0 + 90 * MIN)
    alerts = run(rest[:cut] + gap + rest[cut:])
    assert len(fired(alerts, "fever")) == 1 and not fired(alerts, "fever")[0].late


def test_a_late_episode_still_going_is_paged_once_and_cleared_live() -> None:
    """A fever in a buffer that still holds at the newest minute: the late pass pages it, and
    the live rule takes it over (it clears once; it does not fire a second time)."""
    temp = lambda s: 38.6 if 30 * 60 <= s < 100 * 60 else 36.8  # noqa: E731
    every = readings(160, temp=temp, temp_every_s=60)
    buffered = [r for r in every if 10 * MIN <= r.ts - T0 < 60 * MIN]
    rest = [r for r in every if r not in buffered]
    cut = next(i for i, r in enumerate(rest) if r.ts >= T0 + 62 * MIN)
    alerts = run(rest[:cut] + buffered + rest[cut:])
    fevers = [a for a in alerts if a.rule == "fever"]
    assert [a.status for a in fevers] == ["firing", "resolved"]
    assert fevers[0].late and "ended_at" not in fevers[0].evidence
    assert fevers[0].start == fevers[1].start < T0 + 45 * MIN
    assert not fevers[1].late


def _split(rs: list[Reading], cuts: list[int]) -> list[list[Reading]]:
    bounds = sorted({0, len(rs), *(c % (len(rs) + 1) for c in cuts)})
    return [rs[a:b] for a, b in itertools.pairwise(bounds)]


EPISODE = readings(150, temp=lambda s: 37.0 + min(1.6, max(0.0, (s - 1800) / 2400)),
                   spo2=lambda s: 97 - (5 if s > 6000 else 0), hr=lambda s: 72 + s // 200,
                   temp_every_s=300)
REFERENCE = run(EPISODE, flush=False)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=30),
       dups=st.lists(st.integers(min_value=0), max_size=30),
       restart=st.booleans())
def test_any_batching_duplicates_and_restarts_give_identical_events(
        cuts: list[int], dups: list[int], restart: bool) -> None:
    rs = list(EPISODE)
    for d in sorted(dups, reverse=True):  # a redelivered reading reappears later
        i = d % len(rs)
        rs.insert(min(len(rs), i + 1 + d % 50), rs[i])
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    out = Output()
    for batch in _split(rs, cuts):
        if restart:  # a worker restart between batches: the state goes through its bytes
            s = state_io.load(state_io.dump(s))
        got = eng.process(s, batch)
        out.alerts += got.alerts
    assert out.alerts == REFERENCE
    assert {a.rule for a in REFERENCE} >= {"fever", "desaturation", "crs_suspicion"}


BUFFERED = _buffer_after_live(reconnect_min=125)
BUFFERED_REFERENCE = run(BUFFERED, flush=False)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=20), restart=st.booleans())
def test_late_data_gives_identical_events_under_any_batching(cuts: list[int],
                                                             restart: bool) -> None:
    """The late pass runs when a cursor moves, which depends on the readings only: batches
    and restarts (the state through its bytes, late samples included) change nothing."""
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    alerts: list[AlertEvent] = []
    for batch in _split(BUFFERED, cuts):
        if restart:
            s = state_io.load(state_io.dump(s))
        alerts += eng.process(s, batch).alerts
    assert alerts == BUFFERED_REFERENCE
    assert any(a.late and a.rule == "severe_desaturation" for a in BUFFERED_REFERENCE)


def test_state_of_a_day_stays_small() -> None:
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    eng.process(s, readings(24 * 60, temp=lambda t: 36.8 + (t % 7) / 20,
                            spo2=lambda t: 96 + t % 3, hr=lambda t: 70 + t % 11,
                            temp_every_s=300))
    raw = state_io.dump(s)
    assert len(raw) <= 6 * 1024  # compressed: ~15 KiB of msgpack (issue #15)
    assert state_io.dump(state_io.load(raw)) == raw


def test_live_silence_fires_once_by_the_wall_clock_and_clears_when_data_returns() -> None:
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    first = readings(10, spo2=const(97), hr=const(70))
    eng.process(s, first)
    last_received = first[-1].received_at
    assert not eng.silence(s, last_received + 29 * MIN).alerts
    (alert,) = eng.silence(s, last_received + 31 * MIN).alerts
    assert alert.rule == "no_data" and alert.evidence["judged_by"] == "wall clock"
    # the worker stores the state and alerting decodes the event: both with integer times
    s = state_io.load(state_io.dump(s))
    assert msgspec.json.decode(msgspec.json.encode(alert), type=AlertEvent) == alert
    assert isinstance(alert.start, int) and not alert.alert_id.endswith(".0")
    assert not eng.silence(s, last_received + 40 * MIN).alerts  # once, not every tick
    back = [Reading(r.patient_id, r.device_id, r.ts + 40 * MIN, r.kind, r.received_at + 40 * MIN,
                    seq=(r.seq or 0) + 100_000, spo2=r.spo2, hr=r.hr) for r in first]
    out = eng.process(s, back)
    cleared = [a for a in out.alerts if a.rule == "no_data" and a.status == "resolved"]
    assert [a.alert_id for a in cleared] == [alert.alert_id]


def offline(device: str, received_at: int, state: str = "offline") -> DeviceStatus:
    return DeviceStatus("P001", device, state, received_at)  # type: ignore[arg-type]


def test_a_last_will_is_paged_as_offline_since_that_moment() -> None:
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    first = readings(10, spo2=const(97), hr=const(70))
    eng.process(s, first)
    last_received = first[-1].received_at
    went = last_received + 90_000  # the broker's keepalive noticed it 1.5 min later
    eng.process(s, [offline("ox-1", went), offline("ox-9", went)])  # ox-9: never heard of
    assert "ox-9" not in s.devices
    s = state_io.load(state_io.dump(s))  # remembered in the stored state
    assert not eng.silence(s, last_received + 29 * MIN).alerts
    (alert,) = eng.silence(s, last_received + 31 * MIN).alerts
    assert alert.start == went and alert.evidence["offline_at"] == went
    assert f"ox-1 went offline at {hhmm(went)} (its connection dropped" in alert.summary
    assert f"since {hhmm(went)}" in alert.summary


def test_data_after_a_last_will_or_an_online_status_forgets_it() -> None:
    eng = Engine(RULES, PATIENT)
    first = readings(10, spo2=const(97), hr=const(70))
    last_received = first[-1].received_at
    for after in ([offline("ox-1", last_received + 1000, "online")],
                  [Reading("P001", "ox-1", first[-1].ts + 2000, "oximetry",
                           last_received + 2000, seq=10_000, spo2=97.0, hr=70.0)]):
        s = eng.new_state()
        eng.process(s, [*first, offline("ox-1", last_received + 1000), *after])
        assert s.devices["ox-1"].offline_at == -1
        (alert,) = eng.silence(s, last_received + 40 * MIN).alerts
        assert "offline_at" not in alert.evidence and "went offline" not in alert.summary
    s = eng.new_state()  # a will older than the newest data (delivered late) changes nothing
    eng.process(s, [*first, offline("ox-1", last_received - 5000)])
    assert s.devices["ox-1"].offline_at == -1


def test_statuses_change_no_event_time_judgement() -> None:
    rs = readings(90, temp=lambda t: 37.0 + min(1.5, t / 3000), spo2=const(96), hr=const(90))
    with_statuses = [*rs[:500], offline("ox-1", rs[499].received_at), *rs[500:],
                     offline("th-1", rs[-1].received_at + 1, "online")]
    assert run(with_statuses) == run(rs)


def test_a_state_stored_by_an_older_version_still_loads() -> None:
    """Before compression, before a device's `offline_at` and a kind's `late` samples."""
    eng = Engine(RULES, PATIENT)
    s = eng.new_state()
    eng.process(s, readings(3, spo2=const(97), hr=const(70)))
    snapshot = msgspec.msgpack.decode(zlib.decompress(state_io.dump(s)))  # not compressed
    snapshot[5]["oximetry"] = snapshot[5]["oximetry"][:-1]  # the kind without `late`
    snapshot[6]["ox-1"] = snapshot[6]["ox-1"][:-1]  # the device record without its last field
    old = state_io.load(msgspec.msgpack.encode(snapshot))
    assert old.devices["ox-1"].offline_at == -1 and old.devices["ox-1"].last_ts >= 0
    assert old.kinds["oximetry"].late == {} and old.kinds["oximetry"].cursor >= 0


def test_rising_temperature_fires_at_its_slope_and_not_below() -> None:
    def ramp(per_h: float) -> Vital:
        return lambda s: round(37.3 + per_h * s / 3600, 2)

    # 0.45 C/h from 37.3 stays below 38.0 for the first 1.5 h: a warning before the fever
    alerts = run(readings(100, temp=ramp(0.45), temp_every_s=120))
    (rise,) = fired(alerts, "rising_temperature")
    assert rise.severity == "warning" and rise.evidence["trend_per_h"] >= 0.3
    assert not fired(run(readings(100, temp=ramp(0.2), temp_every_s=120)), "rising_temperature")


def test_relative_tachycardia_needs_the_baseline_plus_30() -> None:
    rules = RULES.model_copy(update={"patients": {"P001": PatientRules(baseline=Baseline(hr=70))}})
    assert fired(run(readings(30, spo2=const(97), hr=const(100)), rules=rules),
                 "tachycardia_relative")
    assert not fired(run(readings(30, spo2=const(97), hr=const(99)), rules=rules),
                     "tachycardia_relative")
    # without a baseline (none set, none learnt yet) the relative rule cannot judge
    assert not fired(run(readings(30, spo2=const(97), hr=const(120))), "tachycardia_relative")


def test_news2_fires_on_aggregate_5_or_a_single_3_and_not_on_4() -> None:
    # temp 38.5 -> 1, hr 112 -> 2, spo2 95 -> 1: aggregate 4, no 3
    assert not fired(run(readings(40, temp=const(38.5), spo2=const(95), hr=const(112))), "news2")
    # temp 39.2 -> 2 instead: aggregate 5
    assert fired(run(readings(40, temp=const(39.2), spo2=const(95), hr=const(112))), "news2")
    # a single 3 (spo2 91) with everything else normal
    (single,) = fired(run(readings(40, temp=const(37.0), spo2=const(91), hr=const(70))), "news2")
    assert single.evidence["scores"]["spo2"] == 3 and single.evidence["value"] == 3


def test_the_peak_of_a_desaturation_is_its_lowest_spo2() -> None:
    alerts = run(readings(60, spo2=lambda s: 92 if s < 15 * 60 else 85 if s < 25 * 60 else 98,
                          hr=const(70)))
    for rule in ("desaturation", "severe_desaturation"):
        (resolved,) = [a for a in alerts if a.rule == rule and a.status == "resolved"]
        assert resolved.evidence["peak"] == 85, rule


def test_crs_suspicion_pages_as_an_error_after_the_crs_window() -> None:
    late = PATIENT.model_copy(update={"infusion": dt.date(2026, 10, 20)})  # day 31
    rs = readings(90, temp=const(38.6), spo2=const(97), hr=const(132))
    eng = Engine(RULES, late)
    (crs,) = fired(eng.process(eng.new_state(), rs).alerts, "crs_suspicion")
    assert crs.severity == "error" and crs.evidence["within_crs_window"] is False
