"""The demo's report: what the running pipeline paged, scored against the simulation's truth
with the evaluation's scoring (detection, delay, false pages), a plot of every alerted
patient's vitals with their pages and the true episode, and what PagerDuty received."""

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
    pdir = out / "plots"
    pdir.mkdir(exist_ok=True)
    for old in pdir.glob("*.png"):
        old.unlink()
    alerts = {p.id: runs[p.id].alerts if p.id in runs else [] for p in truth.patients}
    res = score.score(truth, alerts, desat)
    names = [plots_.delay_histogram(res["episodes"], pdir / "delays.png")]  # type: ignore[arg-type]
    for pid, evs in alerts.items():
        pages = [a for a in evs if score.is_page(a)]
        if pages and pid in runs:
            lo = min(a.start for a in pages) - 12 * HOUR
            hi = max(a.detected_at for a in evs) + 12 * HOUR
            for e in truth.episodes:
                if e.patient == pid and e.start <= hi and e.end >= lo:
                    lo, hi = min(lo, e.start - 6 * HOUR), max(hi, e.end + 2 * HOUR)
            names.append(plots_.patient_figure(pid, f"{len(pages)} pages", lo, hi,
                                               runs[pid].trends(), evs, truth,
                                               pdir / f"{pid}.png"))
    meta = {"source": live.source, "rules": "embedded defaults", "patients": len(truth.patients),
            "days": (truth.end - truth.start) / 86_400_000, "start": truth.start,
            "end": truth.end, "messages": live.messages, "readings": live.readings,
            "duplicates": 0, "rejected": {}, "workers": 1,
            "seconds": live.publish_seconds + live.drain_seconds}
    # the evaluation's runtime target is about `vitals evaluate`, not a live run
    targets = [t for t in score.targets(res, 0.0) if not str(t["target"]).startswith("whole")]
    body = eval_report.markdown(meta, res, targets, [str(p.relative_to(out)) for p in names])
    body = "## Targets" + body.split("\n## Targets", 1)[1]  # the live run's facts come first
    incidents = _incidents(events, acked)
    counts = {a: sum(e.action == a for e in events) for a in ("trigger", "acknowledge",
                                                               "resolve")}
    head = [
        "# vitals demo: report", "",
        ("**Interrupted (Ctrl-C)**: the numbers cover the part that ran. " if live.interrupted
         else "") +
        f"{live.source}, published over MQTT at {live.speed:,.0f}x real time in "
        f"{live.publish_seconds:.0f} s ({live.messages:,} messages, {live.readings:,} "
        f"readings), through `vitals ingest`, `vitals rules` and `vitals alerting` as separate "
        f"processes on Mosquitto and tansu; the pipeline caught up {live.drain_seconds:.0f} s "
        f"after the last message. Pages went to a local stand-in for PagerDuty's Events API "
        f"v2. {live.store}", "",
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
    text = "\n".join(head) + body
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    doc = eval_report.to_json(meta, res, targets)
    doc["pagerduty"] = [{"received": e.received, **e.body} for e in events]
    eval_report.write_json(doc, out / "report.json")
    return path
