"""What a patient or caregiver entered in the app (CONTRACT section 6: symptoms, the daily neuro
check, a manual measurement), as a nurse reads it: beside the charts on the nurse page and in a
page's details. Pure: wording only; the store keeps the reports (`ReportLog`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from vitals.records import ICE_PARTS

HOUR = 3600_000
KEEP_MS = 72 * HOUR  # the nurse page shows two days; a third covers a late upload
SHOWN_MS = 48 * HOUR  # on the nurse page, before the patient's newest alert
IN_PAGE_MS = 24 * HOUR  # in a page's details, before the incident's newest alert
IN_PAGE_MAX = 10
LATEST_SHOWN = 50  # every patient's newest, under the open alerts
UNITS = {"temp": "°C", "spo2": "%", "hr": "/min", "rr": "/min"}
NAMES = {"temp": "temperature", "spo2": "SpO2", "hr": "heart rate", "rr": "respiratory rate"}


def words(report: dict[str, Any]) -> str:
    """One report in a line, without its time: who, and what they said or measured."""
    kind = report.get("kind")
    if kind == "symptoms":
        codes = report.get("symptoms") or []
        said = ", ".join(code.replace("_", " ") for code in codes) or "checked in, nothing new"
        text = f"{report.get('by', 'someone')}: {said}"
        if report.get("note"):
            text += f'; note: "{report["note"]}"'
        return text
    if kind == "neuro_check":
        ice = report.get("ice") or {}
        parts = ", ".join(f"{name} {ice[name]}/{most}" for name, most in ICE_PARTS.items()
                          if name in ice)
        return f"{report.get('by', 'someone')}: ICE {report.get('ice_total')}/10 ({parts})"
    measured = ", ".join(f"{NAMES[key]} {report[key]:g} {unit}" for key, unit in UNITS.items()
                         if report.get(key) is not None)
    site = f" ({report['site']})" if report.get("site") else ""
    return f"entered by hand: {measured or kind}{site}"


def when(ts: int) -> str:
    """A report's time as the nurse page and the page write it."""
    return dt.datetime.fromtimestamp(ts / 1000, dt.UTC).strftime("%d %b %H:%M UTC")


def in_page(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A page's `reports` detail: the newest first, each with its time and its line."""
    return [{"at": when(report["ts"]), "kind": report.get("kind"), "said": words(report)}
            for report in reports[:IN_PAGE_MAX]]
