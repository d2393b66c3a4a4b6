"""The cohort generator: onset days by product (CLINICAL.md), CRS rates, reproducibility,
and a patients file ingest accepts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from simulators import cohort, truth
from simulators.cohort import PRODUCTS, draw_patients, onset_days
from simulators.plan import DAY, parse_duration
from tests.simulators.helpers import START, run
from vitals.patients import load_patients


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_the_onset_distribution_has_each_products_median_and_range(product: str) -> None:
    p = PRODUCTS[product]
    days = np.floor(onset_days(product, np.random.default_rng(1).standard_normal(200_000)))
    assert np.median(days) == p.median
    assert days.min() >= p.lo and days.max() <= p.hi
    assert days.max() >= p.hi - 1 or product == "cilta-cel"  # the range is reached
    if p.iqr:
        assert (np.percentile(days, 25), np.percentile(days, 75)) == p.iqr


def test_a_large_cohort_follows_the_products_onsets_and_crs_rates() -> None:
    patients = draw_patients(4000, seed=2, days=60, start=START)
    day0 = int(dt.datetime.combine(dt.datetime.fromtimestamp(START / 1000, dt.UTC).date(),
                                   dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    onsets: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    kinds = set()
    for p in patients:
        assert p.product is not None
        crs = [e for e in p.episodes if e.kind in ("crs", "masked")]
        counts[p.product][0] += 1
        counts[p.product][1] += bool(crs)
        counts[p.product][2] += any((e.grade or 0) >= 3 for e in crs)
        onsets[p.product] += [(START + e.onset - day0) / DAY for e in crs]
        kinds |= {e.kind for e in p.episodes}
    assert kinds == {"crs", "masked", "infection", "icans"}  # ICANS: test_icans_reports
    for name, p in PRODUCTS.items():
        days = np.floor(onsets[name])
        assert np.median(days) == p.median, name
        assert days.min() >= p.lo and days.max() <= p.hi, name
        n, any_crs, severe = counts[name]
        assert abs(any_crs / n - p.any_crs) < 4 * np.sqrt(p.any_crs * (1 - p.any_crs) / n)
        assert abs(severe / n - p.severe) < 4 * np.sqrt(p.severe * (1 - p.severe) / n) + 0.005
    shares = {k: v[0] / len(patients) for k, v in counts.items()}
    assert all(abs(shares[k] - PRODUCTS[k].weight) < 0.03 for k in PRODUCTS)


def test_the_same_seed_gives_the_same_cohort_and_patients_are_independent() -> None:
    a = truth.build(cohort.generate(30, 9, 14, START), [])
    b = truth.build(cohort.generate(30, 9, 14, START), [])
    assert a == b
    c = truth.build(cohort.generate(30, 10, 14, START), [])
    assert a.patients != c.patients
    # patient i is the same whatever the cohort's size
    small = truth.build(cohort.generate(5, 9, 14, START), [])
    assert small.patients == a.patients[:5]
    assert small.episodes == [e for e in a.episodes if e.patient in {p.id for p in small.patients}]
    assert len(a.episodes) > 10  # 14 days see most CRS
    assert all(parse_duration("14d") + START >= e.start >= START for e in a.episodes)


def test_a_caregiver_spot_checks_twice_a_day_with_the_manual_flag() -> None:
    sim = cohort.generate(2, 3, 2, START)
    checks = [(m, body) for m, body in run(sim).device("S0001", "app-1")
              if body["kind"] == "temperature"]  # the app sends reports too
    assert len(checks) == 4  # two days, every 12 h
    assert all(body["flags"] == ["manual"] and body["site"] == "oral" for _, body in checks)
    assert checks[1][0].at - checks[0][0].at == 12 * 3600 * 1000


def test_the_patients_file_loads_in_ingest_with_devices(tmp_path: Path) -> None:
    sim = cohort.generate(12, 3, 2, START)
    cohort.write_patients(sim, tmp_path / "p.yaml")
    registry = load_patients(tmp_path / "p.yaml")
    assert [p.id for p in registry] == [f"S{i:04d}" for i in range(1, 13)]
    first = registry.get("S0001")
    assert first is not None and first.devices == ("ox-1", "th-1", "app-1")
    assert first.product in PRODUCTS and first.team in ("haem-a", "haem-b")
    assert first.infusion == dt.datetime.fromtimestamp(START / 1000, dt.UTC).date()
