"""A rules worker killed or stopped and started again, on a real Kafka-protocol broker
(tansu): it loses no alert and invents none, recovers every state written, and resumes where
its states stand whatever Kafka's committed offsets say."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition

from harness import servers
from stream_rules.config import load_rules
from stream_rules.engine import Engine
from stream_rules.faust_app import APP_ID
from tests.stream_rules.test_engine import PATIENT, readings
from tests.stream_rules.workers import Workers, episode, produce, records_at
from tests.support import read_topic, wait_for, write_patients
from vitals.kafka import consumer_config

pytestmark = pytest.mark.slow


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
    end = {topic: ends(bootstrap, topic) if at_end else {} for topic in topics}
    offsets = [TopicPartition(topic, p, end[topic].get(p, 0)) for topic in topics for p in range(4)]
    c = Consumer(consumer_config(bootstrap, APP_ID))  # its short session: a quick join
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
