"""Several seeded cohorts in one evaluation (`vitals evaluate --seeds 1,7,42`): the option,
and the headline table with the seeds side by side as Markdown, JSON and a console table.
Each seed's full report is written to its own folder, seed-<n>/, by the single-seed code."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evaluation import report
from evaluation.targets import TARGETS, measures, met, value
from vitals.settings import ConfigError


@dataclass
class SeedRun:
    """One evaluation (a seed's, or a traffic file's): its report's meta, the scores and the
    target verdicts."""

    seed: int
    meta: dict[str, Any]
    scores: dict[str, Any]
    targets: list[dict[str, object]]
    plots: list[str]  # relative to the seed's folder

    @property
    def folder(self) -> str:
        return folder(self.seed)


def folder(seed: int) -> str:
    return f"seed-{seed}"


def choose(seed: int | None, seeds: str | None, traffic: Path | None) -> tuple[int, ...] | None:
    """The seeds to evaluate side by side, or None for one evaluation. Checked before anything
    is written, so that a bad option leaves nothing behind."""
    if seeds is None:
        return None
    if seed is not None:
        raise ConfigError("--seed and --seeds: give one of them, not both")
    if traffic is not None:
        raise ConfigError("--seeds: generated cohorts only, not with --traffic")
    return parse(seeds)


def parse(text: str) -> tuple[int, ...]:
    """"1,7,42" -> (1, 7, 42): whole numbers >= 0, each once (a seed twice is a mistake)."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            seed = int(part)
        except ValueError:
            raise ConfigError(f"--seeds: {part!r} is not a whole number (e.g. --seeds 1,7,42)"
                              ) from None
        if seed < 0:
            raise ConfigError(f"--seeds: {seed} is negative (seeds are >= 0)")
        if seed in out:
            raise ConfigError(f"--seeds: {seed} is given twice")
        out.append(seed)
    return tuple(out)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _outside(w: dict[str, Any], found: str) -> str:
    """A warning's noise and sensitivity: "2 of 6 (0.006/patient-day); warned 4/5 episodes"."""
    return (f"{w['outside']} of {w['fired']} ({w['outside_per_patient_day']:.3f}/patient-day); "
            f"warned {w['warned']}/{w[found]} {found}")


def _cell(text: str, ok: bool | None, met_: str, not_met: str) -> str:
    return text if ok is None else f"{text} {met_ if ok else not_met}"


def headline(runs: Sequence[SeedRun]) -> list[tuple[str, list[tuple[str, bool | None]]]]:
    """Rows of the side-by-side table: each target, then the per-patient-day measures (no
    target), then every target at once; per seed a cell's text and whether it meets its
    target (None: no target)."""
    ms = [measures(r.scores) for r in runs]
    rows: list[tuple[str, list[tuple[str, bool | None]]]] = [
        (t.name, [(value(t, m), met(t, m)) for m in ms]) for t in TARGETS]
    rows += [("sensitivity per patient-day (no target)",
              [(_pct(m["day_sensitivity"]), None) for m in ms]),
             ("specificity per patient-day (no target)",
              [(_pct(m["day_specificity"]), None) for m in ms])]
    rows += [(f"{name} warnings outside true {what} (no target)",
              [(_outside(r.scores["warnings"][rule], found), None) for r in runs])
             for name, rule, what, found in (
                 ("desaturation", "desaturation", "hypoxia", "episodes"),
                 ("no-data", "no_data", "outages", "outages"))]
    verdicts = [[met(t, m) for t in TARGETS] for m in ms]
    rows.append(("every target above met", [
        ("yes" if all(v) else f"no ({sum(v)} of {len(v)})", None) for v in verdicts]))
    return rows


def all_met(runs: Sequence[SeedRun]) -> bool:
    return all(met(t, measures(r.scores)) for r in runs for t in TARGETS)


def markdown(runs: Sequence[SeedRun], rules: str) -> str:
    first = runs[0].meta
    names = ", ".join(str(r.seed) for r in runs)
    L = [f"# Evaluation: seeds {names} side by side", "",
         f"Rules: `{rules}`. Each seed generates a cohort of {first['patients']} patients, "
         f"{first['days']:.2f} days each, judged alone; its full report (report.md, "
         f"report.json, truth.json, plots) is in its folder below. Targets: issue #16 "
         f"(`evaluation/targets.py`). Delays are from sustained fever (core temperature "
         f"first >= 38.0 °C) to the first page, in minutes.", ""]
    L += report.table(["target"] + [f"seed {r.seed}" for r in runs],
                      ([name] + [_cell(text, ok, "met", "**not met**") for text, ok in cells]
                       for name, cells in headline(runs)))
    L += ["", "## Each seed", ""]
    L += [f"- [seed {r.seed}]({r.folder}/report.md): {r.meta['source']}; "
          f"{r.meta['readings']:,} readings in {r.meta['seconds']:.1f} s"
          + (f", {len(r.plots)} plots" if r.plots else "") for r in runs]
    return "\n".join(L) + "\n"


def to_json(runs: Sequence[SeedRun], rules: str) -> dict[str, Any]:
    """The table of targets, and per seed its headline measures, verdicts and full report."""
    return {"meta": {"seeds": [r.seed for r in runs], "rules": rules,
                     "patients": runs[0].meta["patients"], "days": runs[0].meta["days"],
                     "seconds": round(sum(r.meta["seconds"] for r in runs), 2)},
            "targets": [dataclasses.asdict(t) for t in TARGETS],
            "seeds": {str(r.seed): {"folder": r.folder, "measures": measures(r.scores),
                                    "report": report.to_json(r.meta, r.scores, r.targets)}
                      for r in runs}}


def write(out: Path, runs: Sequence[SeedRun], rules: str) -> None:
    """out/report.md and out/report.json; each seed's own report is already in its folder."""
    report.write_json(to_json(runs, rules), out / "report.json")
    (out / "report.md").write_text(markdown(runs, rules), encoding="utf-8")


def show(runs: Sequence[SeedRun], console: Console) -> None:
    """The side-by-side table on the terminal."""
    table = Table(title="evaluate: seeds side by side (targets: issue #16)")
    table.add_column("target")
    for r in runs:
        table.add_column(f"seed {r.seed}", justify="right")
    for name, cells in headline(runs):
        table.add_row(name, *(_cell(text, ok, "[green]met[/]", "[bold red]NOT MET[/]")
                              for text, ok in cells))
    console.print(table)
