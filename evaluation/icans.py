"""Scoring what patients and caregivers report: ICANS episodes found by the report rules, the
pages reports cause outside any reason for them, and the missed daily neuro checks. Pure:
truth and alert events in, numbers out. Definitions (the report repeats them):

- an ICANS episode is paged when a neuro page (`ice_decline`; `red_flag` for confusion,
  trouble speaking or writing, tremor, drowsiness or a seizure; `confusion_fever`) fired for
  the patient in [start, end + 1 h], the fever episodes' window; delay = that page - the
  episode's start (the ICE's first fall). Episodes starting less than 1 h before the end of
  the timeline are listed, not scored;
- a page from a report rule is true when it falls in an ICANS window [start - 1 h, end + 2 h]
  (the patient is neurotoxic: any report is worth the call), or, for what a fever explains
  (chills with a rising temperature, breathlessness with a falling SpO2, confusion with
  fever, a red flag of breathing difficulty, fainting or severe headache), in a fever
  episode's window [start - 1 h, end + 2 h]. Otherwise it is a false page, whose cause is
  what the truth says the report was (`noise`, `ice_slip`, ...), else `unexplained`;
- `neuro_check_missed` is a warning (adherence), never a page: counted, and explained when
  the truth has a planned check nobody did in the `every_h + grace_h` before it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulators.truth import Episode, Icans, Report, Truth
from stream_rules.rules import reports
from vitals.records import AlertEvent

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
PAGING = frozenset({"critical", "error"})
DETECT_AFTER = HOUR
TRUE_BEFORE, TRUE_AFTER = HOUR, 2 * HOUR
MISSED_RULE = reports.MISSED.name  # neuro_check_missed
REPORT_RULES = frozenset(s.name for s in reports.SPECS) | {MISSED_RULE}
NEURO_SYMPTOMS = frozenset({"confusion", "trouble_speaking", "trouble_writing", "tremor",
                            "drowsiness", "seizure"})
# what a fever episode (CRS, infection) explains: the combinations, and these red flags
FEVER_RULES = frozenset({"chills_rising_temperature", "breathlessness_falling_spo2",
                         "confusion_fever"})
FEVER_FLAGS = frozenset({"breathing_difficulty", "fainting", "severe_headache"})
MISSED_WITHIN = 30 * HOUR  # the rule's every_h + grace_h (rules file defaults)


def is_report_rule(rule: str) -> bool:
    return rule in REPORT_RULES


def is_page(a: AlertEvent) -> bool:
    return a.status == "firing" and a.severity in PAGING


def _symptom(a: AlertEvent) -> str:
    return str(a.evidence.get("symptom", ""))


def is_neuro_page(a: AlertEvent) -> bool:
    """A page that speaks of neurotoxicity (what detects an ICANS episode)."""
    return a.rule in ("ice_decline", "confusion_fever") or (
        a.rule == "red_flag" and _symptom(a) in NEURO_SYMPTOMS)


def detects_fever(a: AlertEvent) -> bool:
    """Whether a page may count as detecting a fever episode: any vital-sign rule, and the
    report rules a fever explains (chills rising, breathless, confusion with fever, ...), not
    an ICE decline or a neurological red flag, which speak of ICANS."""
    return not is_report_rule(a.rule) or a.rule in FEVER_RULES or (
        a.rule == "red_flag" and _symptom(a) in FEVER_FLAGS)


def _stats(values: Iterable[float]) -> dict[str, float | int | None]:
    v = np.asarray(list(values), float)
    if not len(v):
        return {"n": 0, "median": None, "p90": None, "max": None}
    return {"n": len(v), "median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
            "max": float(v.max())}


@dataclass
class IcansScore:
    patient: str
    grade: int
    start: int
    end: int
    worst_ice: int
    seizure: bool
    scorable: bool
    first_page: int | None
    first_page_rule: str | None
    first_page_symptom: str | None
    delay_min: float | None  # first neuro page - start
    rules: list[str] = field(default_factory=list)


def score_episode(truth: Truth, e: Icans, alerts: list[AlertEvent]) -> IcansScore:
    lo, hi = e.start, e.end + DETECT_AFTER
    pages = sorted((a for a in alerts if is_page(a) and is_neuro_page(a)
                    and lo <= a.detected_at <= hi), key=lambda a: a.detected_at)
    first = pages[0] if pages else None
    return IcansScore(e.patient, e.grade, e.start, e.end, e.worst_ice, e.seizure is not None,
                      e.start <= truth.end - HOUR, first and first.detected_at,
                      first and first.rule, (first and _symptom(first)) or None,
                      None if first is None else (first.detected_at - e.start) / MINUTE,
                      sorted({a.rule for a in pages}))


def _windows(items: Iterable[Episode | Icans]) -> list[tuple[int, int]]:
    return [(x.start - TRUE_BEFORE, x.end + TRUE_AFTER) for x in items]


def judge_page(a: AlertEvent, icans_windows: list[tuple[int, int]],
               fever_windows: list[tuple[int, int]]) -> str:
    """`icans`, `fever` (a true page for the reason named), or `false`."""
    t = a.detected_at
    if any(lo <= t <= hi for lo, hi in icans_windows):
        return "icans"
    if not is_neuro_page(a) and (a.rule in FEVER_RULES or _symptom(a) in FEVER_FLAGS) and \
            any(lo <= t <= hi for lo, hi in fever_windows):
        return "fever"
    return "false"


def true_report_event(a: AlertEvent, icans_windows: list[tuple[int, int]],
                      fever_windows: list[tuple[int, int]], missed_at: list[int]) -> bool:
    """A report rule's firing event (any severity) that the truth justifies."""
    if a.rule == MISSED_RULE:
        return any(a.detected_at - MISSED_WITHIN <= t <= a.detected_at for t in missed_at)
    return judge_page(a, icans_windows, fever_windows) != "false"


def missed_checks(truth: Truth) -> dict[str, list[int]]:
    """Per patient, when the planned neuro checks nobody did were due."""
    out: dict[str, list[int]] = defaultdict(list)
    for r in truth.reports:
        if r.kind == "neuro_check" and r.missed:
            out[r.patient].append(r.at)
    return out


def windows(truth: Truth) -> tuple[dict[str, list[tuple[int, int]]],
                                   dict[str, list[tuple[int, int]]]]:
    """Per patient, the true windows [start - 1 h, end + 2 h] of ICANS and of fevers."""
    iw: dict[str, list[tuple[int, int]]] = defaultdict(list)
    fw: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i in truth.icans:
        iw[i.patient] += _windows([i])
    for e in truth.episodes:
        fw[e.patient] += _windows([e])
    return iw, fw


def _cause(a: AlertEvent, sent: list[Report]) -> str:
    """What the truth says the report behind a false page was."""
    near = [r for r in sent if abs(r.at - a.detected_at) <= MINUTE]
    return min(near, key=lambda r: abs(r.at - a.detected_at)).why if near else "unexplained"


def score(truth: Truth, alerts: Mapping[str, list[AlertEvent]]) -> dict[str, Any]:
    """Every number of the ICANS and report section."""
    fevers: dict[str, list[Episode]] = defaultdict(list)
    for e in truth.episodes:
        fevers[e.patient].append(e)
    neuro: dict[str, list[Icans]] = defaultdict(list)
    for i in truth.icans:
        neuro[i.patient].append(i)
    sent: dict[str, list[Report]] = defaultdict(list)
    for r in truth.reports:
        if not r.missed:
            sent[r.patient].append(r)
    episodes = [score_episode(truth, e, alerts.get(e.patient, [])) for e in truth.icans]
    pages: list[dict[str, Any]] = []
    for pid, evs in alerts.items():
        iw, fw = _windows(neuro.get(pid, [])), _windows(fevers.get(pid, []))
        for a in evs:
            if is_page(a) and is_report_rule(a.rule):
                verdict = judge_page(a, iw, fw)
                pages.append({"patient": pid, "rule": a.rule, "symptom": _symptom(a) or None,
                              "severity": a.severity, "detected_at": a.detected_at,
                              "verdict": verdict, "alert_id": a.alert_id,
                              "cause": _cause(a, sent[pid]) if verdict == "false" else None})
    false = [p for p in pages if p["verdict"] == "false"]
    days = len(truth.patients) * (truth.end - truth.start) / DAY
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for p in pages:
        by_rule[p["rule"] + (f" ({p['symptom']})" if p["symptom"] else "")][p["verdict"]] += 1
    scorable = [e for e in episodes if e.scorable]
    return {
        "episodes": episodes,
        "by_grade": {str(g): _summary([e for e in scorable if e.grade == g])
                     for g in (1, 2, 3, 4) if any(e.grade == g for e in episodes)},
        "all": _summary(scorable),
        "pages": pages,
        "pages_by_rule": {k: dict(v) for k, v in sorted(by_rule.items())},
        "false_pages": len(false),
        "false_per_patient_day": len(false) / days if days else 0.0,
        "false_by_cause": dict(Counter(p["cause"] for p in false).most_common()),
        "reports": _reports(truth),
        "missed_warnings": _missed(truth, alerts),
    }


def _summary(eps: list[IcansScore]) -> dict[str, Any]:
    paged = [e for e in eps if e.first_page is not None]
    return {"episodes": len(eps), "paged": len(paged),
            "sensitivity": len(paged) / len(eps) if eps else None,
            "delay": _stats(e.delay_min for e in paged if e.delay_min is not None)}


def _reports(truth: Truth) -> dict[str, Any]:
    """What the truth says was sent and missed."""
    checks = [r for r in truth.reports if r.kind == "neuro_check"]
    missed = sum(r.missed for r in checks)
    return {"neuro_checks_planned": len(checks), "neuro_checks_missed": missed,
            "missed_share": missed / len(checks) if checks else None,
            "sent_by_why": dict(Counter(f"{r.kind}: {r.why}" for r in truth.reports
                                        if not r.missed).most_common())}


def _missed(truth: Truth, alerts: Mapping[str, list[AlertEvent]]) -> dict[str, int]:
    missed_at = missed_checks(truth)
    fired = explained = 0
    for pid, evs in alerts.items():
        for a in evs:
            if a.rule == MISSED_RULE and a.status == "firing":
                fired += 1
                explained += any(a.detected_at - MISSED_WITHIN <= t <= a.detected_at
                                 for t in missed_at.get(pid, []))
    return {"fired": fired, "explained": explained, "unexplained": fired - explained}
