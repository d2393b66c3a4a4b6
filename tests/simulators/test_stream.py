"""Same seed, same bytes; chunk size changes nothing; the fast file writer writes what
`trafficfile.write` would."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulators import cohort, stream, truth
from simulators.plan import MINUTE
from tests.simulators.helpers import START, sim_of
from vitals import trafficfile

FAULTY = """
seed: 31
duration: 3h
patients:
  - id: D1
    devices:
      - {id: ox-1, type: oximeter, rr: true,
         rates: {offline_per_day: 40, probe_off_per_day: 40, motion_per_hour: 4,
                 duplicate: 0.01, malformed: 0.01, clock_skew_per_day: 10}}
      - {id: th-1, type: thermometer, interval: 1m, ts_format: rfc3339,
         rates: {offline_per_day: 30, patch_off_per_day: 20, duplicate: 0.05, malformed: 0.05}}
    episodes:
      - {kind: crs, grade: 3, onset: 30m, antipyretics: [1h30m]}
  - id: D2
    utc_offset: -5h
    devices:
      - {id: ox-1, type: oximeter, interval: 3s, rates: {offline_per_day: 30, duplicate: 0.02}}
      - {id: th-1, type: thermometer, interval: 7m, unit: F}
"""


def generate(path: Path, sim: object, chunk: int = 10 * MINUTE) -> tuple[bytes, bytes]:
    s = stream.Stream(sim, line=True, chunk=chunk)  # type: ignore[arg-type]
    stream.write(s, path)
    truth.dump(truth.build(s.sim, s.injected), path.with_suffix(".truth.json"))
    return path.read_bytes(), path.with_suffix(".truth.json").read_bytes()


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(tmp_path: Path) -> None:
    a = generate(tmp_path / "a.jsonl", cohort.generate(8, 5, 0.05, START))
    b = generate(tmp_path / "b.jsonl", cohort.generate(8, 5, 0.05, START))
    c = generate(tmp_path / "c.jsonl", cohort.generate(8, 6, 0.05, START))
    assert a == b
    assert a[0] != c[0] and a[1] != c[1]
    s1 = generate(tmp_path / "s1.jsonl", sim_of(FAULTY))
    s2 = generate(tmp_path / "s2.jsonl", sim_of(FAULTY))
    s3 = generate(tmp_path / "s3.jsonl", sim_of(FAULTY, seed=32))
    assert s1 == s2 and s1[0] != s3[0]


def test_the_chunk_size_does_not_change_the_output(tmp_path: Path) -> None:
    sim = sim_of(FAULTY)
    reference = generate(tmp_path / "ref.jsonl", sim, chunk=10 * MINUTE)
    for i, chunk in enumerate((MINUTE, 7 * MINUTE + 1234, 3 * 60 * MINUTE)):
        assert generate(tmp_path / f"{i}.jsonl", sim, chunk=chunk) == reference, chunk
    # and faults of every kind were in it, across chunk edges
    t = truth.load(tmp_path / "ref.truth.json")
    kinds = {a.kind for a in t.artefacts}
    assert {"offline", "duplicate", "malformed", "probe_off", "patch_off", "clock_skew"} <= kinds


def test_the_file_writer_matches_trafficfile_and_messages_are_in_publish_order(
        tmp_path: Path) -> None:
    sim = sim_of(FAULTY)
    fast, _ = generate(tmp_path / "fast.jsonl", sim)
    messages = list(stream.Stream(sim, line=False, chunk=13 * MINUTE))
    trafficfile.write(tmp_path / "slow.jsonl", messages)
    assert (tmp_path / "slow.jsonl").read_bytes() == fast
    assert list(trafficfile.read(tmp_path / "fast.jsonl")) == messages
    at = np.array([m.at for m in messages])
    assert np.all(np.diff(at) >= 0)  # publish order
    # gzip too
    s = stream.Stream(sim, line=True)
    stream.write(s, tmp_path / "fast.jsonl.gz")
    assert list(trafficfile.read(tmp_path / "fast.jsonl.gz")) == messages


def test_generation_streams_in_chunks() -> None:
    sim = cohort.generate(30, 1, 1.0, START)
    s = stream.Stream(sim, line=True, chunk=5 * MINUTE)
    first = next(iter(s.batches()))  # without generating the day
    assert first.until == START + 5 * MINUTE
    assert 30 * 300 <= len(first.items) < 30 * 300 * 1.1  # one chunk's messages only


COLUMNS = FAULTY.replace("ox-1, type: oximeter, interval: 3s,",
                         "ox-1, type: oximeter, interval: 3s, ts_format: rfc3339,")


def test_columns_stand_for_the_payloads_they_replace() -> None:
    """`columns=True` (the evaluation's fast path) hands oximeters' live readings over as
    columns; rendered, they are the very payloads, in the very order, of payload mode."""
    sim = sim_of(COLUMNS)
    assert COLUMNS != FAULTY
    s = stream.Stream(sim, line=False, chunk=7 * MINUTE + 1234, columns=True)
    batches = list(s.batches())
    rows = sum(int((b.src >= 0).sum()) for b in batches)
    assert rows > 0.5 * sum(len(b.items) for b in batches)  # most messages are oximetry
    assert all(item is None for b in batches for item, row in zip(b.items, b.src.tolist(),
                                                                   strict=True) if row >= 0)
    assert list(stream.Stream(sim, line=False, columns=True)) == \
        list(stream.Stream(sim, line=False))
