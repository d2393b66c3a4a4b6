"""`vitals store` against a real tansu and a real VictoriaMetrics (which takes influxdb-client
writes on /api/v2/write and reads back through /api/v1/export as `{measurement}_{field}`
series with the tags as labels). VictoriaMetrics stores string fields as 0, so for alert ids
and summaries these tests see that the field is there and the schema tests check its text."""

from __future__ import annotations

import subprocess
import time

from harness import servers, services
from harness.command import vitals
from tests.storage.support import committed, produce, start_store, wait_for_points
from tests.support import read_topic
from vitals import topics
from vitals.records import AlertEvent, Reading, TrendPoint, encode
from vitals.settings import Settings

PARTITIONS = 4


def test_readings_trends_and_alerts_arrive_with_the_documented_tags_and_fields(
        store_settings: Settings, vm: servers.Server) -> None:
    t = int(time.time() * 1000) - 3_600_000
    ox = [Reading("P001", "ox-1", t + i * 1000, "oximetry", t + i * 1000 + 30, seq=i,
                  spo2=96.0 - i % 3, hr=90.0 + i) for i in range(20)]
    finger_out = Reading("P001", "ox-1", t + 20_000, "oximetry", t + 20_030, seq=20, hr=88.0,
                         flags=("no_signal",))
    temp = Reading("P002", "th-1", t, "temperature", t + 5, temp=38.4, site="oral",
                   battery=55.0)
    trend = TrendPoint("P001", t + 60_000, temp=37.9, hr=101.0, spo2=95.0, news2=2,
                       news2_parameters=("hr",))
    alert = AlertEvent("P001-fever-1", "firing", "fever", "critical", "P001", t, t + 30_000,
                       summary="P001: fever 38.4 °C since 09:00", evidence={"temp": 38.4})
    records = [(topics.READINGS.name, r.patient_id, encode(r)) for r in [*ox, finger_out, temp]]
    # the same reading twice, and once more as ingest would send it after a redelivery
    records += [records[3], (topics.READINGS.name, "P001",
                             encode(Reading(**{**{f: getattr(ox[4], f) for f in
                                                  ox[4].__struct_fields__},
                                               "received_at": t + 99_999})))]
    records += [(topics.TRENDS.name, "P001", encode(trend)),
                (topics.ALERTS.name, "P001", encode(alert))]
    produce(store_settings.kafka_bootstrap, records)

    store = start_store(store_settings)
    # each topic is consumed and written on its own: wait for each, not for the readings alone
    wait_for_points(vm, "trends_news2", 1)
    wait_for_points(vm, "alerts_alert_id", 1)
    pts = wait_for_points(vm, "readings_received_at", 22)
    counts = store.stop()

    hr = pts.get("readings_hr", patient="P001", device="ox-1", kind="oximetry")
    assert set(hr.timestamps) == {r.ts for r in [*ox, finger_out]}
    assert dict(hr.samples)[t + 5000] == 95.0
    spo2 = pts.get("readings_spo2", patient="P001", device="ox-1", kind="oximetry")
    assert t + 20_000 not in spo2.timestamps  # the sentinel left no value
    assert pts.get("readings_flags", patient="P001", device="ox-1", kind="oximetry").timestamps \
        == {t + 20_000: 1}
    assert dict(pts.get("readings_seq", patient="P001", device="ox-1",
                        kind="oximetry").samples)[t + 7000] == 7
    tags = {"patient": "P002", "device": "th-1", "kind": "temperature", "site": "oral"}
    assert pts.get("readings_temp", **tags).samples == [(t, 38.4)]
    assert pts.get("readings_battery", **tags).samples == [(t, 55.0)]
    # sequence numbers and alert ids are never labels (tags): one series per stream
    assert all("seq" not in dict(labels) for _, labels in pts.series)
    assert pts.get("trends_news2", patient="P001").samples == [(t + 60_000, 2)]
    assert pts.get("trends_temp", patient="P001").samples == [(t + 60_000, 37.9)]
    alert_tags = {"patient": "P001", "rule": "fever", "severity": "critical", "status": "firing"}
    for field in ("alert_id", "summary", "start", "late", "evidence"):
        assert set(pts.get(f"alerts_{field}", **alert_tags).timestamps) == {t + 30_000}
    assert dict(pts.get("alerts_start", **alert_tags).samples)[t + 30_000] == t

    # Duplicates: one point each (series and timestamp) as InfluxDB holds them; this
    # VictoriaMetrics, without -dedup.minScrapeInterval, keeps the extra raw samples.
    assert pts.distinct("readings_hr") == 21 and pts.raw("readings_hr") == 23
    assert counts.records == 26 and counts.written == 26 and counts.refused == counts.bad == 0
    assert committed(store_settings.kafka_bootstrap, topics.READINGS.name, PARTITIONS) == 24
    assert committed(store_settings.kafka_bootstrap, topics.ALERTS.name, PARTITIONS) == 1
    assert read_topic(store_settings.kafka_bootstrap, topics.REJECTED.name, 0, timeout=1,
                      settle=0) == []


def test_without_an_influx_url_the_store_stops_at_start_with_one_line() -> None:
    proc = subprocess.run(vitals("store"), env=services.environment(), capture_output=True,
                          text=True, timeout=30, cwd="/")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "vitals: VITALS_INFLUX_URL is not set: `vitals store` needs the InfluxDB 2 URL, "
        "e.g. http://127.0.0.1:8086"]
