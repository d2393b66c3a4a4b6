"""`DuplicateFilter`: a reading is forwarded once, by (device, seq) or (device, kind, ts), with
bounded memory (CONTRACT section 2)."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.dedup import DEVICE_BYTES, ENTRY_BYTES, DuplicateFilter, _Device
from vitals.records import Kind, Reading

T0 = 1_795_000_000_000


def rd(seq: int | None, ts: int | None = None, kind: Kind = "oximetry", device: str = "ox-1",
       patient: str = "P001") -> Reading:
    """A reading whose ts follows its seq (one second apart) unless given."""
    if ts is None:
        assert seq is not None
        ts = T0 + seq * 1000
    return Reading(patient_id=patient, device_id=device, ts=ts, kind=kind, received_at=T0,
                   seq=seq, spo2=97)


def state(f: DuplicateFilter, patient: str = "P001", device: str = "ox-1") -> _Device:
    return f._devices[(patient, device)]


def ranges(f: DuplicateFilter, patient: str = "P001", device: str = "ox-1"
           ) -> list[tuple[int, int]]:
    d = state(f, patient, device)
    assert len(d.seqs.starts) == len(d.seqs.ends)
    return list(zip(d.seqs.starts, d.seqs.ends, strict=True))


def feed(f: DuplicateFilter, readings: list[Reading]) -> list[bool]:
    return [f.first_time(r) for r in readings]


def test_a_seq_seen_before_is_a_duplicate_also_when_redelivered_later() -> None:
    f = DuplicateFilter()
    assert f.first_time(rd(1)) is True
    assert f.first_time(rd(1)) is False
    assert feed(f, [rd(2), rd(3), rd(1), rd(2), rd(4)]) == [True, True, False, False, True]
    assert f.sequence_restarts == 0


def test_seqs_are_per_device_and_per_patient() -> None:
    f = DuplicateFilter()
    assert feed(f, [rd(1), rd(1, device="ox-2"), rd(1, patient="P002"), rd(1, kind="temperature")]
                ) == [True, True, True, False]
    assert len(f) == 3


def test_without_seq_the_key_is_kind_and_ts() -> None:
    f = DuplicateFilter()
    assert feed(f, [
        rd(None, ts=T0),
        rd(None, ts=T0),                       # same kind, same ts: the same reading
        rd(None, ts=T0, kind="temperature"),   # same ts, other kind: another reading
        rd(None, ts=T0 + 1),
        rd(None, ts=T0, device="ox-2"),        # another device
        rd(None, ts=T0, kind="temperature"),
    ]) == [True, False, True, True, True, False]
    assert state(f).seqs.starts == [] and len(state(f).unsequenced) == 3


def test_seqs_and_seqless_keys_do_not_mix() -> None:
    f = DuplicateFilter()
    assert feed(f, [rd(5, ts=T0), rd(None, ts=T0), rd(None, ts=T0), rd(5, ts=T0)]) == [
        True, True, False, False]


def test_contiguous_seqs_are_one_range() -> None:
    f = DuplicateFilter()
    assert all(feed(f, [rd(s) for s in range(100)]))
    assert ranges(f) == [(0, 99)]


def test_ranges_merge_when_seqs_arrive_out_of_order() -> None:
    f = DuplicateFilter()
    assert all(feed(f, [rd(s) for s in (10, 20, 30)]))
    assert ranges(f) == [(10, 10), (20, 20), (30, 30)]
    assert f.first_time(rd(11))  # joins the range on its left
    assert ranges(f) == [(10, 11), (20, 20), (30, 30)]
    assert f.first_time(rd(19))  # joins the range on its right
    assert ranges(f) == [(10, 11), (19, 20), (30, 30)]
    assert f.first_time(rd(5))  # before everything
    assert ranges(f) == [(5, 5), (10, 11), (19, 20), (30, 30)]
    assert f.first_time(rd(25))  # alone in a gap
    assert ranges(f) == [(5, 5), (10, 11), (19, 20), (25, 25), (30, 30)]
    assert all(feed(f, [rd(s) for s in range(12, 19)]))  # fills a gap: joins both sides
    assert ranges(f) == [(5, 5), (10, 20), (25, 25), (30, 30)]
    assert all(feed(f, [rd(s) for s in (6, 7, 8, 9)]))
    assert ranges(f) == [(5, 20), (25, 25), (30, 30)]
    assert all(feed(f, [rd(s) for s in (29, 26, 28, 27)]))
    assert ranges(f) == [(5, 20), (25, 30)]
    assert all(feed(f, [rd(s) for s in (24, 22, 21, 23)]))
    assert ranges(f) == [(5, 30)]
    # and everything in them is a duplicate now
    assert not any(feed(f, [rd(s) for s in range(5, 31)]))
    assert f.sequence_restarts == 0


def test_an_old_batch_below_the_live_seqs_is_accepted_once() -> None:
    f = DuplicateFilter()
    assert all(feed(f, [rd(s) for s in range(1000, 1010)]))  # live readings
    old = [rd(s) for s in range(500, 600)]  # a device's buffer, uploaded hours late
    assert all(feed(f, old))
    assert ranges(f) == [(500, 599), (1000, 1009)]
    assert not any(feed(f, old))  # the same upload again
    assert f.first_time(rd(1010)) and f.sequence_restarts == 0


def test_a_device_that_restarted_its_counter_is_not_a_duplicate() -> None:
    f = DuplicateFilter()
    assert all(feed(f, [rd(s) for s in range(0, 50)]))
    later = T0 + 3_600_000  # after a reboot, counting from 0 again, with newer times
    restarted = [rd(s, ts=later + s * 1000) for s in range(0, 10)]
    assert all(feed(f, restarted))
    assert f.sequence_restarts == 1
    assert ranges(f) == [(0, 9)]
    assert not any(feed(f, restarted))  # a redelivery of the new readings is still caught
    assert f.sequence_restarts == 1


def test_a_seen_seq_with_a_time_not_newer_than_the_latest_is_a_duplicate() -> None:
    f = DuplicateFilter()
    assert feed(f, [rd(1, ts=T0), rd(2, ts=T0 + 10)]) == [True, True]
    assert f.first_time(rd(1, ts=T0 + 10)) is False  # equal to the latest: not newer
    assert f.first_time(rd(1, ts=T0 + 5)) is False
    assert f.sequence_restarts == 0
    assert f.first_time(rd(1, ts=T0 + 11)) is True
    assert f.sequence_restarts == 1


def test_the_ranges_per_device_are_capped_forgetting_the_lowest_seqs_first() -> None:
    f = DuplicateFilter(max_ranges=3)
    assert all(feed(f, [rd(s) for s in (0, 2, 4, 6)]))
    assert ranges(f) == [(2, 2), (4, 4), (6, 6)]
    assert f.first_time(rd(6)) is False and f.first_time(rd(2)) is False
    assert f.first_time(rd(0)) is True  # forgotten: passes again (downstream is idempotent)
    assert ranges(f) == [(2, 2), (4, 4), (6, 6)]  # ... and is not kept: it is the oldest
    assert f.first_time(rd(3))  # merging does not grow the list
    assert ranges(f) == [(2, 4), (6, 6)]
    for s in range(8, 400, 2):
        f.first_time(rd(s))
        assert len(state(f).seqs.starts) <= 3
    assert ranges(f) == [(394, 394), (396, 396), (398, 398)]


def test_the_seqless_keys_per_device_are_capped_forgetting_the_oldest_first() -> None:
    f = DuplicateFilter(max_unsequenced=3)
    assert all(feed(f, [rd(None, ts=T0 + i) for i in range(4)]))
    assert list(state(f).unsequenced) == [("oximetry", T0 + i) for i in (1, 2, 3)]
    assert f.first_time(rd(None, ts=T0 + 3)) is False
    assert f.first_time(rd(None, ts=T0 + 0)) is True  # the oldest, forgotten
    assert list(state(f).unsequenced) == [("oximetry", T0 + i) for i in (2, 3, 0)]
    for i in range(1000):
        f.first_time(rd(None, ts=T0 + 10 + i))
        assert len(state(f).unsequenced) <= 3


def test_devices_are_capped_forgetting_the_least_recently_heard_first() -> None:
    f = DuplicateFilter(max_bytes=2 * (DEVICE_BYTES + ENTRY_BYTES))  # two devices of one range
    assert feed(f, [rd(1, device="a"), rd(1, device="b")]) == [True, True]
    assert f.first_time(rd(2, device="a"))  # a is heard from again: b is now the oldest
    assert f.first_time(rd(1, device="c"))
    assert len(f) == 2 and set(f._devices) == {("P001", "a"), ("P001", "c")}
    assert f.first_time(rd(1, device="b")) is True  # forgotten; a is the oldest now
    assert list(f._devices) == [("P001", "c"), ("P001", "b")]
    assert f.first_time(rd(2, device="a")) is True  # so a was forgotten in turn
    assert f.first_time(rd(1, device="b")) is False  # b is remembered
    for i in range(500):
        f.first_time(rd(1, device=f"d{i}"))
        assert len(f) <= 2
    assert set(f._devices) == {("P001", "d498"), ("P001", "d499")}


def test_memory_stays_bounded_under_a_hostile_stream() -> None:
    budget = 5 * (DEVICE_BYTES + 10 * ENTRY_BYTES)
    f = DuplicateFilter(max_bytes=budget, max_ranges=4, max_unsequenced=6)
    for i in range(5000):
        seq = None if i % 3 == 0 else (i * 7919) % 10_007  # scattered: many ranges
        f.first_time(rd(seq, ts=T0 + i, device=f"d{i % 9}"))
        assert f.estimated_bytes <= budget and len(f) <= budget // DEVICE_BYTES
    for d in f._devices.values():
        assert len(d.seqs.starts) == len(d.seqs.ends) <= 4
        assert len(d.unsequenced) <= 6
        assert all(a <= b for a, b in zip(d.seqs.starts, d.seqs.ends, strict=True))
        assert all(e + 1 < s for e, s in zip(d.seqs.ends, d.seqs.starts[1:], strict=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ox-1", "ox-2", "th-1"]),
                          st.one_of(st.integers(0, 40), st.none()),
                          st.sampled_from(["oximetry", "temperature"]),
                          st.integers(0, 40)),
                min_size=1, max_size=60),
       st.data())
def test_any_order_with_repeats_forwards_each_distinct_reading_once(
        sent: list[tuple[str, int | None, Kind, int]], data: st.DataObject) -> None:
    # a seq stands for one reading, so its ts and kind follow from it; a seqless reading is
    # (kind, ts)
    readings = [rd(seq, ts=T0 + (seq if seq is not None else n) * 1000,
                   kind="oximetry" if seq is not None else kind, device=device)
                for device, seq, kind, n in sent]
    again = data.draw(st.lists(st.sampled_from(readings), max_size=len(readings)))
    stream = data.draw(st.permutations(readings + again))
    f = DuplicateFilter()
    forwarded = [r for r in stream if f.first_time(r)]

    def key(r: Reading) -> tuple[object, ...]:
        return (r.device_id, r.seq) if r.seq is not None else (r.device_id, r.kind, r.ts)

    keys = [key(r) for r in forwarded]
    assert len(keys) == len(set(keys))
    assert set(keys) == {key(r) for r in readings}
    assert f.sequence_restarts == 0
    for d in f._devices.values():  # the ranges stay sorted, disjoint and not adjacent
        assert all(a <= b for a, b in zip(d.seqs.starts, d.seqs.ends, strict=True))
        assert all(e + 1 < s for e, s in zip(d.seqs.ends, d.seqs.starts[1:], strict=False))


def measured(fill: Callable[[DuplicateFilter], None], budget: int) -> tuple[int, int]:
    """(bytes the filter really holds by tracemalloc, its own estimate) once `fill` ran."""
    f = DuplicateFilter(max_bytes=budget)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fill(f)
        return tracemalloc.get_traced_memory()[0] - before, f.estimated_bytes
    finally:
        tracemalloc.stop()


def many_small_devices(f: DuplicateFilter) -> None:
    for d in range(20_000):
        f.first_time(rd(d * 7 + 123_456, device=f"ox-{d}"))


def a_few_devices_at_their_caps(f: DuplicateFilter) -> None:
    for d in range(40):
        for i in range(5000):  # seq-less readings, each at a new time
            f.first_time(rd(None, ts=T0 + i * 1000, device=f"d{d}"))
        for i in range(600):  # scattered seqs: a range each
            f.first_time(rd(10**9 + i * 1000, device=f"d{d}"))


@pytest.mark.parametrize("fill", [many_small_devices, a_few_devices_at_their_caps])
def test_the_budget_is_what_the_filter_really_holds(fill: Callable[[DuplicateFilter], None]
                                                    ) -> None:
    budget = 4 * 1024 * 1024
    real, estimate = measured(fill, budget)
    assert estimate <= budget
    assert estimate * 0.6 <= real <= budget * 1.25, (real, estimate)


def test_the_default_budget_fits_ingests_memory_limit_in_deploy() -> None:
    """Ingest's own baseline (~66 MiB RSS measured) plus the filter at its budget, with the
    estimate's margin, must fit the smallest memory limit the deployment files give ingest."""
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    manifest = (deploy / "k8s/base/ingest.yaml").read_text()
    k8s = re.search(r"limits:\s*\n(?:\s*cpu: .*\n)?\s*memory: (\d+)Mi", manifest)
    assert k8s is not None
    limit_mib = int(k8s.group(1))
    baseline_mib = 96
    assert baseline_mib + DuplicateFilter().max_bytes * 1.25 / 2**20 <= limit_mib


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=10),
       st.lists(st.integers(0, 3), max_size=30), st.integers(0, 4))
def test_a_run_of_newer_readings_is_remembered_as_each_would_be(
        seen: list[int], steps: list[int], gap: int) -> None:
    import numpy as np

    one, run = DuplicateFilter(max_ranges=4), DuplicateFilter(max_ranges=4)
    for seq in seen:
        one.first_time(rd(seq))
        run.first_time(rd(seq))
    seqs = np.cumsum([max(seen) + gap, *steps]).astype(np.int64)
    ts = T0 + seqs * 1000
    newer = bool(seqs[0] > max(seen) and (np.diff(seqs) > 0).all())
    assert run.newer_run("P001", "ox-1", seqs, ts) is newer
    if newer:
        assert all(one.first_time(rd(seq)) for seq in seqs.tolist())
    assert ranges(run) == ranges(one)
    assert state(run).latest_ts == state(one).latest_ts
    assert run.estimated_bytes == one.estimated_bytes
    # a device never heard from goes reading by reading
    assert not run.newer_run("P001", "ox-9", seqs, ts)
