"""What `vitals evaluate` does; the CLI only parses options. Problems the user can fix raise
`ConfigError`, printed as one line."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from evaluation import plots as plots_
from evaluation import report, run, score
from evaluation import seeds as seeds_
from simulators import truth as truth_
from simulators.plan import DAY, Simulation
from simulators.run import count_lines, progress_bar
from stream_rules.config import RulesFile, load_rules
from vitals.patients import Patient, PatientRegistry, load_patients
from vitals.settings import ConfigError, load_settings

DEFAULT_START = "2026-11-20T00:00:00+00:00"  # fixed, so a seed gives the same evaluation


@dataclass
class _Evaluated:
    """What was judged and how: the truth, the simulation behind it (when known), the rules'
    alerts and counts, the source's description and the number of worker processes."""

    truth: truth_.Truth
    sim: Simulation | None
    result: run.RunResult
    source: str
    workers: int


def _registry(truth: truth_.Truth) -> PatientRegistry:
    """The truth's patients as a registry, for a traffic file without a patients file."""
    return PatientRegistry([Patient(id=p.id, infusion=dt.date.fromisoformat(p.infusion),
                                    team=p.team, product=p.product,
                                    devices=tuple(d.id for d in p.devices) or None)
                            for p in truth.patients], source="truth")


def command(*, patients: int, seed: int | None, days: float, start: str | None,
            traffic: Path | None, truth: Path | None, patients_file: Path | None,
            rules: Path | None, out: Path, workers: int, plots: bool,
            seeds: str | None = None) -> bool:
    """Run, score, write report.md, report.json and plots; True when every target is met.
    With `seeds` ("1,7,42"): each seed's cohort judged and reported in out/seed-<n>/, and
    out/report.md, report.json with the seeds side by side."""
    chosen = seeds_.choose(seed, seeds, traffic)
    rules_path = rules or load_settings().rules
    rules_file = load_rules(rules_path)
    rules_name = str(rules_path or "embedded defaults")
    if chosen is None:
        def evaluate(bar: Progress, into: Path) -> _Evaluated:
            if traffic is not None:
                return _evaluate_traffic(bar, traffic, truth, patients_file, rules_file)
            return _evaluate_cohort(bar, patients, 1 if seed is None else seed, days, start,
                                    rules_file, workers, into)

        one = _judge(out, evaluate, plots, rules_name)
        for row in one.targets:
            print(f"evaluate: {'met    ' if row['met'] else 'NOT MET'} {row['target']}: "
                  f"{row['value']}")
        _summary(one, out, "")
        return all(row["met"] for row in one.targets)
    runs = []
    for s in chosen:
        runs.append(_judge(out / seeds_.folder(s), lambda bar, into, s=s: _evaluate_cohort(
            bar, patients, s, days, start, rules_file, workers, into), plots, rules_name))
        _summary(runs[-1], out / runs[-1].folder, f"seed {s}: ")
    seeds_.write(out, runs, rules_name)
    seeds_.show(runs, Console())
    print(f"evaluate: wrote {out}/report.md, report.json (seeds side by side)", file=sys.stderr)
    return seeds_.all_met(runs)


def _judge(out: Path, evaluate: Callable[[Progress, Path], _Evaluated], plots: bool,
           rules: str) -> seeds_.SeedRun:
    """Evaluate (under a progress bar), score, plot and write one report under `out`."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(Console(stderr=True)) as bar:
        evaluated = evaluate(bar, out)
    scores = _score(evaluated)
    plot_paths = _write_plots(out, scores, evaluated) if plots else []
    seconds = time.perf_counter() - started
    targets = score.targets(scores, seconds)
    plot_names = [str(p.relative_to(out)) for p in plot_paths]
    meta = _write_report(out, evaluated, scores, targets, plot_names, rules, seconds)
    return seeds_.SeedRun(evaluated.truth.seed, meta, scores, targets, plot_names)


def _summary(run_: seeds_.SeedRun, out: Path, prefix: str) -> None:
    meta = run_.meta
    print(f"evaluate: {prefix}{meta['patients']} patients, {meta['readings']:,} readings in "
          f"{meta['seconds']:.1f} s; wrote {out}/report.md, report.json"
          + (f", {len(run_.plots)} plots" if run_.plots else ""), file=sys.stderr)


def _evaluate_traffic(bar: Progress, traffic: Path, truth_file: Path | None,
                      patients_file: Path | None, rules_file: RulesFile) -> _Evaluated:
    """Judge a traffic file against its truth file (default: beside it)."""
    if not traffic.is_file():
        raise ConfigError(f"--traffic: no such file {traffic}")
    truth_file = truth_file or traffic.with_name(traffic.name + ".truth.json")
    if not truth_file.is_file():
        raise ConfigError(f"--truth: no such file {truth_file}")
    truth = truth_.load(truth_file)
    registry = load_patients(patients_file) if patients_file else _registry(truth)
    task = bar.add_task(f"evaluate {traffic.name}", total=count_lines(traffic), info="")
    result = run.run_traffic(traffic, rules_file, registry,
                             lambda n: bar.update(task, completed=n, info=f"{n:,} msgs"))
    sim = run.cohort_of(truth.source, truth.start)
    return _Evaluated(truth, sim, result, f"{traffic} ({truth.source})", 1)


def _evaluate_cohort(bar: Progress, patients: int, seed: int, days: float, start: str | None,
                     rules_file: RulesFile, workers: int, out: Path) -> _Evaluated:
    """Generate a seeded cohort and judge it over `workers` processes; its truth goes to
    out/truth.json."""
    from simulators.run import parse_start

    begin = parse_start(start or DEFAULT_START)
    workers = max(1, min(workers, patients))
    task = bar.add_task(f"evaluate seed {seed}", total=patients, info="")
    sim, result = run.run_cohort(
        patients, seed, days, begin, rules_file, workers,
        lambda n: bar.update(task, completed=n, info=f"{n}/{patients} patients"))
    truth = truth_.build(sim, result.injected)
    truth_.dump(truth, out / "truth.json")
    return _Evaluated(truth, sim, result, sim.source, workers)


def _score(evaluated: _Evaluated) -> dict[str, Any]:
    """The scores against the truth, and every page the rules sent."""
    sim, truth = evaluated.sim, evaluated.truth
    desat: dict[tuple[str, int], int] = {}
    if sim is not None and [p.id for p in sim.patients] == [p.id for p in truth.patients]:
        desat = run.desat_onsets(sim)
    alerts = {patient_id: r.alerts for patient_id, r in evaluated.result.patients.items()}
    scores = score.score(truth, alerts, desat)
    scores["page_events"] = [
        {"patient": a.patient_id, "rule": a.rule, "severity": a.severity, "start": a.start,
         "detected_at": a.detected_at, "late": a.late}
        for patient_alerts in alerts.values() for a in patient_alerts if score.is_page(a)]
    return scores


def _write_plots(out: Path, scores: dict[str, Any], evaluated: _Evaluated) -> list[Path]:
    """out/plots/ afresh: the delay histogram and the worst cases; returns their paths."""
    patient_runs = evaluated.result.patients
    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    for old in plot_dir.glob("*.png"):
        old.unlink()
    paths = [plots_.delay_histogram(scores["episodes"], plot_dir / "delays.png")]
    worst = plots_.worst_cases(scores["episodes"], scores["false_pages"])
    for i, (patient_id, why, lo, hi) in enumerate(worst):
        if patient_id in patient_runs:
            patient_run = patient_runs[patient_id]
            paths.append(plots_.patient_figure(
                patient_id, why, lo, hi, patient_run.trends(), patient_run.alerts,
                evaluated.truth, plot_dir / f"case{i + 1}-{patient_id}.png"))
    return paths


def _write_report(out: Path, evaluated: _Evaluated, scores: dict[str, Any],
                  targets: list[dict[str, object]], plot_names: list[str], rules: str,
                  seconds: float) -> dict[str, Any]:
    """report.json and report.md under `out`; returns the report's meta."""
    truth, counts = evaluated.truth, evaluated.result.counts
    meta = {"source": evaluated.source, "rules": rules,
            "patients": len(truth.patients), "days": (truth.end - truth.start) / DAY,
            "start": truth.start, "end": truth.end, "messages": counts.messages,
            "readings": counts.readings, "duplicates": counts.duplicates,
            "rejected": counts.rejected, "workers": evaluated.workers,
            "seconds": round(seconds, 2), "nurse_check_phase": "checks at start + k * interval"}
    report.write_json(report.to_json(meta, scores, targets), out / "report.json")
    (out / "report.md").write_text(report.markdown(meta, scores, targets, plot_names),
                                   encoding="utf-8")
    return meta
