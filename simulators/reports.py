"""What a patient and the caregiver send from the patient's app (CONTRACT section 6): the
caregiver's neuro check (the ICE screen) morning and evening in the first two weeks, with
the checks people miss; a symptom check-in most days, usually "nothing new" and sometimes a
headache, fatigue or nausea that is nothing; and what a fever or an ICANS really makes them
report (chills, breathlessness, trouble writing or speaking, confusion, a seizure).

Planned once per patient from its own seed stream (`Simulation.seed_for(i, 5)`), so the
wearables' streams are untouched; `devices.DeviceSim` sends them from the app device,
sharing its `seq` with the app's manual spot checks. The rates are assumptions of this
simulator (no source gives them), documented in simulators/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np

from simulators import icans
from simulators.plan import DAY, HOUR, MINUTE, EpisodePlan, IcansPlan, Report

# "Record and review" symptoms (CLINICAL.md, "What patients report") that are nothing here:
# none of them is a red flag, so alone they must not page. (code, weight)
NOISE = (("fatigue", 0.4), ("headache", 0.35), ("nausea", 0.15), ("joint_pain", 0.1))
NOTES = {"fatigue": "tired after a short walk", "headache": "mild headache, had a paracetamol",
         "nausea": "a bit queasy after lunch", "joint_pain": "knees ache this morning"}
P_NOTE = 0.2  # a noise report carries a note
P_OTHER = 0.05  # a noise report is "other" with a note instead
CHECK_HOURS = (8.0, 20.0)  # local time of the morning and evening neuro checks
CHECK_JITTER = 40 * MINUTE  # sd, clipped to +-2 h
CHECKIN_HOURS = (9.0, 21.0)  # symptom check-ins: uniform in local time


@dataclass(frozen=True)
class ReportConfig:
    checks_per_day: int = 2  # neuro checks: 1 (morning) or 2 (and evening)
    check_days: float = 14.0  # after infusion (and while an ICANS lasts)
    missed: float = 0.1  # a single check missed
    missed_days: float = 0.03  # a whole day's checks missed
    checkins_per_day: float = 0.6  # symptom check-ins (Poisson mean)
    noise: float = 0.25  # share of check-ins that report something that is nothing
    episode_reports: float = 0.6  # a fever or ICANS sign is reported when it appears
    ice_slip: float = 0.005  # a check without ICANS scores 9 (a counting slip)


def plan(rng: np.random.Generator, cfg: ReportConfig, start: int, end: int, day0: int,
         utc_offset: int, fevers: tuple[EpisodePlan, ...], neuro: tuple[IcansPlan, ...]
         ) -> tuple[Report, ...]:
    """Every report of one patient in [start, end), missed checks included, in time order."""
    days = max(0, -((day0 - end) // DAY)) + 1
    out = _checks(rng, cfg, start, end, day0, utc_offset, days, neuro)
    out += _checkins(rng, cfg, start, end, day0, utc_offset, days, fevers, neuro)
    out += _fever_reports(rng, cfg, fevers)
    out += _icans_reports(rng, cfg, neuro)
    return tuple(sorted((r for r in out if start <= r.at < end),
                        key=lambda r: (r.at, r.kind, r.symptoms)))


def _active(neuro: tuple[IcansPlan, ...], t: int) -> bool:
    return any(e.onset <= t < e.end for e in neuro)


def _checks(rng: np.random.Generator, cfg: ReportConfig, start: int, end: int, day0: int,
            utc_offset: int, days: int, neuro: tuple[IcansPlan, ...]) -> list[Report]:
    u = rng.random((days, 7))  # fixed draws per day: the same whatever is kept
    z = rng.standard_normal((days, 3))
    out = []
    for d in range(days):
        whole_day = u[d, 0] < cfg.missed_days
        for j, hour in enumerate(CHECK_HOURS[:cfg.checks_per_day]):
            jitter = float(np.clip(z[d, j] * CHECK_JITTER, -2 * HOUR, 2 * HOUR))
            t = day0 + d * DAY + round(hour * HOUR) - utc_offset + round(jitter)
            if not (start <= t < end) or (t - day0 >= cfg.check_days * DAY
                                          and not _active(neuro, t)):
                continue
            lost = icans.deficit(neuro, t)
            points = 0
            if lost >= 0.3:  # a caregiver's screen varies by about a point
                points = int(np.clip(round(lost + 0.5 * z[d, 2]), 1 if lost >= 1 else 0,
                                     icans.ICE_MAX))
            why = "check"
            parts = icans.ice_parts(points)
            if points:
                why = "icans"
            elif u[d, 3 + j] < cfg.ice_slip:  # counted back wrong: attention 0
                why, parts = "ice_slip", (*parts[:4], 0)
            missed = bool(whole_day or u[d, 1 + j] < cfg.missed)
            out.append(Report(t, "neuro_check", "caregiver", why, ice=parts, missed=missed))
    return out


def _noise(rng: np.random.Generator) -> tuple[tuple[str, ...], str | None]:
    u = rng.random(4)
    names = [n for n, _ in NOISE]
    w = np.cumsum([p for _, p in NOISE])
    first = names[int(np.searchsorted(w / w[-1], u[0]))]
    codes = [first]
    if u[1] < 0.2:  # a second one
        second = names[int(np.searchsorted(w / w[-1], u[2]))]
        if second != first:
            codes.append(second)
    if u[3] < P_OTHER:
        return ("other",), "slept badly"
    note = NOTES[first] if u[3] < P_OTHER + P_NOTE else None
    return tuple(codes), note


def _fever_symptoms(fevers: tuple[EpisodePlan, ...], t: int) -> tuple[str, ...]:
    """What an ongoing fever makes a patient tick on a routine check-in."""
    for e in fevers:
        if e.onset <= t < e.onset + e.rise + e.plateau:
            rising = t < e.onset + e.rise
            return ("chills", "fatigue") if rising else ("fatigue",)
    return ()


def _checkins(rng: np.random.Generator, cfg: ReportConfig, start: int, end: int, day0: int,
              utc_offset: int, days: int, fevers: tuple[EpisodePlan, ...],
              neuro: tuple[IcansPlan, ...]) -> list[Report]:
    counts = np.minimum(rng.poisson(cfg.checkins_per_day, days), 3)
    out = []
    for d in range(days):
        u = rng.random((3, 4))
        for k in range(int(counts[d])):
            hour = CHECKIN_HOURS[0] + u[k, 0] * (CHECKIN_HOURS[1] - CHECKIN_HOURS[0])
            t = day0 + d * DAY + round(hour * HOUR) - utc_offset
            if not (start <= t < end) or (t - day0 >= cfg.check_days * DAY
                                          and not _active(neuro, t)):
                continue
            tremor = any(e.tremor and e.onset <= t < e.end for e in neuro)
            sick = icans.symptoms(icans.deficit(neuro, t), tremor)
            fever = _fever_symptoms(fevers, t)
            codes, note, why = (), None, "checkin"
            if u[k, 1] < cfg.noise:
                codes, note = _noise(rng)
                why = "noise"
            if fever:
                codes, why = fever + tuple(c for c in codes if c not in fever), "fever"
            if sick:
                codes, why = sick + tuple(c for c in codes if c not in sick), "icans"
            by = "caregiver" if sick or u[k, 2] < 0.3 else "patient"
            out.append(Report(t, "symptoms", by, why, codes, note=note))
    return out


def _fever_reports(rng: np.random.Generator, cfg: ReportConfig,
                   fevers: tuple[EpisodePlan, ...]) -> list[Report]:
    """Shaking chills as the fever rises; breathlessness as SpO2 falls (hypoxic CRS)."""
    out = []
    for e in fevers:
        u = rng.random(8)
        if u[0] < cfg.episode_reports:
            t = e.onset + round((0.3 + 0.7 * u[1]) * e.rise) + round(u[2] * 30 * MINUTE)
            codes = ["chills"] + (["fatigue"] if u[3] < 0.5 else []) + (
                ["headache"] if u[4] < 0.3 else [])
            if e.kind == "infection" and u[5] < 0.3:
                codes.append("cough")
            out.append(Report(t, "symptoms", "patient" if u[6] < 0.6 else "caregiver",
                              "fever", tuple(codes)))
        if e.spo2_nadir is not None:
            severe = e.spo2_nadir <= 91
            if u[7] < (cfg.episode_reports if severe else cfg.episode_reports / 3):
                t = e.onset + e.hypoxia_delay + round(0.7 * e.hypoxia_rise) + round(
                    u[1] * 2 * HOUR)
                out.append(Report(t, "symptoms", "patient", "fever",
                                  ("breathing_difficulty", "fatigue")))
    return out


def _icans_reports(rng: np.random.Generator, cfg: ReportConfig,
                   neuro: tuple[IcansPlan, ...]) -> list[Report]:
    """A caregiver reports each new sign some time after it shows, and a seizure at once."""
    out = []
    for e in neuro:
        grid = np.arange(e.onset, e.onset + e.decline + 1, 15 * MINUTE, dtype=np.int64)
        lost = icans.intensity(e, grid) * (icans.ICE_MAX - e.ice_nadir)
        seen: set[str] = set()
        u = rng.random((6, 2))
        k = 0
        for t, x in zip(grid.tolist(), lost.tolist(), strict=True):
            now = icans.symptoms(x, e.tremor)
            if set(now) - seen and k < len(u):
                seen |= set(now)
                at = t + round((0.25 + 3.75 * u[k, 1]) * HOUR)
                if u[k, 0] < cfg.episode_reports:
                    out.append(Report(at, "symptoms", "caregiver", "icans",
                                      icans.symptoms(icans.deficit(neuro, at), e.tremor)))
                k += 1
        if e.seizure is not None:
            at = e.seizure + round((2 + 18 * float(rng.random())) * MINUTE)
            now = icans.symptoms(icans.deficit(neuro, at), e.tremor)
            out.append(Report(at, "symptoms", "caregiver", "seizure", ("seizure", *now),
                              note="shaking all over for about two minutes"))
    return out


_encode = msgspec.json.Encoder().encode


def payload(r: Report, ts: int | str, seq: int) -> str:
    """The report as the app sends it (CONTRACT section 6)."""
    body: dict[str, object] = {"ts": ts, "kind": r.kind, "seq": seq, "by": r.by}
    if r.kind == "neuro_check":
        assert r.ice is not None
        body["ice"] = dict(zip(icans.PARTS, r.ice, strict=True))
    else:
        body["symptoms"] = list(r.symptoms)
        if r.note:
            body["note"] = r.note
    return _encode(body).decode()


def file_line(at: int, topic: str, text: str) -> str:
    """A payload as a traffic-file line, byte for byte what `trafficfile.encode_line` writes."""
    return f'{{"at":{at},"topic":"{topic}","payload":{_encode(text).decode()}}}\n'
