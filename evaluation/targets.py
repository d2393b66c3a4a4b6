"""The targets the rules are judged against, in one place: the single-seed report's verdicts
and the seeds side by side both read `TARGETS`. Pure: scores in, numbers and verdicts out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    key: str  # the measure in `measures()`; met when it is <= limit
    name: str  # as the report says it
    limit: float


# Issue #16 ("Clinical accuracy 2"), on the standard cohort and on seeds 7 and 42; they
# tighten issue 8's (median <= 15 min, <= 0.1 false pages per patient-day).
TARGETS: tuple[Target, ...] = (
    Target("crs_missed", "every CRS fever episode paged", 0),
    Target("delay_median", "median delay from sustained fever <= 12 min", 12),
    Target("delay_p90", "p90 delay from sustained fever <= 25 min", 25),
    Target("false_per_patient_day", "<= 0.05 false pages per patient-day", 0.05),
)
SECONDS = 60  # issue 8: the whole evaluation of one cohort, in seconds


def measures(result: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers of one evaluation (`score.score`'s result). CRS fevers: scorable
    crs episodes with a fever onset, and masked ones (a CRS under an antipyretic) counted
    apart; delays are over every paged episode, as in the report's delay table."""
    fevers = [e for e in result["episodes"] if e.scorable and e.fever_onset is not None
              and (e.label.startswith("crs") or e.label == "masked")]
    crs = [e for e in fevers if e.label != "masked"]
    masked = [e for e in fevers if e.label == "masked"]
    day = result["per_patient_day"]
    return {"crs_paged": sum(e.first_page is not None for e in crs), "crs": len(crs),
            "masked_paged": sum(e.first_page is not None for e in masked), "masked": len(masked),
            "crs_missed": sum(e.first_page is None for e in fevers),
            "delay_median": result["delay"]["median"], "delay_p90": result["delay"]["p90"],
            "false_per_patient_day": float(result["false_per_patient_day"]),
            "day_sensitivity": day["sensitivity"], "day_specificity": day["specificity"]}


def met(target: Target, m: Mapping[str, Any]) -> bool:
    """No value (no delay measured) does not meet a limit."""
    value = m[target.key]
    return value is not None and value <= target.limit


def value(target: Target, m: Mapping[str, Any]) -> str:
    """The measure as the report shows it beside its target."""
    v = m[target.key]
    if target.key == "crs_missed":
        return f"{m['crs_paged']}/{m['crs']} (masked: {m['masked_paged']}/{m['masked']})"
    if v is None:
        return "n/a"
    return f"{v:.3f}" if target.key == "false_per_patient_day" else f"{v:.1f} min"


def check(result: Mapping[str, Any], seconds: float) -> list[dict[str, object]]:
    """Each target, the rules' value and whether it is met; last, the evaluation's time."""
    m = measures(result)
    return [{"target": t.name, "value": value(t, m), "met": met(t, m)} for t in TARGETS] + [
        {"target": f"whole evaluation <= {SECONDS} s", "value": f"{seconds:.1f} s",
         "met": seconds <= SECONDS}]
