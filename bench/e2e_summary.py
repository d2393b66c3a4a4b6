"""The end-to-end benchmark's runs summed up (`bench.end_to_end --runs`): per level the worst
and the median, and the highest level kept up over the run's raw MQTT ceiling (issue #15)."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["kept_up_share", "print_summary", "summarise", "worst"]


def worst(levels: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """One level's worst run: not kept up before kept up, then the highest p99."""
    return max(levels, key=lambda lv: (not lv["kept_up"], _p99(lv)))


def _p99(level: dict[str, Any]) -> float:
    """A level's p99; none (no probe paged) is the worst there is."""
    return level["p99_ms"] if level["p99_ms"] is not None else float("inf")


def kept_up_share(result: dict[str, Any]) -> float:
    """The highest level kept up (its readings/s sustained) over the run's raw ceiling."""
    kept = [lv["sustained_per_s"] for lv in result["levels"]
            if lv["kept_up"] and lv["sustained_per_s"]]
    return max(kept, default=0) / result["raw_ceiling_msg_per_s"]


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per level the worst and the median of the runs; the kept-up share likewise."""
    levels = []
    for runs in zip(*(r["levels"] for r in results), strict=True):
        sustained = [lv["sustained_per_s"] or 0 for lv in runs]
        p99 = [_p99(lv) for lv in runs]
        levels.append({"offered": runs[0]["offered"],
                       "kept_up_runs": sum(lv["kept_up"] for lv in runs), "runs": len(runs),
                       "sustained_worst": min(sustained),
                       "sustained_median": statistics.median(sustained),
                       "p99_ms_worst": max(p99), "p99_ms_median": statistics.median(p99)})
    shares = [kept_up_share(r) for r in results]
    return {"levels": levels, "kept_up_share_worst": round(min(shares), 2),
            "kept_up_share_median": round(statistics.median(shares), 2),
            "raw_ceiling_msg_per_s": [r["raw_ceiling_msg_per_s"] for r in results]}


def print_summary(summary: dict[str, Any]) -> None:
    print("worst / median of the runs (issue #15: kept up at 10,000/s, p99 <= 1 s at 5,000/s, "
          "highest kept up / raw ceiling >= 0.6):")
    for lv in summary["levels"]:
        print(f"  {int(lv['offered']):>6,}/s offered: kept up in {lv['kept_up_runs']} of "
              f"{lv['runs']} runs; sustained {lv['sustained_worst']:,.0f} / "
              f"{lv['sustained_median']:,.0f} readings/s; p99 {lv['p99_ms_worst']:,.0f} / "
              f"{lv['p99_ms_median']:,.0f} ms", flush=True)
    print(f"  highest level kept up / raw MQTT ceiling: {summary['kept_up_share_worst']} / "
          f"{summary['kept_up_share_median']} (ceilings "
          f"{', '.join(f'{c:,.0f}' for c in summary['raw_ceiling_msg_per_s'])} msg/s)",
          flush=True)
