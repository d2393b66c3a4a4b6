"""The evaluation as JSON (every number) and Markdown (for people)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%d %b %H:%M")


def _plain(key: str, value: Any) -> Any:
    if key in ("episodes", "false_pages"):
        return [dataclasses.asdict(x) for x in value]
    if key == "icans":
        return {**value, "episodes": [dataclasses.asdict(x) for x in value["episodes"]]}
    return value


def to_json(meta: Mapping[str, Any], result: Mapping[str, Any],
            targets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"meta": dict(meta), "targets": targets,
            **{k: _plain(k, v) for k, v in result.items()}}


def write_json(doc: Mapping[str, Any], path: Path) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(doc), indent=1) + b"\n")


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table: the header, its separator, one line per row."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _stats(name: str, s: Mapping[str, Any]) -> tuple[object, ...]:
    return (name, s["n"], _num(s["median"]), _num(s["p90"]), _num(s["min"]), _num(s["max"]))


def _warnings(w: Mapping[str, Any]) -> list[str]:
    """The warning-noise section (`evaluation.warning_noise` defines each number)."""
    desat, silent = w["desaturation"], w["no_data"]

    def causes(c: Mapping[str, int]) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items()) or "–"

    L = ["", "## Warnings", "",
         "Warnings do not page, but a nurse who finds the list full of noise stops reading it. "
         "Desaturation: true when detected in the window [start - 1 h, end + 2 h] of a true "
         "episode with hypoxia (a sustained fall in the model, not a sleep dip); else its "
         "cause: a probe-off or motion artefact, a sleep dip, the patient's usual level "
         "(baseline <= 95 %), or unexplained. No data: "
         "true when the device really delivered no usable reading (offline, probe off, patch "
         "off, flagged motion, a clock ingest rejects) between its last valid reading and the "
         "warning; else a spot-check device, or unexplained. Sensitivity: episodes with "
         "hypoxia warned in [start, end + 1 h] (and with any SpO2 alert); outages of a "
         "streaming device longer than its silence threshold + 10 min warned within 15 min "
         "of their end.", ""]
    L += table(("warning", "fired", "true", "outside", "outside per patient-day",
                "outside by cause", "sensitivity"),
               [("desaturation", desat["fired"], desat["true"], desat["outside"],
                 f"{desat['outside_per_patient_day']:.3f}", causes(desat["causes"]),
                 f"{desat['warned']}/{desat['episodes']} episodes "
                 f"({desat['any_spo2_alert']} with any SpO2 alert)"),
                ("no data", silent["fired"], silent["true"], silent["outside"],
                 f"{silent['outside_per_patient_day']:.3f}", causes(silent["causes"]),
                 f"{silent['warned']}/{silent['outages']} outages")])
    return L


def markdown(meta: Mapping[str, Any], result: Mapping[str, Any],
             targets: list[dict[str, Any]], plots: list[str]) -> str:
    L = [f"# Evaluation: {meta['source']}", "",
         f"Rules: `{meta['rules']}`. {meta['patients']} patients, {meta['days']:.2f} days "
         f"each ({result['patient_days']:.1f} patient-days). {meta['messages']:,} messages, "
         f"{meta['readings']:,} readings ({meta['duplicates']:,} duplicates dropped, "
         f"{sum(meta['rejected'].values()):,} rejected by ingest). Evaluated in "
         f"{meta['seconds']:.1f} s with {meta['workers']} worker process(es) "
         f"({meta['readings'] / max(meta['seconds'], 1e-9):,.0f} readings/s).", "",
         "## Targets", ""]
    L += table(("target", "value", ""),
               ((t["target"], t["value"], "met" if t["met"] else "**not met**")
                for t in targets))
    L += ["", "## Sensitivity per episode kind", "",
          "Episodes whose fever onset (or start, without one) lies at least 1 h before the end "
          "of the timeline. Paged: a critical or error page in [start, end + 1 h].", ""]
    L += table(("episode", "n", "paged", "sensitivity", "median delay (min)",
                "p90 delay (min)"),
               ((lab, k["episodes"], k["paged"], _pct(k["sensitivity"]),
                 _num(k["delay"]["median"]), _num(k["delay"]["p90"]))
                for lab, k in result["by_kind"].items()))
    L += ["", "## Delays and lead time", "",
          "Delay: first page - the true time core temperature reached 38.0 °C (negative: the "
          "page came first). Desaturation: first desaturation alert (any severity) - the "
          "true time SpO2 reached <= 93 % (model, sleep dips included). Lead: a nurse checks "
          "every 4 h (8 h) from the start of the timeline (phase 0) and sees the fever at the "
          "first check at or after its onset; lead = that check - our first page. Published "
          "continuous monitoring found fevers 4.4-4.9 h before 4-8-hourly checks "
          "(CLINICAL.md).", ""]
    L += table(("measure", "n", "median", "p90", "min", "max"),
               [_stats("delay from fever onset (min)", result["delay"]),
                _stats("desaturation delay (min)", result["desat_delay"])]
               + [_stats(f"lead over nurse every {h} (min)", s)
                  for h, s in result["lead"].items()])
    day = result["per_patient_day"]
    L += ["", "## Per patient-day", "",
          "As the published outpatient study counted: a whole day of a patient's timeline is "
          "positive when a true episode's window [start, end + 1 h] overlaps it, and flagged "
          "when a page stood in it (from its detection until its alert resolved).", ""]
    L += table(("patient-days", "positive", "flagged positive", "missed positive",
                "flagged negative", "sensitivity", "specificity"),
               [(day["days"], day["positive"], day["tp"], day["fn"], day["fp"],
                 _pct(day["sensitivity"], 1), _pct(day["specificity"], 1))])
    sh = result["shifts"]
    L += ["", "## False pages", "",
          f"All pages (critical or error, firing): {result['pages']} "
          f"({result['pages_per_patient_day']:.3f} per patient-day). Pages of the vital-sign "
          f"rules outside every true episode window [start - 1 h, end + 2 h] (the reports' "
          f"pages are judged under ICANS and reports): "
          f"**{len(result['false_pages'])}**, {result['false_per_patient_day']:.3f} per "
          f"patient-day. Cause: the rule (no_data), else a device artefact in the truth "
          f"overlapping the alert's start..detection, else a sleep dip, else unexplained.", ""]
    L += table(("cause", "pages"), result["false_by_cause"].items())
    L += ["", f"Pages per nurse (one per team: {', '.join(sh['teams'])}) per 12-hour shift "
          f"({sh['shifts']} shifts from the start of the timeline): mean {sh['mean']:.2f}, "
          f"p90 {sh['p90']:.1f}, max {sh['max']}. Counted per alert event; the alerting "
          f"service groups a patient's pages into one incident. Distinct patients paged per "
          f"nurse per shift: mean {sh['patients_paged_mean']:.2f}, "
          f"max {sh['patients_paged_max']}.", "",
          "## Per rule", "",
          "Fired: firing events. True: in a true episode window [start - 1 h, end + 2 h]. "
          "Sensitivity contribution: the share of scorable episodes the rule detected in "
          "[start, end + 1 h].", ""]
    L += table(("rule", "severity", "fired", "true", "false", "episodes detected",
                "sensitivity"),
               ((rule, r["severity"], r["fired"], r["true"], r["false"],
                 r["episodes_detected"], _pct(r["sensitivity"]))
                for rule, r in result["by_rule"].items()))
    L += _warnings(result["warnings"])
    if "icans" in result:
        L += icans_section(result["icans"], result.get("fever_vitals_only"), result["delay"])
    episodes = sorted(result["episodes"], key=lambda e: (e.first_page is not None, e.patient))
    L += ["", "## Episodes", ""]
    L += table(("patient", "episode", "start", "fever onset", "first page", "rule",
                "delay (min)", "lead 4 h (min)"),
               ((e.patient, e.label + ("" if e.scorable else " (at the end)"),
                 _iso(e.start), _iso(e.fever_onset), _iso(e.first_page) or "**missed**",
                 e.first_page_rule or "", _num(e.delay_min), _num(e.lead_min.get("4h")))
                for e in episodes))
    if plots:
        L += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(L) + "\n"


def _hours(x: float | None) -> str:
    return "–" if x is None else f"{x / 60:.1f}"


def icans_section(r: Mapping[str, Any], vitals_only: Mapping[str, Any] | None,
                  delay: Mapping[str, Any]) -> list[str]:
    """ICANS episodes, the reports' pages and the missed neuro checks
    (`evaluation.icans` defines each number)."""
    L = ["", "## ICANS and reports", "",
         "Paged: a neuro page (ICE decline; a red flag of confusion, trouble speaking, a "
         "seizure ...; confusion with fever) in [start, end + 1 h]; delay from the first fall "
         "of the ICE, in hours. Episodes starting less than 1 h before the end are not scored. "
         "No target: none is backed by a source; the numbers are reported.", ""]
    rows = [(f"grade {g}", k["episodes"], k["paged"], _pct(k["sensitivity"]),
             _hours(k["delay"]["median"]), _hours(k["delay"]["p90"]),
             _hours(k["delay"]["max"])) for g, k in r["by_grade"].items()]
    a = r["all"]
    rows.append(("all", a["episodes"], a["paged"], _pct(a["sensitivity"]),
                 _hours(a["delay"]["median"]), _hours(a["delay"]["p90"]),
                 _hours(a["delay"]["max"])))
    L += table(("ICANS", "n", "paged", "sensitivity", "median delay (h)", "p90 (h)",
                "max (h)"), rows)
    L += ["", "Pages from report rules: true in an ICANS window [start - 1 h, end + 2 h]; "
          "for what a fever explains (chills with a rising temperature, breathlessness with a "
          "falling SpO2, confusion with fever, a red flag of breathing difficulty) also in a "
          "fever episode's window; otherwise false, with what the truth says the report "
          "was.", ""]
    L += table(("rule (symptom)", "ICANS", "fever", "false"),
               [(k, v.get("icans", 0), v.get("fever", 0), v.get("false", 0))
                for k, v in r["pages_by_rule"].items()])
    causes = ", ".join(f"{k} {v}" for k, v in r["false_by_cause"].items()) or "–"
    rep, m = r["reports"], r["missed_warnings"]
    L += ["", f"False pages from reports: **{r['false_pages']}** "
          f"({r['false_per_patient_day']:.3f} per patient-day; cause: {causes}).", "",
          f"Neuro checks planned {rep['neuro_checks_planned']}, missed "
          f"{rep['neuro_checks_missed']} ({_pct(rep['missed_share'], 1)}). "
          f"`neuro_check_missed` warnings (adherence, not pages): {m['fired']}, "
          f"{m['explained']} after a check really missed.", ""]
    if vitals_only is not None:
        d = vitals_only["delay"]
        L += [f"Fever episodes whose first page came from a report rule: "
              f"{vitals_only['first_paged_by_report']}. With the vital-sign rules alone: "
              f"{vitals_only['paged']} paged, median delay {_num(d['median'])} min, p90 "
              f"{_num(d['p90'])} (with reports: {_num(delay['median'])}, "
              f"{_num(delay['p90'])}).", ""]
    L += table(("patient", "ICANS", "start", "worst ICE", "seizure", "first page", "rule",
                "delay (h)"),
               ((e.patient, f"grade {e.grade}" + ("" if e.scorable else " (at the end)"),
                 _iso(e.start), e.worst_ice, "yes" if e.seizure else "",
                 _iso(e.first_page) or "**missed**",
                 (e.first_page_rule or "") + (f" ({e.first_page_symptom})"
                                              if e.first_page_symptom else ""),
                 _hours(e.delay_min)) for e in sorted(
                     r["episodes"], key=lambda e: (e.first_page is not None, e.patient))))
    return L
