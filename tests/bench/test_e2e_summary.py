"""The end-to-end benchmark's summary of its runs: the worst run decides a target, the median
is printed beside it, and the kept-up share is set against each run's own raw ceiling."""

from __future__ import annotations

from typing import Any

from bench.e2e_summary import kept_up_share, summarise, worst


def level(offered: int, sustained: int | None, kept_up: bool, p99: int | None) -> dict[str, Any]:
    return {"offered": offered, "sustained_per_s": sustained, "kept_up": kept_up,
            "p99_ms": p99}


RUNS = [
    {"raw_ceiling_msg_per_s": 15_000, "levels": [
        level(5000, 5010, True, 800), level(10_000, 9_900, True, 950)]},
    {"raw_ceiling_msg_per_s": 12_000, "levels": [
        level(5000, 5005, True, 1_300), level(10_000, 7_000, False, 9_000)]},
    {"raw_ceiling_msg_per_s": 16_000, "levels": [
        level(5000, 4_990, True, 700), level(10_000, 9_950, True, None)]},
]


def test_the_worst_and_the_median_of_each_level() -> None:
    summary = summarise(RUNS)
    five, ten = summary["levels"]
    assert (five["kept_up_runs"], five["runs"]) == (3, 3)
    assert (five["sustained_worst"], five["sustained_median"]) == (4_990, 5_005)
    assert (five["p99_ms_worst"], five["p99_ms_median"]) == (1_300, 800)
    assert ten["kept_up_runs"] == 2 and ten["sustained_worst"] == 7_000
    # a level with no probe paged has no p99: the worst possible, not a good one
    assert ten["p99_ms_worst"] == float("inf") and ten["p99_ms_median"] == 9_000


def test_the_kept_up_share_is_against_the_same_runs_ceiling() -> None:
    assert [round(kept_up_share(run), 3) for run in RUNS] == [0.66, 0.417, 0.622]
    summary = summarise(RUNS)
    assert (summary["kept_up_share_worst"], summary["kept_up_share_median"]) == (0.42, 0.62)
    assert kept_up_share({"raw_ceiling_msg_per_s": 10_000,
                          "levels": [level(1000, 990, False, 500)]}) == 0


def test_a_levels_worst_run_is_one_not_kept_up_then_the_slowest() -> None:
    five = tuple(run["levels"][0] for run in RUNS)
    ten = tuple(run["levels"][1] for run in RUNS)
    assert worst(five)["p99_ms"] == 1_300
    assert worst(ten)["kept_up"] is False
