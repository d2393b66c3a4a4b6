"""ICANS episodes and the app's reports: the wearables' traffic is unchanged by them, they
are deterministic and chunk-invariant, every report parses with ingest's parser, and the
cohort's ICANS rates follow CLINICAL.md's product table."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter, defaultdict

import numpy as np
import pytest
from pydantic import ValidationError

from evaluation.run import registry_of
from ingest.parse import Parser
from simulators import cohort, icans, stream, truth
from simulators.plan import DAY, MINUTE, SECOND, Simulation
from tests.simulators.helpers import START, run, sim_of

# sha256 per device of a cohort's messages (6 patients, seed 11, 3 days, oximetry every 10 s),
# recorded from the generator before ICANS and reports existed (commit 5bdf278)
BEFORE = {
    "app-1": "1e8fa170959fc40ac98c1bebc49fad6ac9aab2fa0e4d7cf136f1f93be946c8e1",
    "ox-1": "f519e5301af9949d7978b91bfd660fdeaae460391d45c9e177ee4b1ded9bc1e0",
    "th-1": "0ce9085c07468baaa15b6b12301ffa6ceb83f99514979db1fbf7a93b6e95b27b",
}


def _digest(sim: Simulation) -> dict[str, str]:
    h: dict[str, hashlib._Hash] = {}
    for m in stream.Stream(sim, line=False):
        dev = m.topic.split("/")[3]
        h.setdefault(dev, hashlib.sha256()).update(
            m.topic.encode() + b"\0" + str(m.at).encode() + b"\0" + m.payload + b"\n")
    return {k: v.hexdigest() for k, v in sorted(h.items())}


def test_the_wearables_readings_are_byte_for_byte_what_they_were() -> None:
    with_reports = _digest(cohort.generate(6, 11, 3, START, ox_interval=10 * SECOND))
    assert with_reports["ox-1"] == BEFORE["ox-1"] and with_reports["th-1"] == BEFORE["th-1"]
    assert with_reports["app-1"] != BEFORE["app-1"]  # the app now sends reports too
    without = _digest(cohort.generate(6, 11, 3, START, ox_interval=10 * SECOND, reports=False))
    assert without == BEFORE


def _app_only(sim: Simulation) -> Simulation:
    """The cohort with only each patient's app device: fast, and the app's traffic is the
    same as in the whole cohort (its streams are seeded per patient and device)."""
    return dataclasses.replace(sim, patients=tuple(
        dataclasses.replace(p, devices=tuple(d for d in p.devices if d.id == p.report_device))
        for p in sim.patients))


def test_every_report_parses_with_ingest_and_seq_increases_per_device() -> None:
    sim = _app_only(cohort.generate(80, 3, 14, START))
    s = stream.Stream(sim, line=False)
    parser = Parser(registry_of(sim))
    kinds: Counter[str] = Counter()
    seqs: dict[str, list[int]] = defaultdict(list)
    for m in s:
        out = parser.parse(m.topic, m.payload, m.at)
        assert not out.rejections, (out.rejections, m.payload)
        for r in out.readings:
            kinds[r.kind] += 1
            seqs[m.topic].append(r.seq)
    assert set(kinds) == {"temperature", "symptoms", "neuro_check"}
    for topic, ss in seqs.items():
        assert ss == sorted(ss) and len(set(ss)) == len(ss), topic
    t = truth.build(sim, s.injected)
    checks = [r for r in t.reports if r.kind == "neuro_check"]
    sent = [r for r in checks if not r.missed]
    assert kinds["neuro_check"] == len(sent)
    assert 0.08 < 1 - len(sent) / len(checks) < 0.18  # ~10-15 % missed
    whys = Counter(r.why for r in t.reports)
    assert whys["noise"] > 50 and whys["icans"] > 0 and whys["fever"] > 0
    noise = {c for r in t.reports if r.why == "noise" for c in r.symptoms}
    assert noise <= {"headache", "fatigue", "nausea", "joint_pain", "other"}
    for i in t.icans:
        assert 0 <= i.worst_ice <= 9 and (i.seizure is None or i.grade >= 3)


def test_reports_are_deterministic_and_chunk_invariant() -> None:
    sim = _app_only(cohort.generate(12, 5, 14, START))
    ref = [m.payload for m in stream.Stream(sim, line=False, chunk=10 * MINUTE)]
    again = _app_only(cohort.generate(12, 5, 14, START))
    assert [m.payload for m in stream.Stream(again, line=False, chunk=10 * MINUTE)] == ref
    assert [m.payload for m in stream.Stream(sim, line=False, chunk=7 * 60 * MINUTE + 1)] == ref
    lines = stream.Stream(sim, line=True)
    msgs = [json.loads(x) for b in lines.batches() for x in b.items]
    assert [m["payload"].encode() for m in msgs] == ref  # file lines carry the same payloads


def test_icans_rates_follow_the_product_table() -> None:
    models = cohort.draw_patients(6000, seed=2, days=60, start=START)
    by: dict[str, list[tuple[bool, int, float, bool]]] = defaultdict(list)
    for p in models:
        neuro = [e for e in p.episodes if e.kind == "icans"]
        crs = any(e.kind in ("crs", "masked") for e in p.episodes)
        for e in neuro:
            by[p.product or ""].append((True, e.grade or 0, e.onset / DAY, crs))
        if not neuro:
            by[p.product or ""].append((False, 0, 0.0, crs))
    for product, row in icans.PRODUCTS.items():
        rows = by[product]
        got = [r for r in rows if r[0]]
        assert abs(len(got) / len(rows) - row.any) < 0.04, product
        assert abs(sum(r[1] >= 3 for r in got) / len(rows) - row.severe) < 0.03, product
        assert abs(float(np.median([r[2] for r in got])) - row.median_day) < 1.5, product
        assert sum(not r[3] for r in got) / len(got) < 0.15, product  # uncommon without CRS


ICANS_SCENARIO = """
seed: 4
duration: 8d
patients:
  - id: N1
    devices:
      - {id: app-1, type: thermometer, site: oral, interval: 12h, manual: true}
    episodes:
      - {kind: icans, grade: 3, onset: 2d, ice_nadir: 2, seizure: true, rise: 6h, plateau: 2d,
         recovery: 2d}
    reports: {missed: 0, missed_days: 0}
"""


def test_a_scenario_states_an_icans_episode() -> None:
    r = run(sim_of(ICANS_SCENARIO))
    (e,) = r.truth.icans
    assert (e.grade, e.worst_ice, e.start) == (3, 2, START + 2 * DAY)
    assert e.seizure is not None and e.worst_at == e.start + 6 * 3_600_000
    ice = [(b["ts"], sum(b["ice"].values())) for _, b, _ in r.readings("N1", "app-1")
           if b.get("kind") == "neuro_check"]
    assert min(v for _, v in ice) <= 3 and ice[0][1] == 10 and ice[-1][1] == 10
    assert any("seizure" in b.get("symptoms", ()) for _, b, _ in r.readings("N1", "app-1"))


@pytest.mark.parametrize(("text", "words"), [
    ("{kind: icans, onset: 1h}", "needs a grade"),
    ("{kind: icans, grade: 2, peak: 39}", "for fever episodes"),
    ("{kind: icans, grade: 2, seizure: true}", "grade >= 3"),
    ("{kind: crs, grade: 2, ice_nadir: 3}", "for icans episodes"),
])
def test_bad_icans_episodes_are_refused(text: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        sim_of(f"duration: 1d\npatients: [{{id: A, episodes: [{text}]}}]")


def test_reports_need_the_app_device() -> None:
    with pytest.raises(ValidationError, match="manual device"):
        sim_of("duration: 1d\npatients: [{id: A, reports: {}}]")
