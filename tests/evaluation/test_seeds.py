"""Several seeds side by side: the option's checks, and the headline table built from the one
table of targets, on the hand-made truth of test_score."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from evaluation import score, seeds
from evaluation.targets import TARGETS
from tests.evaluation.test_score import ALERTS, TRUTH
from vitals.settings import ConfigError


def run(seed: int, alerts: dict) -> seeds.SeedRun:  # type: ignore[type-arg]
    scores = score.score(TRUTH, alerts)
    meta = {"source": f"hand-made, seed {seed}", "patients": 2, "days": 6.0, "readings": 10,
            "seconds": 1.5}
    return seeds.SeedRun(seed, meta, scores, score.targets(scores, 1.5), [])


def test_seeds_are_whole_numbers_each_once() -> None:
    assert seeds.parse("1,7,42") == (1, 7, 42)
    assert seeds.parse(" 42 , 0") == (42, 0)
    for text, says in [("1,7,1", "--seeds: 1 is given twice"),
                       ("1,-3", "--seeds: -3 is negative"),
                       ("1,x", "--seeds: 'x' is not a whole number"),
                       ("", "--seeds: '' is not a whole number"),
                       ("1,,7", "--seeds: '' is not a whole number")]:
        with pytest.raises(ConfigError, match="^" + says):
            seeds.parse(text)


def test_seeds_refuse_seed_and_a_traffic_file() -> None:
    assert seeds.choose(None, None, None) is None
    assert seeds.choose(5, None, None) is None  # one seed: the single report
    assert seeds.choose(None, "7,42", None) == (7, 42)
    with pytest.raises(ConfigError, match=r"^--seed and --seeds: give one of them"):
        seeds.choose(1, "7,42", None)
    with pytest.raises(ConfigError, match=r"^--seeds: generated cohorts only"):
        seeds.choose(None, "7", Path("traffic.jsonl"))


def test_the_headline_shows_each_target_per_seed() -> None:
    # seed 1: the hand-made alerts (crs paged at 10 min, 5 false pages in 12 patient-days);
    # seed 2: no alerts at all (the crs fever missed, no delay, no false page)
    rows = dict(seeds.headline([run(1, ALERTS), run(2, {})]))
    assert [name for name, _ in seeds.headline([run(1, ALERTS)])][:len(TARGETS)] == \
        [t.name for t in TARGETS]
    assert rows["every CRS fever episode paged"] == [("1/1 (masked: 0/0)", True),
                                                     ("0/1 (masked: 0/0)", False)]
    assert rows["median delay from sustained fever <= 12 min"] == [("10.0 min", True),
                                                                   ("n/a", False)]
    assert rows["p90 delay from sustained fever <= 25 min"][0] == ("10.0 min", True)
    assert rows["<= 0.05 false pages per patient-day"] == [("0.417", False), ("0.000", True)]
    # P1's crs_suspicion page never resolves: it flags every later day of P1, positive or not
    assert rows["sensitivity per patient-day (no target)"] == [("100.0 %", None),
                                                               ("0.0 %", None)]
    assert rows["specificity per patient-day (no target)"][1] == ("100.0 %", None)
    # the hand-made truth has no hypoxia and no outage: every warning of seed 1 is noise
    assert rows["desaturation warnings outside true hypoxia (no target)"][0] == (
        "2 of 2 (0.167/patient-day); warned 0/0 episodes", None)
    assert rows["no-data warnings outside true outages (no target)"] == [
        ("1 of 1 (0.083/patient-day); warned 0/0 outages", None),
        ("0 of 0 (0.000/patient-day); warned 0/0 outages", None)]
    assert rows["every target above met"] == [("no (3 of 4)", None), ("no (1 of 4)", None)]
    assert not seeds.all_met([run(1, ALERTS)])


def test_the_report_and_the_console_show_the_seeds_side_by_side() -> None:
    runs = [run(1, ALERTS), run(7, {})]
    md = seeds.markdown(runs, "embedded defaults")
    assert "| target | seed 1 | seed 7 |" in md
    assert "| median delay from sustained fever <= 12 min | 10.0 min met | n/a **not met** |" \
        in md
    assert "- [seed 7](seed-7/report.md): hand-made, seed 7;" in md
    doc = seeds.to_json(runs, "embedded defaults")
    assert doc["meta"]["seeds"] == [1, 7] and list(doc["seeds"]) == ["1", "7"]
    assert [t["limit"] for t in doc["targets"]] == [t.limit for t in TARGETS]
    assert doc["seeds"]["7"]["measures"]["crs_missed"] == 1
    assert doc["seeds"]["1"]["report"]["episodes"][0]["delay_min"] == 10
    shown = io.StringIO()
    seeds.show(runs, Console(file=shown, width=200, color_system=None))
    lines = shown.getvalue().splitlines()
    assert any("seed 1" in line and "seed 7" in line for line in lines)
    [median] = [line for line in lines if "median delay" in line]
    assert "10.0 min met" in median and "n/a NOT MET" in median
