"""How much of the nurse's warning list is noise: desaturation and no-data warnings against the
truth (issue #16). Pure: truth and alert events in, numbers out.

Definitions (the report repeats them):
- a desaturation warning (rule `desaturation`, firing) is true when it was detected in the window
  [start - 1 h, end + 2 h] of a true episode with hypoxia (the truth's `spo2_nadir`: a
  sustained fall, not a sleep dip); otherwise its cause is
  a device artefact (probe off, motion) overlapping [start - 5 min, detection], else a sleep
  dip there, else the patient's usual level (a baseline SpO2 <= 95 %: within an oximeter's
  2-3 points of the threshold), else unexplained;
- a no-data warning (rule `no_data`, firing, per device) is true when the device really was not
  delivering usable readings: an outage in the truth (offline, probe off, patch off, flagged
  motion, a clock so far off that ingest rejects its readings) on that device overlapping
  [its last valid reading, detection]; otherwise its cause is a spot-check device (readings
  taken by a person when asked), else unexplained;
- sensitivity: of the episodes with hypoxia, those with a desaturation warning (and those with
  any SpO2 alert) in [start, end + 1 h]; of the outages of a streaming device long enough
  to be missed (its silence threshold + 10 min), those with a no-data warning for that device
  in [outage start, outage end + 15 min].
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping

from ingest.limits import MAX_AHEAD_MS
from simulators.truth import Artefact, Episode, Truth
from stream_rules import rules
from vitals.records import AlertEvent

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
TRUE_BEFORE, TRUE_AFTER, DETECT_AFTER = HOUR, 2 * HOUR, HOUR
USUAL_LEVEL = 95.0  # a baseline SpO2 at or below this lives within device accuracy of 93 %
OUTAGES = ("offline", "probe_off", "patch_off")
MISSED_MARGIN, WARNED_AFTER = 10 * MINUTE, 15 * MINUTE
SPO2_RULES = rules.watching("spo2")


def score_warnings(truth: Truth, alerts: Mapping[str, list[AlertEvent]], silent_after_min: float
                   = 30.0, missed_intervals: float = 3.0) -> dict[str, dict[str, object]]:
    """Desaturation and no-data warnings: fired, true, outside (with causes), sensitivity."""
    artefacts: dict[tuple[str, str], list[Artefact]] = defaultdict(list)
    for artefact in truth.artefacts:
        artefacts[(artefact.patient, artefact.device)].append(artefact)
    episodes: dict[str, list[Episode]] = defaultdict(list)
    for e in truth.episodes:
        episodes[e.patient].append(e)
    days = len(truth.patients) * (truth.end - truth.start) / DAY
    return {
        "desaturation": _desaturation(truth, alerts, artefacts, episodes, days),
        "no_data": _no_data(truth, alerts, artefacts, days, silent_after_min, missed_intervals),
    }


def _overlaps(artefact: Artefact, lo: int, hi: int) -> bool:
    return artefact.start <= hi and artefact.end >= lo


def _desaturation(truth: Truth, alerts: Mapping[str, list[AlertEvent]],
                  artefacts: Mapping[tuple[str, str], list[Artefact]],
                  episodes: Mapping[str, list[Episode]], days: float) -> dict[str, object]:
    baseline = {p.id: p.baseline.get("spo2", 100.0) for p in truth.patients}
    dips = defaultdict(list)
    for dip in truth.dips:
        dips[dip.patient].append(dip)
    fired, causes = 0, Counter[str]()
    for patient, events in alerts.items():
        desats = [e for e in episodes.get(patient, []) if e.spo2_nadir is not None]
        devices = [a for (p, _), arts in artefacts.items() if p == patient for a in arts]
        for a in events:
            if a.rule != "desaturation" or a.status != "firing":
                continue
            fired += 1
            if any(e.start - TRUE_BEFORE <= a.detected_at <= e.end + TRUE_AFTER for e in desats):
                continue
            lo, hi = a.start - 5 * MINUTE, a.detected_at
            if any(x.kind in ("probe_off", "motion") and _overlaps(x, lo, hi) for x in devices):
                causes["artefact"] += 1
            elif any(d.start <= hi and d.end >= lo for d in dips[patient]):
                causes["sleep_dip"] += 1
            elif baseline.get(patient, 100.0) <= USUAL_LEVEL:
                causes["usual_level"] += 1
            else:
                causes["unexplained"] += 1
    scorable = [e for es in episodes.values() for e in es
                if e.spo2_nadir is not None and e.start <= truth.end - DETECT_AFTER]

    def warned(e: Episode, names: frozenset[str] | set[str]) -> bool:
        return any(a.rule in names and a.status == "firing"
                   and e.start <= a.detected_at <= e.end + DETECT_AFTER
                   for a in alerts.get(e.patient, []))

    outside = sum(causes.values())
    return {"fired": fired, "true": fired - outside, "outside": outside,
            "outside_per_patient_day": outside / days if days else 0.0,
            "causes": dict(causes.most_common()), "episodes": len(scorable),
            "warned": sum(warned(e, {"desaturation"}) for e in scorable),
            "any_spo2_alert": sum(warned(e, set(SPO2_RULES)) for e in scorable)}


def _unusable(artefact: Artefact) -> bool:
    """Whether the device delivered no usable reading during this artefact."""
    if artefact.kind in OUTAGES:
        return True
    if artefact.kind == "motion":
        return bool(artefact.flagged)
    return artefact.kind == "clock_skew" and abs(artefact.value or 0) > MAX_AHEAD_MS


def _no_data(truth: Truth, alerts: Mapping[str, list[AlertEvent]],
             artefacts: Mapping[tuple[str, str], list[Artefact]], days: float,
             silent_after_min: float, missed_intervals: float) -> dict[str, object]:
    devices = {(p.id, d.id): d for p in truth.patients for d in p.devices}
    fired, causes = 0, Counter[str]()
    warnings: dict[tuple[str, str], list[int]] = defaultdict(list)
    for patient, events in alerts.items():
        for a in events:
            if a.rule != "no_data" or a.status != "firing":
                continue
            fired += 1
            device = str(a.evidence.get("device"))
            warnings[(patient, device)].append(a.detected_at)
            last = a.evidence.get("last_valid_at")
            lo = int(last) if isinstance(last, int | float) else a.start - int(
                silent_after_min * MINUTE)
            if any(_unusable(x) and _overlaps(x, lo, a.detected_at)
                   for x in artefacts.get((patient, device), [])):
                continue
            model = devices.get((patient, device))
            causes["spot_check_device" if model is not None and model.manual
                   else "unexplained"] += 1
    outages = warned = 0
    for (patient, device), model in devices.items():
        if model.manual:
            continue
        after = max(silent_after_min * MINUTE, missed_intervals * model.interval_ms)
        spans = sorted((x.start, x.end) for x in artefacts.get((patient, device), [])
                       if x.kind in OUTAGES)
        for start, end in _merged(spans):
            if end - start < after + MISSED_MARGIN or end > truth.end:
                continue
            outages += 1
            warned += any(start <= t <= end + WARNED_AFTER
                          for t in warnings.get((patient, device), []))
    outside = sum(causes.values())
    return {"fired": fired, "true": fired - outside, "outside": outside,
            "outside_per_patient_day": outside / days if days else 0.0,
            "causes": dict(causes.most_common()), "outages": outages, "warned": warned}


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
