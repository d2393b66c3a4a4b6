"""Hostile records on every topic the store reads (real tansu, real VictoriaMetrics): each one
is dead-lettered with a bounded payload, its offset committed, and the store goes on to write
the valid records behind them."""

from __future__ import annotations

import json
import time

import pytest

from harness import servers
from tests.hostile import variants
from tests.storage.support import committed, produce, start_store, wait_for_points
from tests.support import read_topic
from vitals import topics
from vitals.settings import Settings

pytestmark = pytest.mark.slow

T = 1_795_000_000_000
VALID = {
    topics.READINGS.name: {"patient_id": "P001", "device_id": "ox-1", "ts": T,
                           "kind": "oximetry", "received_at": T + 1000, "seq": 1, "spo2": 97.0,
                           "hr": 72.0, "flags": ["motion"]},
    topics.TRENDS.name: {"patient_id": "P001", "ts": T, "temp": 37.1, "hr": 80.0, "news2": 1,
                         "news2_parameters": ["hr"]},
    topics.ALERTS.name: {"alert_id": "P001/fever/1", "status": "firing", "rule": "fever",
                         "severity": "error", "patient_id": "P001", "start": T,
                         "detected_at": T + 60_000, "summary": "P001: fever",
                         "evidence": {"value": 38.4, "scores": {"temp": 1}}},
}


def test_every_hostile_record_is_dead_lettered_and_the_store_goes_on(
        store_settings: Settings, vm: servers.Server) -> None:
    bootstrap = store_settings.kafka_bootstrap
    hostile = [(topic, label, body) for topic, valid in VALID.items()
               for label, body in variants(valid)]
    # behind them, one valid record of each topic, a minute later each
    valid = [(topic, json.dumps({**record, "ts": T + 60_000} if "ts" in record
                                else {**record, "detected_at": T + 120_000}).encode())
             for topic, record in VALID.items()]
    produce(bootstrap, [(topic, "P001", body) for topic, _, body in hostile]
            + [(topic, "P001", body) for topic, body in valid])
    store = start_store(store_settings)
    try:
        wait_for_points(vm, "readings_spo2", 1)
        wait_for_points(vm, "trends_temp", 1)
        wait_for_points(vm, "alerts_start", 1)
        total = len(hostile) + len(valid)
        deadline = time.monotonic() + 60
        while sum(committed(bootstrap, t, 4) for t in VALID) < total:
            assert time.monotonic() < deadline, "the store did not commit past every record"
            time.sleep(0.2)
        assert store.thread.is_alive()
    finally:
        counts = store.stop()
    assert counts.records == total
    assert counts.written + counts.bad + counts.refused + counts.empty == total
    assert counts.written >= len(valid)
    dead = read_topic(bootstrap, topics.REJECTED.name, expect=counts.bad + counts.refused)
    assert len(dead) == counts.bad + counts.refused
    big = [(record["reason"], record["detail"][:300], len(json.dumps(record))) for _, record in dead
           if len(json.dumps(record)) >= 16 * 1024]
    assert big == []
    assert {record["reason"] for _, record in dead} <= {"store_bad_record", "store_refused"}
    # every variant that is not a valid record of its topic was refused, not written
    accepted = total - counts.bad - counts.refused - counts.empty
    assert accepted == counts.written
