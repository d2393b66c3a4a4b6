"""The time-series server stopped in the middle of a stream and started again: a real
VictoriaMetrics process is stopped, and a new one started on the same port and storage
directory, while the store keeps reading a real tansu."""

from __future__ import annotations

import logging
import time

import pytest

from harness import servers
from tests.storage.support import committed, produce, start_store, wait_for_points
from tests.support import wait_for
from vitals import topics
from vitals.records import Reading, encode
from vitals.settings import Settings

PARTITIONS = 4


def readings(start: int, n: int, t0: int) -> list[tuple[str, str, bytes]]:
    out = []
    for i in range(start, start + n):
        r = Reading(f"P00{i % 3 + 1}", "ox-1", t0 + i * 1000, "oximetry", t0 + i * 1000 + 50,
                    seq=i, spo2=95.0, hr=float(80 + i % 20))
        out.append((topics.READINGS.name, r.patient_id, encode(r)))
    return out


def test_a_server_outage_loses_nothing_writes_nothing_twice_and_is_logged_once(
        store_settings: Settings, vm: servers.Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "storage.writer")
    t0 = int(time.time() * 1000) - 7_200_000
    store = start_store(store_settings)
    produce(store_settings.kafka_bootstrap, readings(0, 300, t0))
    wait_for_points(vm, "readings_hr", 300)

    vm.stop()
    produce(store_settings.kafka_bootstrap, readings(300, 300, t0))
    wait_for(lambda: "is unavailable" in caplog.text, what="the store noticing the outage")
    time.sleep(2.5)  # several retries (backoff 0.2 s doubling to 1 s) while it is down
    assert committed(store_settings.kafka_bootstrap, topics.READINGS.name, PARTITIONS) == 300

    restarted = servers.victoria_metrics(vm.workdir, vm.port)
    try:
        pts = wait_for_points(restarted, "readings_hr", 600)
        counts = store.stop()
    finally:
        restarted.stop()

    expected = {(f"P00{i % 3 + 1}", t0 + i * 1000) for i in range(600)}
    got = [(s.labels["patient"], ts) for (name, _), s in pts.series.items()
           if name == "readings_hr" for ts, _ in s.samples]
    assert len(got) == 600 and set(got) == expected  # every point, none twice (raw samples)
    assert counts.written == 600
    assert committed(store_settings.kafka_bootstrap, topics.READINGS.name, PARTITIONS) == 600
    # only the writer's own lines: under xdist a worker's earlier test may leave asyncio noise
    said = [r.getMessage() for r in caplog.records
            if r.name == "storage.writer" and r.levelno >= logging.WARNING]
    assert len(said) == 2, said
    assert said[0].startswith(f"InfluxDB at http://127.0.0.1:{vm.port} (bucket vitals) is "
                              "unavailable (connection refused); waiting for it")
    assert "is back after" in said[1] and "catching up" in said[1]
