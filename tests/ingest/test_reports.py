"""Patient and caregiver reports through ingest's parser (CONTRACT section 6): accepted as sent,
`ice_total` added, and refused with reason `schema` whenever anything would have to be
guessed."""

from __future__ import annotations

import time

import msgspec
import pytest

from tests.ingest.test_parse import RECEIVED, T, accepted, expect_rejected, parse
from tests.support import publish, read_topic, start_ingest
from vitals import topics
from vitals.records import Ice, Reading, encode
from vitals.settings import Settings

APP = "vitals/v1/P001/app-1"
ICE_7 = {"orientation": 3, "naming": 2, "commands": 1, "writing": 0, "attention": 1}


def symptoms(codes: list[str], **fields: object) -> dict[str, object]:
    return {"ts": T, "kind": "symptoms", "seq": 41, "by": "caregiver", "symptoms": codes,
            **fields}


def neuro(ice: dict[str, int], **fields: object) -> dict[str, object]:
    return {"ts": T, "kind": "neuro_check", "seq": 42, "by": "caregiver", "ice": ice, **fields}


def test_a_symptoms_report_is_carried_as_sent() -> None:
    report = accepted(symptoms(["chills", "severe_headache"], note="says the light hurts"),
                      topic=APP)
    assert report == Reading("P001", "app-1", T, "symptoms", RECEIVED, seq=41, by="caregiver",
                             symptoms=("chills", "severe_headache"),
                             note="says the light hurts")
    # what the stages read back off Kafka
    assert msgspec.json.decode(encode(report), type=Reading) == report


def test_checking_in_with_nothing_new_is_an_empty_list_not_a_missing_one() -> None:
    assert accepted(symptoms([]), topic=APP).symptoms == ()
    rej = expect_rejected({k: v for k, v in symptoms([]).items() if k != "symptoms"}, "schema",
                          topic=APP)
    assert "without `symptoms`" in rej.detail


def test_a_neuro_check_gets_its_ice_total() -> None:
    report = accepted(neuro(ICE_7), topic=APP)
    assert report.ice == Ice(**ICE_7) and report.ice_total == 7
    full = accepted(neuro({"orientation": 4, "naming": 3, "commands": 1, "writing": 1,
                           "attention": 1}), topic=APP)
    assert full.ice_total == 10


@pytest.mark.parametrize(("payload", "says"), [
    (symptoms(["chills", "light_headed"]), "light_headed"),  # an unknown code
    (neuro({**ICE_7, "orientation": 5}), "orientation"),  # a part out of range
    (neuro({**ICE_7, "naming": -1}), "naming"),
    (neuro({k: v for k, v in ICE_7.items() if k != "writing"}), "writing"),  # a part missing
    (neuro({**ICE_7, "mood": 1}), "mood"),  # a part that is not one of the five
    (neuro({**ICE_7, "attention": 0.5}), "attention"),
    ({k: v for k, v in symptoms(["chills"]).items() if k != "by"}, "`by`"),
    (symptoms(["chills"], by="nurse"), "by"),
    (symptoms(["other"]), "`other` needs a `note`"),
    (symptoms(["other"], note=" \n "), "`other` needs a `note`"),  # blank is no note
    (symptoms(["chills"], note="x" * 501), "note"),
    (symptoms(["chills"], temp=38.4), "no vital signs"),
    (symptoms(["chills"], ice=ICE_7), "no `ice`"),
    (neuro(ICE_7, symptoms=["confusion"]), "no `symptoms`"),
    ({k: v for k, v in neuro(ICE_7).items() if k != "ice"}, "without `ice`"),
    ({"ts": T, "kind": "temperature", "temp": 38.0, "symptoms": ["chills"]}, "no `symptoms`"),
])
def test_what_would_have_to_be_guessed_is_refused_with_reason_schema(
        payload: dict[str, object], says: str) -> None:
    assert says in expect_rejected(payload, "schema", topic=APP).detail


def test_a_note_is_text_on_one_line_and_other_with_a_note_is_accepted() -> None:
    report = accepted(symptoms(["other"], note="  rash on\nthe arms\r\n<b>itchy</b>\x00 "),
                      topic=APP)
    assert report.note == "rash on the arms <b>itchy</b>"  # markup stays text, for the page
    assert report.symptoms == ("other",)


def test_a_repeated_code_is_kept_once_in_the_order_given() -> None:
    report = accepted(symptoms(["headache", "chills", "headache"]), topic=APP)
    assert report.symptoms == ("headache", "chills")


def test_a_manual_spot_check_is_an_ordinary_temperature_reading_with_who_took_it() -> None:
    reading = accepted({"ts": T, "kind": "temperature", "temp": 38.3, "site": "oral",
                        "flags": ["manual"], "by": "patient", "seq": 7}, topic=APP)
    assert (reading.kind, reading.temp, reading.flags, reading.by) == (
        "temperature", 38.3, ("manual",), "patient")


def test_a_batch_mixing_reports_keeps_the_good_and_dead_letters_the_bad() -> None:
    out = parse({"readings": [symptoms(["cough"]), neuro({**ICE_7, "naming": 9}),
                              neuro(ICE_7, seq=43)]}, topic=APP)
    assert [r.kind for r in out.readings] == ["symptoms", "neuro_check"]
    assert [(r.reason, r.batch_index) for r in out.rejections] == [("schema", 1)]


def test_through_mosquitto_and_ingest_a_report_reaches_kafka_and_a_bad_one_is_dead_lettered(
        settings: Settings) -> None:
    now = int(time.time() * 1000) - 60_000
    ingest = start_ingest(settings)
    try:
        publish(settings.mqtt.port, [
            (APP, neuro(ICE_7, ts=now)),
            (APP, symptoms(["chills", "shivers"], ts=now, seq=43)),  # an unknown code
            (APP, {"ts": now, "kind": "temperature", "seq": 44, "temp": 38.3, "site": "oral",
                   "flags": ["manual"]}),
            ("vitals/v1/P001/th-1", {"ts": now, "kind": "temperature", "seq": 1,
                                     "temp": 38.2})])
        readings = read_topic(settings.kafka, topics.READINGS.name, expect=3, timeout=30)
        [(_, dead)] = read_topic(settings.kafka, topics.REJECTED.name, expect=1, timeout=30)
        # what a person entered is also on vitals.reports (for the nurse page), nothing else
        copies = read_topic(settings.kafka, topics.REPORTS.name, expect=2, timeout=30)
    finally:
        ingest.stop()
    [(key, report)] = [(k, v) for k, v in readings if v["kind"] == "neuro_check"]
    assert sorted((v["kind"], v["device_id"]) for _, v in copies) == [
        ("neuro_check", "app-1"), ("temperature", "app-1")]
    assert [k for k, _ in copies] == [b"P001", b"P001"]
    assert report in [v for _, v in copies]
    assert key == b"P001"
    assert (report["kind"], report["by"], report["ice"], report["ice_total"]) == (
        "neuro_check", "caregiver", ICE_7, 7)
    assert dead["reason"] == "schema" and "shivers" in dead["detail"]
