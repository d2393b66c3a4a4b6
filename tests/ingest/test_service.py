"""Ingest against a real Mosquitto and a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

import datetime as dt
import time
import urllib.request

from tests.support import healthz, publish, read_topic, scrape, start_ingest, wait_for
from vitals.settings import Settings


def now_ms() -> int:
    return int(time.time() * 1000)


def test_every_kind_of_message_ends_where_the_contract_says(settings: Settings) -> None:
    ingest = start_ingest(settings)
    t = now_ms() - 60_000
    paris = dt.timezone(dt.timedelta(hours=1))
    rfc3339 = dt.datetime.fromtimestamp(t // 1000, paris).isoformat()  # e.g. ...T06:00:00+01:00
    messages = [
        # valid oximetry, then the same reading again (a device re-sending it)
        ("vitals/v1/P001/ox-1", {"ts": t, "kind": "oximetry", "seq": 1, "spo2": 97, "hr": 72}),
        ("vitals/v1/P001/ox-1", {"ts": t, "kind": "oximetry", "seq": 1, "spo2": 97, "hr": 72}),
        # Fahrenheit, RFC 3339 with an offset, no seq
        ("vitals/v1/P001/th-1", {"ts": rfc3339, "kind": "temperature",
                                 "temp": 101.3, "unit": "F", "site": "oral"}),
        # finger out: sentinels
        ("vitals/v1/P002/ox-1", {"ts": t, "kind": "oximetry", "seq": 7, "spo2": 127, "hr": 255}),
        # a batch with one bad reading in the middle
        ("vitals/v1/P002/ox-1", {"readings": [
            {"ts": t + 1000, "kind": "oximetry", "seq": 8, "spo2": 95, "hr": 80},
            {"ts": t + 2000, "kind": "oximetry", "seq": 9, "spo2": 95, "hr": 400},
            {"ts": t + 3000, "kind": "oximetry", "seq": 10, "spo2": 94, "hr": 82},
        ]}),
        ("vitals/v1/P001/ox-1", b"{not json"),
        ("vitals/v1/P999/ox-1", {"ts": t, "kind": "oximetry", "spo2": 97, "hr": 72}),
        ("vitals/v1/P001/th-1", {"ts": now_ms() + 3_600_000, "kind": "temperature", "temp": 37}),
        ("vitals/v1/P001/ox-1/status", {"ts": t, "state": "offline", "battery": 12}),
    ]
    publish(settings.mqtt.port, messages)
    bootstrap = settings.kafka_bootstrap
    readings = read_topic(bootstrap, "vitals.readings", expect=5)
    rejected = read_topic(bootstrap, "vitals.rejected", expect=4)
    status = read_topic(bootstrap, "vitals.status", expect=1)
    counts = ingest.stop()

    by_key = {(v["patient_id"], v["device_id"], v.get("seq"), v["kind"]): (k, v)
              for k, v in readings}
    assert len(readings) == 5, readings  # the duplicate is forwarded once
    key, ox = by_key[("P001", "ox-1", 1, "oximetry")]
    assert key == b"P001" and ox["ts"] == t and ox["spo2"] == 97 and ox["hr"] == 72
    _, temp = by_key[("P001", "th-1", None, "temperature")]
    assert temp["temp"] == 38.5 and temp["site"] == "oral"
    assert temp["ts"] == t // 1000 * 1000
    _, blind = by_key[("P002", "ox-1", 7, "oximetry")]
    assert "spo2" not in blind and "hr" not in blind and blind["flags"] == ["no_signal"]
    assert {("P002", 8), ("P002", 10)} <= {(v["patient_id"], v.get("seq")) for _, v in readings}

    reasons = sorted(v["reason"] for _, v in rejected)
    assert reasons == ["bad_json", "clock_skew", "out_of_range", "unknown_patient"]
    bad_hr = next(v for _, v in rejected if v["reason"] == "out_of_range")
    assert bad_hr["batch_index"] == 1 and bad_hr["batch_size"] == 3
    assert '"hr":400' in bad_hr["payload"] and "400" in bad_hr["detail"]
    bad_json = next(v for _, v in rejected if v["reason"] == "bad_json")
    assert bad_json["payload"] == "{not json" and bad_json["topic"] == "vitals/v1/P001/ox-1"
    assert all(v["received_at"] > 0 and v["detail"] for _, v in rejected)

    assert status[0][1]["state"] == "offline" and status[0][1]["battery"] == 12

    assert counts.messages == len(messages)
    assert counts.received == 11 == counts.accounted
    assert (counts.accepted, counts.duplicates, counts.statuses) == (5, 1, 1)
    assert counts.rejected.total() == 4


def test_readings_published_while_ingest_is_down_arrive_once(settings: Settings) -> None:
    t = now_ms() - 3_600_000

    def reading(i: int) -> tuple[str, dict]:
        return ("vitals/v1/P003/ox-1",
                {"ts": t + i * 1000, "kind": "oximetry", "seq": i, "spo2": 96, "hr": 70})

    first = start_ingest(settings)
    publish(settings.mqtt.port, [reading(i) for i in range(500)])
    assert len(read_topic(settings.kafka_bootstrap, "vitals.readings", 500, settle=0)) == 500
    first.stop()

    publish(settings.mqtt.port, [reading(i) for i in range(500, 2500)])  # nobody listening
    second = start_ingest(settings)
    publish(settings.mqtt.port, [reading(i) for i in range(2500, 3000)])
    got = read_topic(settings.kafka_bootstrap, "vitals.readings", 3000, timeout=30, settle=1.0)
    counts = second.stop()

    seqs = sorted(v["seq"] for _, v in got)
    assert seqs == list(range(3000))
    assert counts.accepted == 2500 and counts.duplicates == 0


def test_metrics_endpoint_counts_while_running(settings: Settings) -> None:
    ingest = start_ingest(settings)
    t = now_ms()
    publish(settings.mqtt.port, [
        ("vitals/v1/P001/th-1", {"ts": t, "kind": "temperature", "temp": 37.1}),
        ("vitals/v1/P001/th-1", {"ts": t, "kind": "temperature", "temp": 17.1}),
    ])
    read_topic(settings.kafka_bootstrap, "vitals.rejected", expect=1, settle=0)
    with urllib.request.urlopen(f"http://{settings.ingest_metrics_addr}/metrics") as r:
        text = r.read().decode()
    ingest.stop()
    assert 'vitals_ingest_accepted_total{record="reading"} 1.0' in text
    assert 'vitals_ingest_rejected_total{reason="out_of_range"} 1.0' in text
    assert "vitals_ingest_messages_total 2.0" in text


def test_healthz_and_progress_gauges_while_idle_and_after_work(settings: Settings) -> None:
    ingest = start_ingest(settings)
    addr = settings.ingest_metrics_addr
    try:
        assert healthz(addr) == (200, {"status": "ok"})  # idle: nothing waits
        idle = scrape(addr)
        assert idle["vitals_ingest_pending"] == 0
        assert idle["vitals_ingest_last_progress_seconds"] == 0  # nothing handed over yet
        assert "vitals_ingest_oldest_pending_event_seconds" not in idle
        before = time.time()
        publish(settings.mqtt.port, [
            ("vitals/v1/P001/th-1", {"ts": now_ms(), "kind": "temperature", "temp": 37.1})])
        wait_for(lambda: scrape(addr)["vitals_ingest_last_progress_seconds"] >= before,
                 timeout=30, what="progress: the message on Kafka and acknowledged")
        after = scrape(addr)
        assert after["vitals_ingest_pending"] == 0
        assert after["vitals_ingest_unacked_messages"] == 0  # the older gauge still there
        assert healthz(addr)[0] == 200
    finally:
        ingest.stop()
