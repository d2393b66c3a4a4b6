"""The words of the patient's page: plain English for the contract's symptom codes, the
"call now" signs (CLINICAL.md), the ICE questions. Nothing here names a diagnosis or a grade:
the page asks and records; the team judges."""

from __future__ import annotations

from typing import get_args

from vitals.records import Symptom

# Every code of CONTRACT section 6, in the order the page lists them: what needs a call first.
SYMPTOMS: dict[str, str] = {
    "seizure": "A seizure (fit)",
    "confusion": "Confused, or not making sense",
    "trouble_speaking": "Trouble speaking or finding words",
    "breathing_difficulty": "Hard to breathe",
    "fainting": "Fainted, or nearly fainted",
    "severe_headache": "Very bad headache",
    "drowsiness": "Very sleepy, hard to wake",
    "chills": "Chills or shivering",
    "fast_heartbeat": "Racing heart",
    "dizziness": "Dizzy",
    "trouble_writing": "Handwriting has changed",
    "tremor": "Shaking hands",
    "headache": "Headache",
    "fatigue": "Very tired",
    "cough": "Cough",
    "sore_throat": "Sore throat",
    "painful_urination": "Pain or burning when passing urine",
    "nausea": "Feeling sick",
    "vomiting": "Being sick (vomiting)",
    "diarrhea": "Diarrhoea",
    "not_drinking": "Not drinking enough",
    "rash": "Rash",
    "joint_pain": "Joint pain",
    "bleeding": "Bleeding or unusual bruising",
    "other": "Something else (say what in the note)",
}
assert set(SYMPTOMS) == set(get_args(Symptom)), "a contract symptom code has no words"

# The codes that mean "call the team now" as well as sending the check-in (CLINICAL.md, "What
# patients report": the seed's "call at once" list and the programmes' additions).
CALL_NOW_CODES = frozenset({
    "seizure", "confusion", "trouble_speaking", "breathing_difficulty", "fainting",
    "severe_headache", "drowsiness", "chills", "fast_heartbeat", "dizziness"})

CALL_NOW = (
    "a temperature of 38\u00a0°C or higher",
    "a very bad headache",
    "sudden confusion, or not making sense",
    "difficulty breathing",
    "a seizure (fit)",
    "fainting or feeling faint",
    "trouble speaking or finding words",
    "shaking chills, or a racing heart",
)

SITES = {"oral": "In the mouth", "tympanic": "In the ear", "axillary": "Under the arm"}

# The ICE screen (CLINICAL.md), one point per tick box: part -> (question, what to ask,
# the points' labels). The maxima are the contract's (orientation 4, naming 3, others 1).
ICE_PARTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "orientation": (
        "Where and when",
        "Ask each question. Tick each one answered correctly.",
        ("What year is it?", "What month is it?", "What city are we in?",
         "Where are we now?")),
    "naming": (
        "Naming things",
        "Point to three things (for example a clock, a pen, a button) and ask what each is "
        "called. Tick each one named correctly.",
        ("First thing named", "Second thing named", "Third thing named")),
    "commands": (
        "Following an instruction",
        "Ask: \"Show me two fingers\", or \"Close your eyes and stick out your tongue\".",
        ("Did it",)),
    "writing": (
        "Writing",
        "Ask them to write one sentence, for example \"The sun is shining today\".",
        ("Wrote a full sentence",)),
    "attention": (
        "Counting back",
        "Ask them to count back from 100 in tens: 100, 90, 80 ... down to 10.",
        ("Counted back correctly",)),
}
ICE_MAX = sum(len(points) for _, _, points in ICE_PARTS.values())
assert ICE_MAX == 10
