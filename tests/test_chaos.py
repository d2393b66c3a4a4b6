"""Chaos, the short form (the full one is `python -m bench.chaos`): a seeded cohort with known
truth (4 patients, 2 simulated days) is published through the whole pipeline on real servers
for about 70 s while every fault kind is injected once at seeded times: SIGKILL and restart of
ingest, of both rules workers, of the store and of alerting; Mosquitto restarted with
persistence on; the Kafka connection cut; PagerDuty answering 500, and 429 with Retry-After;
VictoriaMetrics down. Outages last 5-8 s here (a minute in the benchmark).

Then, read from the real systems, not assumed: every accepted reading is on Kafka and in
storage exactly once (by device and seq); the alert events equal the pure engine's on the same
traffic; every page the truth calls for reached PagerDuty; none twice. The engine is
`harness/chaos.py`; the table it prints is in the captured output (`pytest -s` shows it live).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.chaos import Chaos
from harness.chaos_plan import KILL, OUTAGES, Spec
from harness.chaos_report import Result

pytestmark = pytest.mark.slow

SHORT = Spec(patients=4, days=2.0, seed=1, publish_s=70.0, kills=1, outages=1,
             outage_s=(5.0, 8.0), drain_timeout_s=300.0, stall_s=60.0)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Result:
    work: Path = tmp_path_factory.mktemp("chaos")
    started = time.monotonic()
    result = Chaos(SHORT, work, say=lambda line: print(line, flush=True)).run()
    print(f"\n{result.table()}\n\n{result.details()}\n(test fixture: "
          f"{time.monotonic() - started:.0f} s; logs in {work})")
    return result


def report(result: Result) -> str:
    """The table and the details, for a failing assertion's message."""
    return f"\n{result.table()}\n\n{result.details()}"


def test_every_fault_kind_was_injected(chaos: Result) -> None:
    counts = chaos.fault_counts()
    services = ["ingest", "rules-1", "rules-2", "store", "alerting"]
    want = {f"{KILL} {s}": SHORT.kills for s in services} | {k: SHORT.outages for k in OUTAGES}
    assert counts == want, report(chaos)
    assert chaos.published == chaos.traffic_messages, report(chaos)
    # the faults that hold a stage up fell while the devices were publishing (the PagerDuty
    # windows aim at pages instead, which may come later)
    held = [f for f in chaos.faults if not f.label.startswith("pagerduty")]
    assert sum(f.during_traffic for f in held) >= len(held) - 2, report(chaos)


def test_every_accepted_reading_is_on_kafka(chaos: Result) -> None:
    assert not chaos.readings.lost_on_kafka, report(chaos)


def test_every_accepted_reading_is_stored(chaos: Result) -> None:
    assert not chaos.readings.lost_in_storage, report(chaos)


def test_no_reading_received_twice_is_forwarded_twice(chaos: Result) -> None:
    """After an ingest SIGKILL the broker delivers again what was on Kafka but not yet
    acknowledged; the restarted ingest recognises it (ingest/recall.py)."""
    assert not chaos.readings.received_twice(), report(chaos)


def test_no_reading_is_written_twice_by_a_kafka_producer_retry(chaos: Result) -> None:
    """When the Kafka connection is cut while a send is in flight, librdkafka sends the batch
    again; the producer is idempotent (vitals/kafka.py), so tansu writes it once."""
    assert not chaos.readings.written_twice(), report(chaos)


def test_nothing_but_accepted_readings_reaches_kafka_or_storage(chaos: Result) -> None:
    assert not chaos.readings.not_accepted_on_kafka, report(chaos)
    assert not chaos.readings.not_accepted_in_storage, report(chaos)


def test_alert_events_equal_the_pure_engines_on_the_same_traffic(chaos: Result) -> None:
    """By (alert_id, status). Their evidence may differ (listed in the details): the worker
    reads vitals.readings and vitals.status as they interleave on arrival, the engine in
    publish order, so a device's battery in an alert's evidence can be a newer one."""
    assert (chaos.alerts.missing, chaos.alerts.extra) == ([], []), report(chaos)


def test_every_alert_event_is_stored_once(chaos: Result) -> None:
    assert (chaos.alerts.stored_missing, chaos.alerts.stored_extra) == ([], []), report(chaos)


def test_every_page_the_truth_calls_for_reached_pagerduty(chaos: Result) -> None:
    assert chaos.pages.triggers_expected > 0, "the cohort calls for no page: it tests nothing"
    assert chaos.pages.missed == [], report(chaos)


def test_no_page_was_sent_twice_or_for_no_alert(chaos: Result) -> None:
    assert chaos.pages.doubled == [], report(chaos)
    assert chaos.pages.unexpected == [], report(chaos)


def test_no_service_exited_on_its_own_and_the_pipeline_caught_up(chaos: Result) -> None:
    assert chaos.unplanned == [], report(chaos)
    assert chaos.caught_up, report(chaos)
