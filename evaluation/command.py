"""What `vitals evaluate` does; the CLI only parses options. Problems the user can fix raise
`ConfigError`, printed as one line."""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from evaluation import plots as plots_
from evaluation import report, run, score
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


def command(*, patients: int, seed: int, days: float, start: str | None,
            traffic: Path | None, truth: Path | None, patients_file: Path | None,
            rules: Path | None, out: Path, workers: int, plots: bool) -> bool:
    """Run, score, write report.md, report.json and plots; True when every target is met."""
    started = time.perf_counter()
    rules_path = rules or load_settings().rules
    rules_file = load_rules(rules_path)
    console = Console(stderr=True)
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(console) as bar:
        if traffic is not None:
            evaluated = _evaluate_traffic(bar, traffic, truth, patients_file, rules_file)
        else:
            evaluated = _evaluate_cohort(bar, patients, seed, days, start, rules_file, workers,
                                         out)
    scores = _score(evaluated)
    plot_paths = _write_plots(out, scores, evaluated) if plots else []
    seconds = time.perf_counter() - started
    targets = score.targets(scores, seconds)
    _write_report(out, evaluated, scores, targets, plot_paths, rules_path, seconds)
    return all(row["met"] for row in targets)


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
    task = bar.add_task("evaluate", total=patients, info="")
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
                  targets: list[dict[str, object]], plot_paths: list[Path],
                  rules_path: Path | None, seconds: float) -> None:
    """report.json and report.md under `out`, and each target's verdict on the terminal."""
    truth, counts = evaluated.truth, evaluated.result.counts
    meta = {"source": evaluated.source, "rules": str(rules_path or "embedded defaults"),
            "patients": len(truth.patients), "days": (truth.end - truth.start) / DAY,
            "start": truth.start, "end": truth.end, "messages": counts.messages,
            "readings": counts.readings, "duplicates": counts.duplicates,
            "rejected": counts.rejected, "workers": evaluated.workers,
            "seconds": round(seconds, 2), "nurse_check_phase": "checks at start + k * interval"}
    report.write_json(report.to_json(meta, scores, targets), out / "report.json")
    plot_names = [str(p.relative_to(out)) for p in plot_paths]
    (out / "report.md").write_text(report.markdown(meta, scores, targets, plot_names),
                                   encoding="utf-8")
    for row in targets:
        print(f"evaluate: {'met    ' if row['met'] else 'NOT MET'} {row['target']}: "
              f"{row['value']}")
    print(f"evaluate: {len(truth.patients)} patients, {counts.readings:,} readings in "
          f"{seconds:.1f} s; wrote {out}/report.md, report.json"
          + (f", {len(plot_names)} plots" if plot_names else ""), file=sys.stderr)
