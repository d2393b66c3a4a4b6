"""What `vitals evaluate` does; the CLI only parses options. Problems the user can fix raise
`ConfigError`, printed as one line."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from rich.console import Console

from evaluation import plots as plots_
from evaluation import report, run, score
from simulators import truth as truth_
from simulators.plan import DAY
from simulators.run import count_lines, progress_bar
from stream_rules.config import load_rules
from vitals.patients import Patient, PatientRegistry, load_patients
from vitals.settings import ConfigError, load_settings

DEFAULT_START = "2026-11-20T00:00:00+00:00"  # fixed, so a seed gives the same evaluation


def _registry(t: truth_.Truth) -> PatientRegistry:
    return PatientRegistry([Patient(id=p.id, infusion=dt.date.fromisoformat(p.infusion),
                                    team=p.team, product=p.product,
                                    devices=tuple(d.id for d in p.devices) or None)
                            for p in t.patients], source="truth")


def command(*, patients: int, seed: int, days: float, start: str | None,
            traffic: Path | None, truth: Path | None, patients_file: Path | None,
            rules: Path | None, out: Path, workers: int, plots: bool) -> bool:
    """Run, score, write report.md, report.json and plots; True when every target is met."""
    from simulators.run import parse_start

    t0 = time.perf_counter()
    rules_path = rules or load_settings().rules
    rules_file = load_rules(rules_path)
    console = Console(stderr=True)
    out.mkdir(parents=True, exist_ok=True)
    desat: dict[tuple[str, int], int] = {}
    with progress_bar(console) as bar:
        if traffic is not None:
            if not traffic.is_file():
                raise ConfigError(f"--traffic: no such file {traffic}")
            truth = truth or traffic.with_name(traffic.name + ".truth.json")
            if not truth.is_file():
                raise ConfigError(f"--truth: no such file {truth}")
            t = truth_.load(truth)
            registry = load_patients(patients_file) if patients_file else _registry(t)
            task = bar.add_task(f"evaluate {traffic.name}", total=count_lines(traffic), info="")
            result = run.run_traffic(traffic, rules_file, registry,
                                     lambda n: bar.update(task, completed=n, info=f"{n:,} msgs"))
            sim = run.cohort_of(t.source, t.start)
            source, n_workers = f"{traffic} ({t.source})", 1
        else:
            begin = parse_start(start or DEFAULT_START)
            workers = max(1, min(workers, patients))
            task = bar.add_task("evaluate", total=patients, info="")
            sim, result = run.run_cohort(
                patients, seed, days, begin, rules_file, workers,
                lambda n: bar.update(task, completed=n, info=f"{n}/{patients} patients"))
            t = truth_.build(sim, result.injected)
            truth_.dump(t, out / "truth.json")
            source, n_workers = sim.source, workers
    if sim is not None and [p.id for p in sim.patients] == [p.id for p in t.patients]:
        desat = run.desat_onsets(sim)
    alerts = {pid: r.alerts for pid, r in result.patients.items()}
    res = score.score(t, alerts, desat)
    res["page_events"] = [{"patient": a.patient_id, "rule": a.rule, "severity": a.severity,
                           "start": a.start, "detected_at": a.detected_at, "late": a.late}
                          for evs in alerts.values() for a in evs if score.is_page(a)]
    names = []
    if plots:
        pdir = out / "plots"
        pdir.mkdir(exist_ok=True)
        for old in pdir.glob("*.png"):
            old.unlink()
        names.append(plots_.delay_histogram(res["episodes"], pdir / "delays.png"))  # type: ignore[arg-type]
        for i, (pid, why, lo, hi) in enumerate(plots_.worst_cases(
                res["episodes"], res["false_pages"])):  # type: ignore[arg-type]
            if pid in result.patients:
                names.append(plots_.patient_figure(
                    pid, why, lo, hi, result.patients[pid].trends(), alerts[pid], t,
                    pdir / f"case{i + 1}-{pid}.png"))
    seconds = time.perf_counter() - t0
    c = result.counts
    meta = {"source": source, "rules": str(rules_path or "embedded defaults"),
            "patients": len(t.patients), "days": (t.end - t.start) / DAY, "start": t.start,
            "end": t.end, "messages": c.messages, "readings": c.readings,
            "duplicates": c.duplicates, "rejected": c.rejected, "workers": n_workers,
            "seconds": round(seconds, 2), "nurse_check_phase": "checks at start + k * interval"}
    targets = score.targets(res, seconds)
    report.write_json(report.to_json(meta, res, targets), out / "report.json")
    rel = [str(p.relative_to(out)) for p in names]
    (out / "report.md").write_text(report.markdown(meta, res, targets, rel), encoding="utf-8")
    for row in targets:
        print(f"evaluate: {'met    ' if row['met'] else 'NOT MET'} {row['target']}: "
              f"{row['value']}")
    print(f"evaluate: {len(t.patients)} patients, {c.readings:,} readings in {seconds:.1f} s; "
          f"wrote {out}/report.md, report.json" + (f", {len(rel)} plots" if rel else ""),
          file=sys.stderr)
    return all(row["met"] for row in targets)
