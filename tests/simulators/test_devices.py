"""What devices add: sentinels, artefacts, offline batches, duplicates, clock skew, battery,
malformed payloads; and ingest's parser rejects exactly the injected faults."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ingest.parse import Parser
from simulators import cohort
from simulators.devices import MAX_BATCH, MAX_BATCH_BYTES, split_batches
from simulators.stream import Stream
from simulators.truth import Artefact, build
from tests.simulators.helpers import HOUR, MIN, START, Run, run, sim_of
from vitals.patients import load_patients

RATES = """
seed: 11
duration: 1d
patients:
""" + "".join(f"""
  - id: R{i:02d}
    devices:
      - id: ox-1
        type: oximeter
        interval: 2s
        rates: {{probe_off_per_day: 12, motion_per_hour: 2, motion_flagged: 0.5,
                duplicate: 0.01, malformed: 0.004}}
      - id: th-1
        type: thermometer
        interval: 1m
        rates: {{patch_off_per_day: 2, blanket_per_night: 1, malformed: 0.02}}
""" for i in range(12))


@pytest.fixture(scope="module")
def rates() -> Run:
    return run(sim_of(RATES))


def within(observed: float, expected: float, sigmas: float = 4.0) -> bool:
    """A Poisson count within `sigmas` standard deviations of its expectation."""
    return abs(observed - expected) <= sigmas * np.sqrt(expected) + 1


def test_artefact_windows_come_at_their_configured_rates(rates: Run) -> None:
    devices = 12
    assert within(len(rates.artefacts("probe_off")), 12 * devices)
    motion = rates.artefacts("motion")
    assert within(len(motion), 2 * 16 * devices)  # per awake hour, 07-23 h
    flagged = sum(bool(a.flagged) for a in motion) / len(motion)
    assert abs(flagged - 0.5) < 0.12
    assert within(len(rates.artefacts("patch_off")), 2 * devices)
    assert 0 < len(rates.artefacts("blanket")) <= 2 * devices  # one a night, 22-02 h


def test_sentinels_are_sent_exactly_in_probe_off_windows(rates: Run) -> None:
    for pid in ("R00", "R05"):
        windows = [(a.start, a.end) for a in rates.artefacts("probe_off", pid)]
        seen = set()
        for at, r, batched in rates.readings(pid, "ox-1"):
            if batched or not isinstance(r.get("spo2"), int) or not isinstance(r.get("hr"), int):
                continue  # a malformed one
            if r["seq"] in seen:
                continue  # a duplicate, published later than measured
            seen.add(r["seq"])
            off = any(s <= at < e for s, e in windows)
            assert (r["spo2"], r["hr"]) == ((127, 255) if off else (r["spo2"], r["hr"]))
            assert ("probe_off" in r.get("flags", [])) == off
            if not off:
                assert 50 <= r["spo2"] <= 100 and 30 <= r["hr"] <= 240


def test_motion_artefacts_drop_spo2_and_are_flagged_only_sometimes(rates: Run) -> None:
    seen = Counter()
    for pid in ("R01", "R02", "R03"):
        readings = [(at, r) for at, r, b in rates.readings(pid, "ox-1") if not b and "seq" in r]
        motion = rates.artefacts("motion", pid)
        for a in motion:
            if any(b is not a and b.start < a.end and a.start < b.end for b in motion):
                continue  # overlapping another: its flag may come from that one
            inside = [r for at, r in readings if a.start <= at < a.end and r["spo2"] != 127]
            if len(inside) < 3:
                continue
            marked = ["motion" in r.get("flags", []) for r in inside]
            seen[a.flagged] += 1
            assert any(marked) == bool(a.flagged)
    assert seen[True] and seen[False]


def test_duplicates_and_malformed_payloads_come_at_their_rates(rates: Run) -> None:
    live = sum(1 for m in rates.messages if m.topic.endswith("ox-1"))
    dups = [a for a in rates.artefacts("duplicate") if a.device == "ox-1"]
    assert within(len(dups), 0.01 * live)
    bad = [a for a in rates.artefacts("malformed") if a.device == "ox-1"]
    assert within(len(bad), 0.004 * live)
    th_live = sum(1 for m in rates.messages if m.topic.endswith("th-1"))
    assert within(len(rates.artefacts("malformed")) - len(bad), 0.02 * th_live)
    # a duplicate is the very same message published again, seconds later (short truncated
    # payloads may be equal by chance: only well-formed ones are counted)
    by_payload = Counter(m.payload for m in rates.messages if m.payload.endswith(b"}"))
    assert sum(n - 1 for n in by_payload.values() if n > 1) == len(
        rates.artefacts("duplicate"))
    for a in dups[:20]:
        assert 1000 <= a.end - a.start <= 10_000
    assert Counter(a.detail for a in rates.artefacts("malformed")).keys() == {
        "truncated", "string_value", "string_seq", "bad_kind"}


OFFLINE = """
seed: 12
duration: 6h
patients:
  - id: O1
    devices:
      - {id: ox-1, type: oximeter, rr: true, clock_skew: 20s}
      - {id: th-1, type: thermometer, interval: 1m, buffer: false}
    events:
      - {device: ox-1, kind: offline, start: 1h, duration: 2h}
      - {device: th-1, kind: offline, start: 1h, duration: 30m}
      - {device: ox-1, kind: clock_skew, start: 4h, duration: 30m, offset: 10m}
"""


def test_an_offline_device_uploads_its_buffer_at_reconnect_in_batches() -> None:
    r = run(sim_of(OFFLINE))
    back = START + 3 * HOUR
    msgs = r.device("O1", "ox-1")
    batches = [(m, b) for m, b in msgs if "readings" in b]
    assert len(batches) >= 7200 // MAX_BATCH
    assert all(m.at == back for m, _ in batches)  # published at reconnect
    assert all(len(b["readings"]) <= MAX_BATCH and len(m.payload) <= MAX_BATCH_BYTES
               for m, b in batches)
    # full batches: each but the last would overflow with one more reading
    for m, b in batches[:-1]:  # (a reading is under 120 bytes)
        assert len(b["readings"]) == MAX_BATCH or len(m.payload) + 120 > MAX_BATCH_BYTES
    readings = [x for _, b in batches for x in b["readings"]]
    seqs = [x["seq"] for x in readings]
    assert seqs == list(range(seqs[0], seqs[0] + 7200))  # every reading, in order
    # original times (device clock: 20 s ahead), one a second across the whole window
    ts = np.array([x["ts"] for x in readings])
    assert ts[0] - 20_000 - START - HOUR < 1000 and np.all(np.diff(ts) == 1000)
    assert ts[-1] - 20_000 < back
    # nothing live while offline; live again after, seq continuing
    live = [(m.at, b) for m, b in msgs if "seq" in b]
    assert not [1 for at, _ in live if START + HOUR <= at < back]
    after = [b["seq"] for at, b in live if at >= back]
    assert after[0] == seqs[-1] + 1
    # the broker's last will after 90 s, and the device announcing itself on reconnect
    status = [(m.at, json.loads(m.payload)) for m in r.messages
              if m.topic == "vitals/v1/O1/ox-1/status"]
    assert [(at, s["state"]) for at, s in status] == [(START + HOUR + 90_000, "offline"),
                                                      (back, "online")]
    # without a buffer, readings taken while offline are lost
    th = [b["seq"] for _, b in r.device("O1", "th-1")]
    assert len(th) == 6 * 60 - 30 and not any("readings" in b for _, b in r.device("O1", "th-1"))


def test_a_gateway_with_an_upload_delay_sends_live_readings_first_and_its_buffer_after(
        ) -> None:
    r = run(sim_of(OFFLINE.replace("rr: true, clock_skew: 20s",
                                   "rr: true, clock_skew: 20s, upload_delay: 10m")))
    back = START + 3 * HOUR
    msgs = r.device("O1", "ox-1")
    batches = [m.at for m, b in msgs if "readings" in b]
    live_after = [m.at for m, b in msgs if "seq" in b and m.at >= back]
    assert batches and set(batches) == {back + 10 * 60_000}
    # ten minutes of live readings (one a second) went before the buffer
    assert sum(1 for at in live_after if at < back + 10 * 60_000) == 600
    (offline,) = [a for a in r.artefacts("offline") if a.device == "ox-1"]
    assert offline.detail == "uploaded 600 s after live readings resumed"


def test_batches_are_split_at_1000_readings_and_64_kib() -> None:
    assert split_batches([10] * 2500) == [(0, 1000), (1000, 2000), (2000, 2500)]
    assert split_batches([80] * 1600) == [(0, 740), (740, 1480), (1480, 1600)]  # bytes first
    assert split_batches([100, 100, 100], most=1000, max_bytes=220) == [(0, 2), (2, 3)]
    assert split_batches([]) == [] and split_batches([70_000]) == [(0, 1)]


def test_clock_skewed_devices_send_offset_timestamps() -> None:
    r = run(sim_of(OFFLINE))
    for at, reading, batched in r.readings("O1", "ox-1"):
        if batched:
            continue
        in_window = START + 4 * HOUR <= at < START + 4 * HOUR + 30 * MIN
        assert reading["ts"] - at == 20_000 + (600_000 if in_window else 0)
    skew = r.artefacts("clock_skew", "O1")
    assert [(a.start, a.end, a.value) for a in skew] == [
        (START, START + 6 * HOUR, 20_000.0),
        (START + 4 * HOUR, START + 4 * HOUR + 30 * MIN, 620_000.0)]


def test_patch_off_reads_room_temperature_and_a_blanket_reads_high() -> None:
    r = run(sim_of("""
seed: 13
duration: 12h
patients:
  - id: P1
    baseline: {temp: 36.8, circadian: 0}
    devices: [{id: th-1, type: thermometer, interval: 1m, site: core, noise: 0.02}]
    events:
      - {device: th-1, kind: patch_off, start: 2h, duration: 2h, value: 23}
      - {device: th-1, kind: blanket, start: 6h, duration: 3h, value: 0.7}
"""))
    pts = [(at, b["temp"]) for at, b, _ in r.readings("P1", "th-1")]
    off = [v for at, v in pts if START + 2 * HOUR + 30 * MIN <= at < START + 4 * HOUR]
    assert all(21.9 < v < 24.1 for v in off)  # room temperature, drifting
    warm = [v for at, v in pts if START + 6 * HOUR + 30 * MIN <= at < START + 9 * HOUR]
    normal = [v for at, v in pts if at < START + 2 * HOUR]
    assert abs(np.mean(warm) - np.mean(normal) - 0.7) < 0.1


def test_battery_drains_and_flags_low_battery_below_15() -> None:
    r = run(sim_of("""
duration: 1d
patients:
  - id: B1
    devices: [{id: ox-1, type: oximeter, interval: 10s, battery: 30, drain_per_hour: 5}]
"""))
    readings = [b for _, b, _ in r.readings("B1", "ox-1")]
    battery = np.array([b["battery"] for b in readings])
    low = np.array(["low_battery" in b.get("flags", []) for b in readings])
    assert np.array_equal(low, battery < 15)
    assert battery.min() == 10 and battery.max() == 100 and low.any()  # recharged at 10 %
    windows = r.artefacts("low_battery", "B1")
    # below 15 %, i.e. 14.5 down to 10 (rounded), is 4.5 % at 5 %/h: 54 minutes
    assert windows and abs((windows[0].end - windows[0].start) - 54 * MIN) < MIN
    at = np.array([a for a, _, _ in r.readings("B1", "ox-1")])
    inside = np.zeros(len(at), bool)
    for w in windows:
        inside |= (at >= w.start) & (at < w.end)
    assert (inside != low).sum() <= 2 * len(windows)  # the edges round either way


def explain(rejection_reason: str, m_at: int, device: str, patient: str, payload: dict,
            truth_by: dict[tuple[str, str, str], list[Artefact]]) -> bool:
    """Is this rejection one of the faults the simulator says it injected?"""
    arts = truth_by.get((patient, device, rejection_reason), [])
    if rejection_reason in ("bad_json", "schema"):
        return any(a.end == m_at for a in truth_by.get((patient, device, "malformed"), []))
    if rejection_reason == "clock_skew":
        arts = truth_by.get((patient, device, "clock_skew"), [])
        return payload["ts"] - m_at > 300_000 and any(
            a.value and a.value > 300_000 and a.start <= payload["ts"] - a.value < a.end
            for a in arts)
    if rejection_reason == "out_of_range":
        arts = truth_by.get((patient, device, "patch_off"), [])
        temp = payload.get("temp", 99)
        celsius = (temp - 32) * 5 / 9 if payload.get("unit") == "F" else temp
        return celsius < 25 and any(
            a.start <= payload["ts"] <= a.end + 60_000 for a in arts)
    return False


def check_parser(messages: list, truth_artefacts: list[Artefact], patients: Path) -> Counter:
    parser = Parser(load_patients(patients))
    truth_by: dict[tuple[str, str, str], list[Artefact]] = {}
    for a in truth_artefacts:
        truth_by.setdefault((a.patient, a.device, a.kind), []).append(a)
    accepted = rejected = entries = 0
    reasons: Counter[str] = Counter()
    for m in messages:
        out = parser.parse(m.topic, m.payload, m.at)  # received when published
        accepted += len(out.readings) + (out.status is not None)
        rejected += len(out.rejections)
        entries += out.entries
        for rej in out.rejections:
            reasons[rej.reason] += 1
            try:
                payload = json.loads(rej.payload)
            except ValueError:
                payload = {}
            assert explain(rej.reason, m.at, rej.device_id, rej.patient_id, payload, truth_by), (
                rej.reason, rej.detail, m)
    assert accepted + rejected == entries
    malformed = sum(1 for a in truth_artefacts if a.kind == "malformed")
    assert reasons["bad_json"] + reasons["schema"] == malformed  # each one, and only those
    return reasons


def test_ingest_rejects_exactly_the_injected_faults_of_a_generated_cohort(tmp_path: Path
                                                                          ) -> None:
    sim = cohort.generate(40, seed=21, days=0.25, start=START)
    s = Stream(sim, line=False)
    messages = list(s)
    truth = build(sim, s.injected)
    cohort.write_patients(sim, tmp_path / "patients.yaml")
    reasons = check_parser(messages, truth.artefacts, tmp_path / "patients.yaml")
    assert sum(reasons.values()) >= 1 and set(reasons) <= {"bad_json", "schema", "clock_skew",
                                                           "out_of_range"}


def test_ingest_rejects_exactly_the_injected_faults_of_a_faulty_scenario(
        rates: Run, tmp_path: Path) -> None:
    sim = sim_of(OFFLINE.replace("seed: 12", "seed: 14") + """
  - id: O2
    devices:
      - id: ox-1
        type: oximeter
        ts_format: rfc3339
        rates: {offline_per_day: 12, malformed: 0.01, duplicate: 0.01, clock_skew_per_day: 6}
      - {id: th-1, type: thermometer, unit: F, interval: 1m,
         rates: {malformed: 0.05, patch_off_per_day: 8}}
""")
    r = run(sim)
    cohort.write_patients(sim, tmp_path / "patients.yaml")
    reasons = check_parser(r.messages, r.truth.artefacts, tmp_path / "patients.yaml")
    assert reasons["clock_skew"] and reasons["schema"] and reasons["bad_json"]
    batched_bad = [a for a in r.truth.artefacts if a.kind == "malformed" and a.end > a.start]
    assert batched_bad  # malformed readings inside uploaded batches, rejected one by one
    cohort.write_patients(rates.sim, tmp_path / "rates.yaml")
    reasons = check_parser(rates.messages, rates.truth.artefacts, tmp_path / "rates.yaml")
    assert reasons["out_of_range"]  # patches off, reading room temperature below 25 °C
