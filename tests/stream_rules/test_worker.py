"""The Faust worker on a real Kafka-protocol broker (tansu), as its own process: readings in,
alert events out; killed mid-episode and restarted, it loses no alert and invents none."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from harness import servers, services
from stream_rules.config import default_rules_path, load_rules
from stream_rules.engine import Engine
from stream_rules.rules.spec import hhmm
from stream_rules.worker import APP_ID, CHANGELOG, PROGRESS_CHECK_S
from tests.hostile import variants
from tests.stream_rules.test_batch import decodes
from tests.stream_rules.test_engine import PATIENT, readings
from tests.support import healthz, read_topic, scrape, wait_for, write_patients
from vitals.kafka import producer_config, reader_config
from vitals.records import DeviceStatus, Reading, encode

pytestmark = pytest.mark.slow

class Workers:
    """`vitals rules` processes sharing one log, on this test's broker."""

    def __init__(self, kafka: servers.Server, tmp_path: Path) -> None:
        self.bootstrap = f"127.0.0.1:{kafka.port}"
        self.log = tmp_path / "worker.log"
        self.env = services.environment({
            "kafka_url": f"kafka://{self.bootstrap}", "kafka_partitions": 4,
            "patients": write_patients(tmp_path / "p.yaml", ["P001"]),
            "state_dir": tmp_path / "state"})
        self.procs: list[services.ServiceProcess] = []
        self.metrics: list[str] = []  # each worker's /metrics URL

    def start(self) -> services.ServiceProcess:
        """Another worker, once it judges (partitions assigned, state recovered)."""
        addr = f"127.0.0.1:{servers.free_port()}"
        self.metrics.append(f"http://{addr}/metrics")
        self.procs.append(services.start("rules", env={**self.env,
                                                       "VITALS_RULES_METRICS_ADDR": addr},
                                         log=self.log))
        return self.procs[-1]

    def counters(self, index: int = -1) -> dict[str, float]:
        """A worker's `vitals_rules_*` metrics, by name."""
        with urllib.request.urlopen(self.metrics[index], timeout=10) as r:
            lines = r.read().decode().splitlines()
        return {name: float(value) for name, _, value in
                (line.rpartition(" ") for line in lines if line.startswith("vitals_rules_"))}

    def stop_all(self) -> None:
        for worker in self.procs:
            worker.stop()


@pytest.fixture
def workers(kafka: servers.Server, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(kafka, tmp_path)
    yield w
    w.stop_all()


def produce(bootstrap: str, rs: list[Reading], received_later_ms: int = 0) -> int:
    """As ingest would: stamped with the time of receipt (the worker's live silence check
    reads it; `received_later_ms` moves it ahead), keyed by patient. Returns that time."""
    p = Producer(producer_config(bootstrap))
    now = int(time.time() * 1000) + received_later_ms
    for r in rs:
        p.produce("vitals.readings", encode(msgspec.structs.replace(r, received_at=now)),
                  r.patient_id.encode())
    assert p.flush(30) == 0
    return now


def episode() -> list[Reading]:
    """Fever rising through 38 and 39 C, then a racing heart and falling SpO2."""
    return readings(150, temp=lambda s: 37.0 + min(2.3, max(0.0, (s - 600) / 2000)),
                    spo2=lambda s: 97 - (8 if s > 6000 else 0),
                    hr=lambda s: 75 + (60 if s > 5400 else 0), temp_every_s=120)


def test_worker_killed_mid_episode_loses_no_alert_and_invents_none(workers: Workers) -> None:
    rs = episode()
    expected = Engine(load_rules(None), PATIENT).process(None, rs).alerts
    assert {a.rule for a in expected} >= {"fever", "high_fever", "crs_suspicion",
                                          "severe_desaturation"}
    half = len(rs) // 2
    first = workers.start()
    produce(workers.bootstrap, rs[:half])
    # wait until the worker has judged most of the first half, then crash it
    wait_for(lambda: len(read_topic(workers.bootstrap, "vitals.trends", 1, timeout=2,
                                    settle=0)) >= 60, timeout=60, what="trend points")
    first.kill()
    produce(workers.bootstrap, rs[half:])
    workers.start()
    keys = {(a.alert_id, a.status) for a in expected}
    got = read_topic(workers.bootstrap, "vitals.alerts", len(expected), timeout=60, settle=3)
    seen = {(v["alert_id"], v["status"]) for _, v in got}
    assert seen == keys  # nothing lost, nothing that the readings do not support
    # a repeat after the crash carries the same id and the same content
    by_key = {(a.alert_id, a.status): a for a in expected}
    for _, v in got:
        a = by_key[(v["alert_id"], v["status"])]
        assert (v["start"], v["detected_at"], v["summary"]) == (a.start, a.detected_at, a.summary)


def records_at(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None]]:
    """(partition, offset, key) of every record of `topic`, read until quiet."""
    c = Consumer(reader_config(bootstrap, "test"))
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out = []
        quiet = time.monotonic()
        while time.monotonic() - quiet < 3:
            for m in c.consume(1000, 0.2):
                if m.error() is None:
                    out.append((m.partition(), m.offset(), m.key()))
                    quiet = time.monotonic()
        return out
    finally:
        c.close()


def ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset, by reading it (tansu's high watermark is its last batch's
    first offset + 1, not the end)."""
    out: dict[int, int] = {}
    for partition, offset, _ in records_at(bootstrap, topic):
        out[partition] = max(out.get(partition, 0), offset + 1)
    return out


def commit_for_the_workers(bootstrap: str, at_end: bool) -> None:
    """Commit offsets for the workers' group, as Faust might have: each input partition at its
    end (past records no state has seen) or at 0 (behind what the states have seen). tansu
    takes commits from members only: this consumer joins the group (no worker is in it)."""
    topics = ["vitals.readings", "vitals.status"]
    offsets = [TopicPartition(topic, p, ends(bootstrap, topic).get(p, 0) if at_end else 0)
               for topic in topics for p in range(4)]
    c = Consumer({**reader_config(bootstrap, "test"), "group.id": APP_ID})
    try:
        c.subscribe(topics)
        wait_for(lambda: bool(c.poll(0.2) or c.assignment()), timeout=120,
                 what="the committing consumer to join the workers' group")
        c.commit(offsets=offsets, asynchronous=False)
        committed = c.committed(offsets, timeout=10)
        assert [tp.offset for tp in committed] == [tp.offset for tp in offsets]
    finally:
        c.close()


def test_a_worker_resumes_where_its_states_stand_whatever_kafka_committed(
        workers: Workers) -> None:
    """Faust's committed offsets do not describe the states: around a rebalance it acknowledges
    by itself the records it skips, so a commit can pass records no state has seen (the chaos
    run lost readings that way). The worker resumes at the position written with its states."""
    rs = episode()
    expected = Engine(load_rules(None), PATIENT).process(None, rs).alerts
    half = len(rs) // 2
    first = workers.start()
    produce(workers.bootstrap, rs[:half])
    wait_for(lambda: workers.counters()["vitals_rules_readings_judged_total"] >= half,
             timeout=120, what="the first half judged")
    first.stop()  # states and their positions written
    produce(workers.bootstrap, rs[half:])
    commit_for_the_workers(workers.bootstrap, at_end=True)  # past the second half
    workers.start()
    got = read_topic(workers.bootstrap, "vitals.alerts", len(expected), timeout=120, settle=3)
    assert {(v["alert_id"], v["status"]) for _, v in got} == {
        (a.alert_id, a.status) for a in expected}
    workers.stop_all()
    # and a commit behind the states: nothing is judged twice
    commit_for_the_workers(workers.bootstrap, at_end=False)
    workers.start()
    produce(workers.bootstrap, episode()[-1:])  # a repeat, after every record of the patient
    wait_for(lambda: workers.counters()["vitals_rules_readings_judged_total"] >= 1,
             timeout=120, what="the repeat judged")
    assert workers.counters()["vitals_rules_readings_judged_total"] == 1


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
    (stats,) = re.findall(r"rules: judged (\d+) readings.*?(\d+) checkpoints, (\d+) B of state "
                          r"per reading", text)
    assert int(stats[0]) == len(rs) and int(stats[1]) >= 1
    assert 0 < int(stats[2]) <= 64, stats  # one patient's state, ~1,200 readings (issue #15)


def test_healthz_and_progress_gauges_idle_and_after_judging(workers: Workers) -> None:
    workers.start()
    addr = workers.metrics[-1].removeprefix("http://").removesuffix("/metrics")
    assert healthz(addr) == (200, {"status": "ok"})  # idle: nothing waits
    idle = scrape(addr)
    assert idle["vitals_rules_pending"] == 0
    assert idle["vitals_rules_last_progress_seconds"] == 0  # nothing judged yet
    before = time.time()
    # a backlog of ~30,000 records: seconds of judging, so the lag is seen on its way down
    rs = readings(500, temp=lambda s: 37.2, spo2=lambda s: 96, hr=lambda s: 95)
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


def test_a_restarted_worker_recovers_every_state_of_a_checkpoint_written_in_one_batch(
        kafka: servers.Server, tmp_path: Path) -> None:
    """A checkpoint writes many patients' states to each changelog partition at once (one
    produce batch). Tansu reports a partition's end as its last batch's first offset + 1
    (ingest/recall.py), and Faust restores a table up to that end, so without the worker's end
    marker a restart missed all but the first state of each partition's last batch (13 of 24
    here). Seen from outside: readings the first worker judged, sent again, are duplicates to
    the second, which pages nothing again."""
    ids = [f"P{n:03d}" for n in range(1, 25)]
    w = Workers(kafka, tmp_path)
    w.env["VITALS_PATIENTS"] = str(write_patients(tmp_path / "many.yaml", ids))
    fever = readings(40, temp=lambda _s: 38.6, temp_every_s=60)
    rs = [msgspec.structs.replace(r, patient_id=pid) for pid in ids for r in fever]
    try:
        w.start()
        produce(w.bootstrap, rs)
        wait_for(lambda: w.counters()["vitals_rules_readings_judged_total"] >= len(rs), timeout=120,
                 what="the first worker to judge every reading")
        first = read_topic(w.bootstrap, "vitals.alerts", len(ids), timeout=60, settle=3)
        assert {v["patient_id"] for _, v in first if v["rule"] == "fever"} == set(ids)
        w.stop_all()  # a clean stop: the last checkpoint, many states per partition at once
        w.procs.clear()
        w.start()
        produce(w.bootstrap, rs)  # the same readings again: duplicates to a recovered state
        wait_for(lambda: w.counters()["vitals_rules_readings_judged_total"] >= len(rs), timeout=120,
                 what="the second worker to take every reading")
        again = read_topic(w.bootstrap, "vitals.alerts", len(first) + 1, timeout=10, settle=3)
        assert len(again) == len(first), sorted({v["patient_id"] for _, v in again[len(first):]})
    finally:
        w.stop_all()
