"""`vitals store`'s /metrics and /healthz against a real tansu and a real VictoriaMetrics: idle
is healthy, and a server outage with records waiting is "stalled" after VITALS_STALL_S, until
the server is back (the store buffers nothing more meanwhile and loses nothing)."""

from __future__ import annotations

import time

from harness import servers
from tests.storage.support import produce, start_store, wait_for_points
from tests.support import healthz, scrape, stalled_gauges, wait_for
from vitals import topics
from vitals.records import Reading, encode
from vitals.settings import Settings


def readings(n: int, t0: int) -> list[tuple[str, str, bytes]]:
    out = []
    for i in range(n):
        r = Reading("P001", "ox-1", t0 + i * 1000, "oximetry", t0 + i * 1000 + 50, seq=i,
                    spo2=95.0, hr=80.0)
        out.append((topics.READINGS.name, r.patient_id, encode(r)))
    return out


def test_idle_is_healthy_and_the_gauges_say_when_points_were_last_written(
        store_settings: Settings, vm: servers.Server) -> None:
    addr = store_settings.store_metrics_addr
    store = start_store(store_settings)
    try:
        assert healthz(addr) == (200, {"status": "ok"})
        idle = scrape(addr)
        assert idle["vitals_store_pending"] == 0
        assert idle["vitals_store_last_progress_seconds"] == 0  # nothing written yet
        before = time.time()
        produce(store_settings.kafka_bootstrap, readings(50, int(before * 1000) - 600_000))
        wait_for_points(vm, "readings_hr", 50)
        wait_for(lambda: scrape(addr)["vitals_store_last_progress_seconds"] >= before,
                 timeout=30, what="progress")
        after = scrape(addr)
        assert after["vitals_store_pending"] == 0
        assert "vitals_store_oldest_pending_event_seconds" not in after  # nothing waits
        assert healthz(addr)[0] == 200
    finally:
        store.stop()


def test_an_outage_with_records_waiting_is_stalled_until_the_server_is_back(
        store_settings: Settings, vm: servers.Server) -> None:
    settings = store_settings.model_copy(update={"stall_s": 2.0})
    addr = settings.store_metrics_addr
    t0 = int(time.time() * 1000) - 600_000
    store = start_store(settings)
    restarted: servers.Server | None = None
    try:
        vm.stop()
        produced = time.time()
        produce(settings.kafka_bootstrap, readings(30, t0))
        # the oldest waiting is the Kafka timestamp of the oldest record in hand: when it was
        # produced
        stalled_gauges(addr, "store", "30 records not yet written, no progress for", 30,
                       produced)
        restarted = servers.victoria_metrics(vm.workdir, vm.port)
        wait_for_points(restarted, "readings_hr", 30, timeout=60)
        wait_for(lambda: healthz(addr)[0] == 200, timeout=60, what="healthy again")
        assert scrape(addr)["vitals_store_pending"] == 0
    finally:
        store.stop()
        if restarted is not None:
            restarted.stop()
