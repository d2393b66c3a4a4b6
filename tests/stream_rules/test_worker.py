"""The Faust worker on a real Kafka-protocol broker (tansu), as its own process: readings in,
alert events and trend points out, its metrics and health, hostile records, device statuses,
and two workers sharing the patients. Restarts: test_worker_restarts.py."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import msgspec
import pytest
import yaml
from confluent_kafka import Producer

from stream_rules.config import default_rules_path, load_rules
from stream_rules.engine import Engine
from stream_rules.faust_app import CHANGELOG
from stream_rules.rules.spec import hhmm
from stream_rules.worker import PROGRESS_CHECK_S
from tests.hostile import variants
from tests.stream_rules.test_batch import decodes
from tests.stream_rules.test_engine import PATIENT, readings
from tests.stream_rules.workers import Workers, episode, produce, records_at
from tests.support import healthz, read_topic, scrape, wait_for, write_patients
from vitals.kafka import producer_config
from vitals.records import DeviceStatus, encode

pytestmark = pytest.mark.slow

def test_trend_points_carry_the_patients_features(workers: Workers) -> None:
    workers.start()
    produce(workers.bootstrap, readings(20, temp=lambda s: 37.2, spo2=lambda s: 96,
                                        hr=lambda s: 95))
    got = read_topic(workers.bootstrap, "vitals.trends", 15, timeout=30)
    last = got[-1][1]
    assert got[-1][0] == b"P001"
    assert (last["temp"], last["spo2"], last["hr"]) == (37.2, 96.0, 95.0)
    assert last["news2"] == 1 and set(last["news2_parameters"]) == {"temp", "hr", "spo2"}


def test_metrics_count_what_was_judged_and_what_the_checkpoints_wrote(
        workers: Workers) -> None:
    workers.start()
    rs = readings(20, temp=lambda s: 37.2, spo2=lambda s: 96, hr=lambda s: 95)
    produce(workers.bootstrap, rs)
    wait_for(lambda: workers.counters()["vitals_rules_readings_judged_total"] >= len(rs),
             timeout=60, what="every reading judged")
    workers.procs[-1].stop()  # stopping writes the states owed
    text = workers.log.read_text()
    (stats,) = re.findall(r"rules: judged (\d+) readings.*?(\d+) checkpoints, ([\d.]+) B of "
                          r"state per reading", text)
    assert int(stats[0]) == len(rs) and int(stats[1]) >= 1
    assert 0 < float(stats[2]) <= 64, stats  # one patient's state, ~1,200 readings (issue #15)


def test_healthz_and_progress_gauges_idle_and_after_judging(workers: Workers) -> None:
    workers.start()
    addr = workers.metrics[-1].removeprefix("http://").removesuffix("/metrics")
    assert healthz(addr) == (200, {"status": "ok"})  # idle: nothing waits
    idle = scrape(addr)
    assert idle["vitals_rules_pending"] == 0
    assert idle["vitals_rules_last_progress_seconds"] == 0  # nothing judged yet
    before = time.time()
    # a backlog of ~150,000 records: seconds of judging at ~20,000 records/s, so the lag
    # (counted every second) is seen on its way down; 30,000 were judged between two counts
    rs = readings(2500, temp=lambda s: 37.2, spo2=lambda s: 96, hr=lambda s: 95)
    produce(workers.bootstrap, rs)
    seen: list[dict[str, float]] = []

    def scraped() -> dict[str, float]:
        seen.append(scrape(addr))
        return seen[-1]

    wait_for(lambda: scraped()["vitals_rules_pending"] > 0, timeout=60, what="a lag")
    assert healthz(addr)[0] == 200  # work waits, but it moves
    wait_for(lambda: scraped()["vitals_rules_readings_judged_total"] == len(rs),
             timeout=120, what="every reading judged")
    # while records wait, the oldest waiting (where known) is a time of this test's records
    for gauges in seen:
        oldest = gauges.get("vitals_rules_oldest_pending_event_seconds")
        assert oldest is None or before - 5 <= oldest <= time.time(), gauges
    time.sleep(2 * PROGRESS_CHECK_S)  # the lag counted since: Kafka's watermark is reached
    gauges = scrape(addr)
    assert gauges["vitals_rules_last_progress_seconds"] >= before
    assert gauges["vitals_rules_pending"] == 0
    assert "vitals_rules_oldest_pending_event_seconds" not in gauges  # nothing waits
    assert healthz(addr) == (200, {"status": "ok"})


def test_records_that_are_not_readings_are_dead_lettered_and_judging_goes_on(
        workers: Workers) -> None:
    """Every hostile variant of a reading (tests/hostile.py), on the real worker: each one that
    is not a valid reading is dead-lettered, small, and the worker goes on judging."""
    workers.start()
    valid = msgspec.to_builtins(episode()[0])
    hostile = [body for _, body in variants(valid)] + [
        json.dumps({**valid, "patient_id": "P001\nforged"}).encode()]  # a forged log line
    refused = [body for body in hostile if not decodes(body)]
    producer = Producer(producer_config(workers.bootstrap))
    for body in hostile:
        producer.produce("vitals.readings", body, b"P001")
    assert producer.flush(30) == 0
    produce(workers.bootstrap, readings(20, temp=lambda s: 37.2, spo2=lambda s: 96,
                                        hr=lambda s: 95))
    dead = read_topic(workers.bootstrap, "vitals.rejected", len(refused), timeout=90)
    assert len(read_topic(workers.bootstrap, "vitals.trends", 15, timeout=60)) >= 15
    assert len(dead) == len(refused) > 100
    assert {v["reason"] for _, v in dead} == {"rules_bad_record"}
    assert max(len(json.dumps(v)) for _, v in dead) < 16 * 1024
    assert workers.procs[0].alive()
    assert "\nforged" not in workers.log.read_text()


def test_a_last_will_on_vitals_status_is_paged_as_offline_since_it(workers: Workers,
                                                                     tmp_path: Path) -> None:
    """The worker reads `vitals.status`: a device's last will starts its no-data page at that
    moment, and the page says when it went offline (no_data.after_min 0.25 here: 15 s)."""
    doc = yaml.safe_load(default_rules_path().read_text())
    doc["rules"]["no_data"]["after_min"] = 0.25
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(doc, sort_keys=False))
    workers.env["VITALS_RULES"] = str(rules)
    workers.start()
    # Received "10 s from now": the silence cannot fire before the will below is read, however
    # slowly a loaded machine judges the readings first (the two topics are read in no set
    # order, and a will is for a device the worker has heard from, as a real one is).
    received = produce(workers.bootstrap, readings(10, spo2=lambda s: 97, hr=lambda s: 70),
                       received_later_ms=10_000)
    assert read_topic(workers.bootstrap, "vitals.trends", 1, timeout=60, settle=0)
    went = received + 500
    producer = Producer(producer_config(workers.bootstrap))
    producer.produce("vitals.status", encode(DeviceStatus("P001", "ox-1", "offline", went)),
                     b"P001")
    assert producer.flush(30) == 0

    def offline_pages() -> list[dict]:
        return [v for _, v in read_topic(workers.bootstrap, "vitals.alerts", 1, timeout=5,
                                         settle=0) if v["rule"] == "no_data"]

    wait_for(lambda: bool(offline_pages()), 60, "the no-data page")
    [page] = offline_pages()
    assert page["start"] == went and page["evidence"]["offline_at"] == went, page
    assert f"ox-1 went offline at {hhmm(went)}" in page["summary"], page["summary"]


def partitions(text: str) -> set[int]:
    """Faust's way of listing partitions: "0-1", "0,2", "0-1, 3"."""
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def test_two_workers_split_the_patients_and_each_alert_comes_once(workers: Workers,
                                                                   tmp_path: Path) -> None:
    ids = [f"P00{i}" for i in range(1, 7)]
    workers.env["VITALS_PATIENTS"] = str(write_patients(tmp_path / "six.yaml", ids))
    workers.start()
    workers.start()  # joins the group, and is ready once the partitions are shared out again
    tables = re.findall(r"\| vitals\.readings\s+\| \{([0-9, -]+)\}", workers.log.read_text())
    a, b = (partitions(t) for t in tables[-2:])  # the two workers' shares after the rebalance
    assert a and b and not a & b and a | b == {0, 1, 2, 3}, tables
    rules = load_rules(None)
    expected = set()
    for pid in ids:
        rs = [msgspec.structs.replace(r, patient_id=pid) for r in episode()]
        patient = PATIENT.model_copy(update={"id": pid})
        alerts = Engine(rules, patient).process(None, rs).alerts
        expected |= {(a.alert_id, a.status) for a in alerts}
        produce(workers.bootstrap, rs)
    got = read_topic(workers.bootstrap, "vitals.alerts", len(expected), timeout=90, settle=3)
    assert {(v["alert_id"], v["status"]) for _, v in got} == expected
    assert len(got) == len(expected)  # no restart here, so not even a repeat
    workers.stop_all()
    judged = [int(n) for n in re.findall(r"rules: judged (\d+) readings", workers.log.read_text())]
    assert len(judged) == 2 and all(n > 0 for n in judged), judged  # both did part of it
    # Each state is in the changelog partition of its patient's readings, the one its worker
    # restores after a restart (str keys were JSON, '"P001"', and hashed elsewhere).
    readings = {key: p for p, _, key in records_at(workers.bootstrap, "vitals.readings")}
    states = {key: p for p, _, key in records_at(workers.bootstrap, CHANGELOG)
              if key and not key.startswith(b"~")}
    assert states == readings and set(readings) == {pid.encode() for pid in ids}
    assert len(set(readings.values())) > 1  # the patients are spread, so this could fail


