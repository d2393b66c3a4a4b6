"""The demo's report: what the running pipeline paged, scored against the simulation's truth
with the evaluation's scoring (detection, delay, false pages; ICANS episodes and the pages
the patients' and caregivers' reports caused, in the section "ICANS and reports"), a plot of
every alerted patient's vitals with their pages and the true episode, and what PagerDuty
received."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation import plots as plots_
from evaluation import report as eval_report
from evaluation import score
from evaluation.run import PatientRun
from harness.pagerduty import Event
from simulators.plan import HOUR, iso
from simulators.truth import Truth
from vitals.records import AlertEvent


@dataclass
class LiveRun:
    """Facts of the live run for the report's first section."""

    source: str
    speed: float
    publish_seconds: float
    messages: int
    readings: int
    drain_seconds: float
    interrupted: bool
    store: str  # where the series went
    rules_workers: int = 1


def _workers(count: int) -> str:
    return "`vitals rules`" if count == 1 else f"{count} `vitals rules` workers"


def _incidents(events: list[Event], acked: list[tuple[str, str]]) -> list[tuple[str, ...]]:
    by_key: dict[str, dict[str, Any]] = {}
    for e in events:
        inc = by_key.setdefault(e.dedup_key, {"patient": "?", "summary": "", "actions": []})
        if e.action == "trigger" and not inc["summary"]:
            inc["patient"], inc["summary"] = e.body["payload"]["source"], e.summary
        inc["actions"].append(e.action)
    who = dict(acked)
    return [(i["patient"], key, str(i["actions"].count("trigger")),
             who.get(key, "acknowledged" if "acknowledge" in i["actions"] else "-"),
             "yes" if "resolve" in i["actions"] else "no", i["summary"])
            for key, i in by_key.items()]


def write(out: Path, live: LiveRun, truth: Truth, runs: dict[str, PatientRun],
          desat: dict[tuple[str, int], int], events: list[Event],
          acked: list[tuple[str, str]]) -> Path:
    """report.md, report.json and plots/ under `out`; returns the Markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = _fresh_plot_dir(out)
    alerts = {p.id: runs[p.id].alerts if p.id in runs else [] for p in truth.patients}
    scores = score.score(truth, alerts, desat)
    plot_paths = _plots(plot_dir, scores, truth, runs, alerts)
    meta = _meta(live, truth)
    # the evaluation's runtime target is about `vitals evaluate`, not a live run
    targets = [t for t in score.targets(scores, 0.0) if not str(t["target"]).startswith("whole")]
    body = eval_report.markdown(meta, scores, targets,
                                [str(p.relative_to(out)) for p in plot_paths])
    body = "## Targets" + body.split("\n## Targets", 1)[1]  # the live run's facts come first
    path = out / "report.md"
    path.write_text("\n".join(_head(live, truth, events, acked)) + body, encoding="utf-8")
    doc = eval_report.to_json(meta, scores, targets)
    doc["pagerduty"] = [{"received": e.received, **e.body} for e in events]
    eval_report.write_json(doc, out / "report.json")
    return path


def _fresh_plot_dir(out: Path) -> Path:
    """out/plots/, without the PNGs of an earlier report."""
    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    for old in plot_dir.glob("*.png"):
        old.unlink()
    return plot_dir


def _plots(plot_dir: Path, scores: dict[str, object], truth: Truth, runs: dict[str, PatientRun],
           alerts: dict[str, list[AlertEvent]]) -> list[Path]:
    """The delay histogram, and a figure of every paged patient; returns their paths."""
    paths = [plots_.delay_histogram(scores["episodes"], plot_dir / "delays.png")]  # type: ignore[arg-type]
    for patient_id, patient_alerts in alerts.items():
        pages = [a for a in patient_alerts if score.is_page(a)]
        if pages and patient_id in runs:
            start, end = _window(truth, patient_id, pages, patient_alerts)
            paths.append(plots_.patient_figure(patient_id, f"{len(pages)} pages", start, end,
                                               runs[patient_id].trends(), patient_alerts, truth,
                                               plot_dir / f"{patient_id}.png"))
    return paths


def _window(truth: Truth, patient_id: str, pages: list[AlertEvent], alerts: list[AlertEvent]
            ) -> tuple[int, int]:
    """The time a paged patient's figure shows: the pages and alerts with 12 hours around,
    widened to the true episodes they overlap."""
    start = min(a.start for a in pages) - 12 * HOUR
    end = max(a.detected_at for a in alerts) + 12 * HOUR
    for episode in (*truth.episodes, *truth.icans):  # ICANS: paged from reports
        if episode.patient == patient_id and episode.start <= end and episode.end >= start:
            start, end = min(start, episode.start - 6 * HOUR), max(end, episode.end + 2 * HOUR)
    return start, end


def _meta(live: LiveRun, truth: Truth) -> dict[str, Any]:
    """The run's facts in the evaluation report's form."""
    return {"source": live.source, "rules": "embedded defaults", "patients": len(truth.patients),
            "days": (truth.end - truth.start) / 86_400_000, "start": truth.start,
            "end": truth.end, "messages": live.messages, "readings": live.readings,
            "duplicates": 0, "rejected": {}, "workers": 1,
            "seconds": live.publish_seconds + live.drain_seconds}


def _head(live: LiveRun, truth: Truth, events: list[Event], acked: list[tuple[str, str]]
          ) -> list[str]:
    """The report's first lines: the live run, and what PagerDuty received."""
    incidents = _incidents(events, acked)
    counts = {a: sum(e.action == a for e in events) for a in ("trigger", "acknowledge",
                                                               "resolve")}
    head = [
        "# vitals demo: report", "",
        ("**Interrupted (Ctrl-C)**: the numbers cover the part that ran. " if live.interrupted
         else "") +
        f"{live.source}, published over MQTT at {live.speed:,.0f}x real time in "
        f"{live.publish_seconds:.0f} s ({live.messages:,} messages, {live.readings:,} "
        f"readings), through `vitals ingest`, {_workers(live.rules_workers)} and "
        f"`vitals alerting` as separate processes on Mosquitto and tansu; the pipeline caught "
        f"up {live.drain_seconds:.0f} s after the last message. Pages went to a local "
        f"stand-in for PagerDuty's Events API v2. {live.store}", "",
        "Decision support, not a diagnosis: pages say what was measured and why a rule fired; "
        "a wearable cannot grade CRS.", "",
        "## What PagerDuty received", "",
        f"{counts['trigger']} triggers, {counts['acknowledge']} acknowledges, "
        f"{counts['resolve']} resolves, for {len(incidents)} incidents (one per patient "
        f"episode of paging alerts; a repeat trigger is an escalation or a worse alert).", ""]
    head += eval_report.table(("patient", "incident", "triggers", "acknowledged by",
                                "resolved", "first page"), incidents)
    head += ["", f"Scored from the alert events on `vitals.alerts` against the simulation's "
             f"truth ({iso(truth.start)} to {iso(truth.end)}).", ""]
    return head
