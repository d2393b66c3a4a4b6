"""Matching pages to the truth. Pure: truth and alert events in, numbers out.

Definitions (the report repeats them):
- a page is a `firing` alert event of severity critical or error;
- an episode is detected by a rule when that rule fires (detected_at) for the patient within
  [episode start, episode end + 1 h]; it is paged when a page does;
- detection delay: first page in that window minus the truth's `fever_onset` (negative: the
  page came before the core temperature reached 38.0 °C);
- a nurse checks vitals every 4 h (or 8 h) from the start of the timeline (phase 0: checks at
  start, start + 4 h, ...) and notices the fever at the first check at or after fever_onset;
  lead time = nurse detection - our first page;
- a false page: a page for a patient whose detected_at is outside every true episode window
  [start - 1 h, end + 2 h]; its cause is the rule when it judges a device, not the patient
  (no_data -> "no-data"), else an artefact of the patient's devices overlapping
  [alert start, detected_at], else a sleep dip, else "unexplained";
- pages per nurse per 12-hour shift: all pages, one nurse per team, shifts of 12 h from the
  start of the timeline;
- per patient-day (as the published outpatient study counted): each whole day of each
  patient's timeline is positive when a true episode's window [start, end + 1 h] overlaps it,
  and flagged when a page stood in it (from its detection until its alert resolved);
  sensitivity = flagged positive days / positive
  days, specificity = unflagged negative days / negative days.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from evaluation import icans
from evaluation.targets import check as check_targets
from evaluation.warning_noise import score_warnings
from simulators.truth import Episode, Icans, Truth
from stream_rules import rules
from vitals.records import AlertEvent

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
PAGING = frozenset({"critical", "error"})
DETECT_AFTER = HOUR  # an episode's detection window runs to its end + 1 h
TRUE_BEFORE, TRUE_AFTER = HOUR, 2 * HOUR  # pages in [start - 1 h, end + 2 h] are true
CAUSES = ("probe_off", "motion", "patch_off", "blanket", "offline")  # in order of precedence
DESAT = 93.0  # truth min_spo2 at or below this: the episode has a desaturation
DESATURATION_RULES = rules.watching("spo2")  # their first alert times the desaturation delay


def is_device_rule(rule: str) -> bool:
    """A rule that judges a device rather than the patient (no_data): its page's cause."""
    spec = rules.find(rule)
    return spec is not None and spec.per_device


def label(e: Episode) -> str:
    if e.kind == "crs":
        return f"crs grade {e.grade}"
    return e.kind


def is_page(a: AlertEvent) -> bool:
    return a.status == "firing" and a.severity in PAGING


def stats(values: Iterable[float]) -> dict[str, float | int | None]:
    v = np.asarray(list(values), float)
    if not len(v):
        return {"n": 0, "median": None, "p90": None, "min": None, "max": None}
    return {"n": len(v), "median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
            "min": float(v.min()), "max": float(v.max())}


def nurse_check(t: int, start: int, every: int) -> int:
    """The first nurse check at or after `t`, checks at start + k * every."""
    return start + max(0, -((start - t) // every)) * every


@dataclass
class EpisodeScore:
    patient: str
    label: str
    start: int
    end: int
    fever_onset: int | None
    desat_onset: int | None
    scorable: bool  # fever onset (or start) at least an hour before the timeline's end
    rules: list[str]  # rules that fired in the window
    first_page: int | None
    first_page_rule: str | None
    delay_min: float | None  # first page - fever onset
    desat_delay_min: float | None  # first desaturation alert - desaturation onset
    lead_min: dict[str, float] = field(default_factory=dict)  # "4h"/"8h": nurse - first page


@dataclass
class FalsePage:
    patient: str
    rule: str
    severity: str
    start: int
    detected_at: int
    cause: str
    alert_id: str


def score(truth: Truth, alerts: Mapping[str, list[AlertEvent]],
          desat_onsets: Mapping[tuple[str, int], int] | None = None,
          nurse_hours: tuple[int, ...] = (4, 8)) -> dict[str, object]:
    """Every number of the evaluation. `desat_onsets[(patient, episode start)]`: when the true
    SpO2 first reached <= 93 % (from the model, where available)."""
    desat_onsets = desat_onsets or {}
    by_patient: dict[str, list[Episode]] = defaultdict(list)
    for e in truth.episodes:
        by_patient[e.patient].append(e)
    # a fever is detected by the vital-sign rules and the reports a fever explains (chills
    # rising ...), not by an ICE decline or a neurological red flag (those speak of ICANS)
    fever_alerts = {pid: [a for a in evs if icans.detects_fever(a)]
                    for pid, evs in alerts.items()}
    episodes = [score_episode(truth, e, fever_alerts.get(e.patient, []),
                              desat_onsets.get((e.patient, e.start)), nurse_hours)
                for e in truth.episodes]
    # the same with the vital-sign rules alone: what the reports changed
    vitals_only = [score_episode(truth, e, [a for a in alerts.get(e.patient, [])
                                            if not icans.is_report_rule(a.rule)],
                                 None, ()) for e in truth.episodes]
    false_pages = [f for pid, evs in alerts.items()
                   for f in false_pages_of(truth, pid, evs, by_patient.get(pid, []))]
    days = len(truth.patients) * (truth.end - truth.start) / DAY
    pages = sum(is_page(a) for evs in alerts.values() for a in evs)
    return {
        "episodes": episodes,
        "false_pages": false_pages,
        "patient_days": days,
        "by_kind": by_kind(episodes),
        "by_rule": by_rule(truth, alerts, episodes, by_patient),
        "delay": stats(e.delay_min for e in episodes if e.delay_min is not None),
        "desat_delay": stats(e.desat_delay_min for e in episodes
                             if e.desat_delay_min is not None),
        "lead": {f"{h}h": stats(e.lead_min[f"{h}h"] for e in episodes if f"{h}h" in e.lead_min)
                 for h in nurse_hours},
        "pages": pages,
        "pages_per_patient_day": pages / days if days else 0.0,
        "false_per_patient_day": len(false_pages) / days if days else 0.0,
        "false_by_cause": dict(Counter(f.cause for f in false_pages).most_common()),
        "shifts": shift_load(truth, alerts),
        "per_patient_day": per_patient_day(truth, alerts, by_patient),
        "warnings": score_warnings(truth, alerts),
        "icans": icans.score(truth, alerts),
        "fever_vitals_only": {
            "delay": stats(e.delay_min for e in vitals_only if e.delay_min is not None),
            "paged": sum(e.first_page is not None for e in vitals_only if e.scorable),
            "first_paged_by_report": sum(
                1 for e in episodes if e.first_page_rule and icans.is_report_rule(
                    e.first_page_rule))},
    }


def paging_spans(alerts: Iterable[AlertEvent], end: int) -> list[tuple[int, int]]:
    """When each page stood: from its detection until the alert resolved (else `end`)."""
    resolved = {a.alert_id: a.detected_at for a in alerts if a.status == "resolved"}
    return [(a.detected_at, resolved.get(a.alert_id, end)) for a in alerts if is_page(a)]


def per_patient_day(truth: Truth, alerts: Mapping[str, list[AlertEvent]],
                    by_patient: Mapping[str, list[Episode]]) -> dict[str, float | int | None]:
    """Days positive (an episode window overlaps) or not, flagged (a page stood) or not."""
    counts: Counter[str] = Counter()
    neuro: dict[str, list[Icans]] = defaultdict(list)
    for i in truth.icans:  # an ICANS day is a day a page is right too
        neuro[i.patient].append(i)
    whole_days = (truth.end - truth.start) // DAY
    for patient in truth.patients:
        windows = [(e.start, e.end + DETECT_AFTER) for e in (
            *by_patient.get(patient.id, []), *neuro.get(patient.id, []))]
        paged = paging_spans(alerts.get(patient.id, []), truth.end)
        for d in range(whole_days):
            lo, hi = truth.start + d * DAY, truth.start + (d + 1) * DAY
            positive = any(start < hi and end >= lo for start, end in windows)
            flagged = any(start < hi and end >= lo for start, end in paged)
            counts[("tp" if flagged else "fn") if positive else ("fp" if flagged else "tn")] += 1
    tp, fn, tn, fp = (counts[k] for k in ("tp", "fn", "tn", "fp"))
    return {"days": tp + fn + tn + fp, "positive": tp + fn, "tp": tp, "fn": fn, "tn": tn,
            "fp": fp, "sensitivity": tp / (tp + fn) if tp + fn else None,
            "specificity": tn / (tn + fp) if tn + fp else None}


def score_episode(truth: Truth, e: Episode, alerts: list[AlertEvent],
                  desat_onset: int | None, nurse_hours: tuple[int, ...]) -> EpisodeScore:
    lo, hi = e.start, e.end + DETECT_AFTER
    inside = sorted((a for a in alerts if a.status == "firing" and lo <= a.detected_at <= hi),
                    key=lambda a: a.detected_at)
    pages = [a for a in inside if a.severity in PAGING]
    first = pages[0] if pages else None
    onset = e.fever_onset if e.fever_onset is not None and e.fever_onset < truth.end else None
    scorable = (onset if onset is not None else e.start) <= truth.end - HOUR
    delay = (first.detected_at - onset) / MINUTE if first and onset is not None else None
    desat_delay = None
    if desat_onset is not None and desat_onset <= truth.end - HOUR:
        desaturations = [a for a in inside if a.rule in DESATURATION_RULES]
        if desaturations:
            desat_delay = (desaturations[0].detected_at - desat_onset) / MINUTE
    lead = {}
    if first and onset is not None:
        for h in nurse_hours:
            lead[f"{h}h"] = (nurse_check(onset, truth.start, h * HOUR) - first.detected_at) / MINUTE
    return EpisodeScore(e.patient, label(e), e.start, e.end, onset, desat_onset, scorable,
                        sorted({a.rule for a in inside}), first and first.detected_at,
                        first and first.rule, delay, desat_delay, lead)


def false_pages_of(truth: Truth, patient: str, alerts: list[AlertEvent],
                   episodes: list[Episode]) -> list[FalsePage]:
    windows = [(e.start - TRUE_BEFORE, e.end + TRUE_AFTER) for e in episodes]
    arts = [a for a in truth.artefacts if a.patient == patient and a.kind in CAUSES]
    dips = [d for d in truth.dips if d.patient == patient]
    out = []
    for a in alerts:
        if not is_page(a) or icans.is_report_rule(a.rule) or any(
                lo <= a.detected_at <= hi for lo, hi in windows):
            continue  # reports' pages are judged in evaluation.icans
        lo, hi = min(a.start, a.detected_at), a.detected_at
        if is_device_rule(a.rule):
            cause = "no-data"
        else:
            kinds = {x.kind for x in arts if x.start <= hi and x.end >= lo}
            cause = next((k for k in CAUSES if k in kinds), "")
            if not cause:
                cause = "sleep_dip" if any(d.start <= hi and d.end >= lo for d in dips) \
                    else "unexplained"
        out.append(FalsePage(patient, a.rule, a.severity, a.start, a.detected_at, cause,
                             a.alert_id))
    return out


def by_kind(episodes: list[EpisodeScore]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for lab in sorted({e.label for e in episodes}):
        eps = [e for e in episodes if e.label == lab and e.scorable]
        paged = sum(e.first_page is not None for e in eps)
        out[lab] = {"episodes": len(eps), "paged": paged,
                    "sensitivity": paged / len(eps) if eps else None,
                    "delay": stats(e.delay_min for e in eps if e.delay_min is not None)}
    return out


def by_rule(truth: Truth, alerts: Mapping[str, list[AlertEvent]],
            episodes: list[EpisodeScore], by_patient: Mapping[str, list[Episode]]
            ) -> dict[str, dict[str, object]]:
    """Per rule: firing events, how many fell in a true episode window, and the share of the
    (scorable) episodes it detected."""
    scorable = [e for e in episodes if e.scorable]
    fired: Counter[str] = Counter()
    true: Counter[str] = Counter()
    severity: dict[str, str] = {}
    iw, fw = icans.windows(truth)
    missed = icans.missed_checks(truth)
    for pid, evs in alerts.items():
        windows = [(e.start - TRUE_BEFORE, e.end + TRUE_AFTER) for e in by_patient.get(pid, [])]
        for a in evs:
            if a.status != "firing":
                continue
            fired[a.rule] += 1
            severity[a.rule] = a.severity
            if icans.is_report_rule(a.rule):
                true[a.rule] += icans.true_report_event(a, iw[pid], fw[pid], missed[pid])
            else:
                true[a.rule] += any(lo <= a.detected_at <= hi for lo, hi in windows)
    detected = Counter(r for e in scorable for r in e.rules)
    out = {}
    for rule in sorted(set(fired) | set(detected)):
        out[rule] = {"severity": severity.get(rule, ""), "fired": fired[rule],
                     "true": true[rule], "false": fired[rule] - true[rule],
                     "episodes_detected": detected[rule],
                     "sensitivity": detected[rule] / len(scorable) if scorable else None}
    return out


def shift_load(truth: Truth, alerts: Mapping[str, list[AlertEvent]],
               shift: int = 12 * HOUR) -> dict[str, object]:
    """Pages per nurse (one per team) per 12-hour shift from the timeline's start."""
    team = {p.id: p.team for p in truth.patients}
    teams = sorted(set(team.values()))
    n_shifts = max(1, -((truth.start - truth.end) // shift))
    counts = {t: [0] * n_shifts for t in teams}
    paged: dict[str, list[set[str]]] = {t: [set() for _ in range(n_shifts)] for t in teams}
    for pid, evs in alerts.items():
        for a in evs:
            if is_page(a) and pid in team:
                k = min(n_shifts - 1, max(0, (a.detected_at - truth.start) // shift))
                counts[team[pid]][k] += 1
                paged[team[pid]][k].add(pid)
    flat = [c for t in teams for c in counts[t]]
    # alerting groups a patient's pages into one incident: patients paged per shift
    people = [len(x) for t in teams for x in paged[t]]
    return {"teams": teams, "shifts": n_shifts, "per_team": counts,
            "mean": float(np.mean(flat)) if flat else 0.0,
            "p90": float(np.percentile(flat, 90)) if flat else 0.0,
            "max": max(flat, default=0),
            "patients_paged_mean": float(np.mean(people)) if people else 0.0,
            "patients_paged_max": max(people, default=0)}


def targets(result: Mapping[str, object], seconds: float) -> list[dict[str, object]]:
    """The targets (`evaluation.targets`) and where the rules stand against them."""
    return check_targets(result, seconds)
