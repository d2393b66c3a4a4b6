"""ICANS (immune effector cell-associated neurotoxicity syndrome): how often and when each
product causes it, how an episode runs, and what a caregiver's ICE screen and eyes see of it.

Rates, severity and onset: CLINICAL.md, "CRS and neurotoxicity by product (pivotal trials)",
the row named beside each product in `PRODUCTS`. The table's "neurological events" stand for
ICANS (cilta-cel: its own ICANS figure). Neurotoxicity "usually comes during or soon after
CRS; without any CRS before it, it is uncommon": a patient without CRS is `NO_CRS_RATIO` times
as likely to get it as one with CRS, and after a CRS it starts a lag after the CRS's onset
whose median is the product's neuro onset minus its CRS onset (so the onset day's median
stays near the table's).

The ICE (CLINICAL.md, "ICANS and the ICE screen"): 10 no impairment, 7-9 grade 1, 3-6 grade 2,
0-2 grade 3, 0 unarousable grade 4; any seizure is grade >= 3. Handwriting changes come
first, then attention, word finding, orientation; following commands last. The time course
(decline, plateau, recovery) is an assumption of this simulator; CLINICAL.md gives none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from simulators.episodes import smoothstep
from simulators.plan import HOUR, IcansPlan

ICE_MAX = 10
# ICE parts in the order a worsening ICANS takes points from them (one point each step):
# writing first (CLINICAL.md: "handwriting changes (often the first)"), then attention, word
# finding (naming), orientation, and following commands last.
PARTS = ("orientation", "naming", "commands", "writing", "attention")
DEFICIT_ORDER = (3, 4, 1, 0, 1, 0, 0, 1, 0, 2)  # indices into PARTS

# Per grade: the ICE nadir (inclusive range) and decline/plateau/recovery hours (uniform).
SHAPES: dict[int, dict[str, tuple[float, float]]] = {
    1: dict(nadir=(7, 9), decline=(4, 12), plateau=(12, 48), recovery=(12, 48)),
    2: dict(nadir=(3, 6), decline=(6, 24), plateau=(24, 72), recovery=(24, 72)),
    3: dict(nadir=(0, 2), decline=(4, 24), plateau=(48, 120), recovery=(48, 96)),
    4: dict(nadir=(0, 0), decline=(2, 12), plateau=(72, 144), recovery=(72, 144)),
}
P_SEIZURE = 0.15  # of grade >= 3 (assumption: "seizure rare and only in severe ones")
P_TREMOR = 0.4  # an episode shows a tremor (assumption)


def draw_icans(rng: np.random.Generator, grade: int, onset: int, **given: object
               ) -> IcansPlan:
    """An episode with everything the caller did not give drawn from its grade's ranges.
    Always draws the same number of values, so a given value does not shift the others."""
    shape = SHAPES[grade]
    u = rng.random(7)

    def hours(name: str, i: int) -> int:
        lo, hi = shape[name]
        return round((lo + float(u[i]) * (hi - lo)) * HOUR)

    lo, hi = shape["nadir"]
    values: dict[str, object] = dict(
        ice_nadir=int(lo + math.floor(float(u[0]) * (hi - lo + 1))),
        decline=hours("decline", 1), plateau=hours("plateau", 2),
        recovery=hours("recovery", 3), tremor=bool(u[6] < P_TREMOR))
    values.update({k: v for k, v in given.items() if v is not None and k != "seizure"})
    e = IcansPlan(grade=grade, onset=onset, **values)  # type: ignore[arg-type]
    has_seizure = given.get("seizure")
    if has_seizure is None:
        has_seizure = grade >= 3 and float(u[4]) < P_SEIZURE
    if has_seizure:  # in the first half of the plateau, the worst of it
        at = e.onset + e.decline + round(float(u[5]) * e.plateau / 2)
        e = replace(e, seizure=at)
    return e


def intensity(e: IcansPlan, t: np.ndarray) -> np.ndarray:
    """0..1: how far the ICE has fallen towards the nadir."""
    up = smoothstep((t - e.onset) / max(e.decline, 1))
    down = smoothstep((t - (e.onset + e.decline + e.plateau)) / max(e.recovery, 1))
    return up * (1 - down)


def deficit(episodes: tuple[IcansPlan, ...], t: float) -> float:
    """ICE points lost at time `t` (the worst episode in force), before rounding."""
    x = np.array([t], np.int64)
    return max((float(intensity(e, x)[0]) * (ICE_MAX - e.ice_nadir) for e in episodes),
               default=0.0)


def ice_parts(lost: int) -> tuple[int, int, int, int, int]:
    """The ICE parts (PARTS order) of a screen that lost `lost` points."""
    parts = [4, 3, 1, 1, 1]
    for i in DEFICIT_ORDER[:max(0, min(lost, ICE_MAX))]:
        parts[i] -= 1
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def symptoms(lost: float, tremor: bool) -> tuple[str, ...]:
    """What a caregiver sees at an ICE deficit of `lost` points (the order of DEFICIT_ORDER:
    writing, then word finding, orientation, drowsiness as it deepens)."""
    out = []
    if lost >= 0.5:
        out.append("trouble_writing")
    if lost >= 2.5:
        out.append("trouble_speaking")
    if lost >= 3.5:
        out.append("confusion")
    if lost >= 6.5:
        out.append("drowsiness")
    if tremor and lost >= 1.5:
        out.append("tremor")
    return tuple(out)


@dataclass(frozen=True)
class Neuro:
    any: float  # P(ICANS)
    severe: float  # P(grade >= 3)
    median_day: float  # onset, days after infusion


# CLINICAL.md, "CRS and neurotoxicity by product (pivotal trials)": neurological events, any
# grade (grade >= 3), median onset, from the row named beside each product.
PRODUCTS = {
    "axi-cel": Neuro(0.64, 0.28, 5),  # ZUMA-1: 64 % (28 %), ~day 5
    "tisa-cel": Neuro(0.21, 0.12, 6),  # JULIET: 21 % (12 %), ~day 6
    "liso-cel": Neuro(0.30, 0.10, 9),  # TRANSCEND: 30 % (10 %), ~day 9
    "ide-cel": Neuro(0.18, 0.03, 2.5),  # KarMMa: 18 % (3 %), ~day 2-3
    # CARTITUDE-1: ICANS ~17 %, ~day 8. The row's 9 % grade >= 3 is of all neurological
    # events (21 %, with the later movement and nerve problems, not simulated): the same
    # share of ICANS, 17 % x 9/21.
    "cilta-cel": Neuro(0.17, 0.17 * 9 / 21, 8),
}
NO_CRS_RATIO = 0.1  # P(ICANS | no CRS) / P(ICANS | CRS): "without any CRS ... uncommon"
LAG_SIGMA = 0.5  # lognormal spread of the lag after the CRS's onset
ALONE_SIGMA = 0.4  # lognormal spread of the onset without CRS
P_GRADE_1 = 0.55  # of the episodes below grade 3 (assumption)
P_GRADE_4 = 0.2  # of grade >= 3 (assumption)


def draw_cohort_episode(rng: np.random.Generator, product: str, crs_day: float | None,
                        any_crs: float, crs_median_day: float) -> tuple[int, float] | None:
    """(grade, onset in days since infusion) of a cohort patient's ICANS, or None. `crs_day`:
    the patient's CRS onset (None: no CRS); `any_crs`, `crs_median_day`: the product's CRS
    rate and median onset day (the same table). Draws the same number of values whatever
    comes out."""
    p = PRODUCTS[product]
    u = rng.random(3)
    z = rng.standard_normal(2)
    c = any_crs
    with_crs = p.any / (c + (1 - c) * NO_CRS_RATIO)
    chance = with_crs if crs_day is not None else with_crs * NO_CRS_RATIO
    if u[0] >= chance:
        return None
    severe = u[1] < p.severe / p.any
    grade = (4 if u[2] < P_GRADE_4 else 3) if severe else (1 if u[2] < P_GRADE_1 else 2)
    if crs_day is not None:
        lag = max(0.5, p.median_day - crs_median_day) * math.exp(LAG_SIGMA * float(z[0]))
        day = crs_day + min(lag, 10.0)
    else:
        day = float(np.clip((p.median_day + 0.5) * math.exp(ALONE_SIGMA * float(z[1])),
                            0.5, 28))
    return grade, day
