"""`vitals alerting` as its own process, on real tansu: Kafka in, PagerDuty out, and a crash in
the middle of an escalation that neither loses a step nor pages twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer

from harness import servers, services
from harness.command import vitals
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings
from tests.support import wait_for
from vitals.kafka import producer_config
from vitals.records import AlertEvent, TrendPoint
from vitals.settings import Settings

ALICE = "token-alice-0123456789"


def env_of(settings: Settings, kafka: servers.Server) -> dict[str, str]:
    return services.environment(settings, {"kafka_url": f"kafka://127.0.0.1:{kafka.port}",
                                           "kafka_partitions": 4})


def start(env: dict[str, str], log: Path) -> services.ServiceProcess:
    return services.start("alerting", env=env, log=log, cwd=log.parent)


def audit(env: dict[str, str]) -> list[dict[str, object]]:
    req = urllib.request.Request(f"http://{env['VITALS_ALERTING_ADDR']}/audit",
                                 headers={"Authorization": "Bearer " + ALICE})
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.load(r)["audit"]


def produce(port: int, *records: AlertEvent | TrendPoint, topic: str = "vitals.alerts"
            ) -> None:
    p = Producer(producer_config(f"127.0.0.1:{port}"))
    for rec in records:
        p.produce(topic, msgspec.json.encode(rec), rec.patient_id.encode())
    assert p.flush(10) == 0


@pytest.mark.slow
def test_restart_mid_escalation_loses_no_step_and_pages_nobody_twice(
        tmp_path: Path, receiver: PagerDutyStandIn, kafka: servers.Server) -> None:
    # Step 2 falls due 12 s after the incident opens, so that the crash falls between step 1
    # and step 2 even on a loaded machine (the waits before the kill take a few seconds), and
    # the test checks that it did: otherwise it would prove less than it says.
    step2_s = 12
    settings = make_settings(tmp_path, receiver, step2=step2_s / 60, step3=600)
    env, log = env_of(settings, kafka), tmp_path / "alerting.log"
    proc = start(env, log)
    try:
        produce(kafka.port, event())
        receiver.wait(1, timeout=120)  # step 1: the nurse (consumer-group join included)
        paged_at = time.monotonic()
        assert [b["routing_key"] for b in receiver.pd("trigger")] == ["key-alice"]
        # Crash once the page is marked sent. A crash between PagerDuty's answer and that mark
        # sends it again after the restart, by design (same dedup_key): README, Durability.
        wait_for(lambda: any(r["event"] == "notified" for r in audit(env)), 5, "marked sent")
        proc.kill()  # a crash, mid-escalation
        assert len(receiver.pd("trigger")) == 1, "step 2 came before the crash: not mid-escalation"
        time.sleep(max(0.0, paged_at + step2_s + 0.5 - time.monotonic()))  # due while down
        produce(kafka.port, event())  # and the rules send the same alert again meanwhile
        proc = start(env, log)
        receiver.wait(2, timeout=120)  # step 2, sent by the restarted process
        # the repeated event is read once the group has replaced the crashed member
        wait_for(lambda: "duplicate" in log.read_text(), 120, "the repeated event")
        time.sleep(1)  # anything doubled would arrive now
        triggers = receiver.pd("trigger")
        assert [b["routing_key"] for b in triggers] == ["key-alice", "key-registrar"]
        assert [r.path for r in receiver.requests].count("/registrar") == 1
        assert triggers[1]["payload"]["custom_details"]["escalation_step"] == 1
        assert len({b["dedup_key"] for b in triggers}) == 1
        # trend points from vitals.trends reach the nurse page's charts
        produce(kafka.port, *(TrendPoint("P001", 1_795_000_000_000 + i * 60_000, temp=38.0,
                                         hr=110.0, spo2=95.0) for i in range(3)),
                topic="vitals.trends")

        def charted() -> bool:
            req = urllib.request.Request(f"http://{env['VITALS_ALERTING_ADDR']}/page/alerts",
                                         headers={"Authorization": "Bearer " + ALICE})
            with urllib.request.urlopen(req, timeout=2) as r:
                return "data-points='3'" in r.read().decode()

        wait_for(charted, 10, "trend points on the page")
        assert proc.stop() == 0, proc.tail(30)
    finally:
        proc.kill()


def test_intents_written_but_not_sent_are_sent_once_after_a_restart(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    settings = make_settings(tmp_path, receiver)

    async def before_crash() -> None:
        core, _ = build(settings, Clock())
        core.handle(event())  # recorded with its intent; the process dies before sending
        core.store.close()

    async def after_restart() -> None:
        core, d = build(settings, Clock())
        await d.drain()
        await d.drain()
        assert core.handle(event()) == "duplicate"
        await d.drain()
        await d.close()

    asyncio.run(before_crash())
    assert receiver.pd() == []
    asyncio.run(after_restart())
    assert len(receiver.pd("trigger")) == 1


def test_a_bad_oncall_file_stops_the_command_in_one_line(tmp_path: Path) -> None:
    oncall = tmp_path / "oncall.yaml"
    oncall.write_text("targets:\n  a: {pagerduty: k}\nteams:\n  haem-a:\n    escalation:\n"
                      "      - {after_min: 0, notify: [b]}\n")
    r = subprocess.run(vitals("alerting"), env=services.environment({"oncall": oncall}),
                       capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(oncall) in lines[0] and "teams.haem-a.escalation[0].notify" in lines[0]
