"""What a patient or caregiver entered in the app, as the nurse reads it (alerting.reports), and
in an e-mail page's text."""

from __future__ import annotations

import msgspec

from alerting import page, reports
from alerting.notify.base import Facts
from vitals.records import Ice, Reading

TS = 1_795_000_000_000  # 18 Nov 2026 11:06:40 UTC


def said(reading: Reading) -> str:
    return reports.words(msgspec.to_builtins(reading))


def test_a_check_in_says_who_what_and_the_note() -> None:
    assert said(Reading("P001", "app", TS, "symptoms", TS, by="caregiver",
                        symptoms=("severe_headache", "trouble_speaking"),
                        note="slurring since lunch")) == (
        'caregiver: severe headache, trouble speaking; note: "slurring since lunch"')
    assert said(Reading("P001", "app", TS, "symptoms", TS, by="patient", symptoms=())) == (
        "patient: checked in, nothing new")


def test_a_neuro_check_gives_the_total_and_every_part_out_of_its_most() -> None:
    ice = Ice(orientation=2, naming=3, commands=1, writing=0, attention=1)
    assert said(Reading("P001", "app", TS, "neuro_check", TS, by="caregiver", ice=ice,
                        ice_total=ice.total)) == (
        "caregiver: ICE 7/10 (orientation 2/4, naming 3/3, commands 1/1, writing 0/1, "
        "attention 1/1)")


def test_a_manual_measurement_says_it_was_entered_by_hand() -> None:
    assert said(Reading("P001", "app", TS, "temperature", TS, temp=38.4, site="oral",
                        flags=("manual",))) == "entered by hand: temperature 38.4 °C (oral)"


def test_a_page_lists_them_newest_first_at_most_ten_and_its_text_shows_them() -> None:
    entered = [msgspec.to_builtins(Reading("P001", "app", TS - i * 60_000, "symptoms", TS,
                                           by="patient", symptoms=("chills",)))
               for i in range(12)]
    detail = reports.in_page(entered)
    assert len(detail) == reports.IN_PAGE_MAX
    assert detail[0] == {"at": "18 Nov 11:06 UTC", "kind": "symptoms", "said": "patient: chills"}
    facts = Facts("P001-1", "P001", "error", [{
        "alert_id": "P001/fever/1", "rule": "fever", "severity": "error", "start": TS,
        "detected_at": TS, "summary": "P001: fever"}], 0, "https://x/alerts/P001-1",
        extra={"reports": detail[:2]})
    text = facts.plain_text()
    assert ("Entered in the app by the patient or a caregiver (last 24 h):\n"
            "  18 Nov 11:06 UTC  patient: chills\n  18 Nov 11:05 UTC  patient: chills") in text
    assert facts.details()["reports"] == detail[:2]


def test_with_no_alert_open_the_nurse_page_still_lists_the_newest_reports_as_text() -> None:
    headache = msgspec.to_builtins(Reading("P003", "app", TS, "symptoms", TS, by="patient",
                                           symptoms=("headache",), note="<b>mild</b>"))
    html = page.fragment([], {}, latest=[headache])
    assert "No open alerts." in html
    assert ("<li><b>P003</b> · 18 Nov 11:06 UTC · patient: headache; note: "
            "&quot;&lt;b&gt;mild&lt;/b&gt;&quot;</li>") in html
    assert "id='no-reports'" in page.fragment([], {}, latest=[])
