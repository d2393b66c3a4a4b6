"""Two `vitals alerting` instances sharing one real PostgreSQL: one leads (consumes, escalates,
sends), both answer the API; when the leader is killed mid-escalation the other takes over,
and no page is lost or sent twice across the takeover."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from harness import servers, services
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import event, make_settings
from tests.alerting.test_service import ALICE, produce
from tests.support import wait_for

LEASE_S = 4.0  # takeover within 1.25 leases of the kill: ~5 s


def instance_env(tmp_path: Path, name: str, receiver: PagerDutyStandIn, kafka: servers.Server,
                 db_url: str, step2_min: float) -> dict[str, str]:
    (tmp_path / name).mkdir()
    settings = make_settings(tmp_path / name, receiver, step2=step2_min, step3=600,
                             alerting_db_url=db_url, alerting_lease_s=LEASE_S)
    return services.environment(settings, {"kafka_url": f"kafka://127.0.0.1:{kafka.port}",
                                           "kafka_partitions": 4})


def start(env: dict[str, str], log: Path) -> services.ServiceProcess:
    return services.start("alerting", env=env, log=log, cwd=log.parent)


def get(env: dict[str, str], path: str) -> dict:
    req = urllib.request.Request(f"http://{env['VITALS_ALERTING_ADDR']}{path}",
                                 headers={"Authorization": "Bearer " + ALICE})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def post(env: dict[str, str], path: str) -> int:
    req = urllib.request.Request(f"http://{env['VITALS_ALERTING_ADDR']}{path}", data=b"",
                                 method="POST", headers={"Authorization": "Bearer " + ALICE})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


def role(env: dict[str, str]) -> str:
    return str(get(env, "/healthz")["role"])


@pytest.mark.slow
def test_the_standby_takes_over_a_killed_leader_and_no_page_is_lost_or_doubled(
        tmp_path: Path, receiver: PagerDutyStandIn, kafka: servers.Server,
        postgres_url: str) -> None:
    # Step 2 falls due 30 s after the incident opens: after the kill, during or after the
    # takeover, whichever a loaded machine makes it; the test checks the kill came first.
    step2_s = 30
    one = instance_env(tmp_path, "one", receiver, kafka, postgres_url, step2_s / 60)
    two = instance_env(tmp_path, "two", receiver, kafka, postgres_url, step2_s / 60)
    first = start(one, tmp_path / "one" / "alerting.log")
    second = None
    try:
        wait_for(lambda: role(one) == "leader", 120, "the first instance to lead")
        second = start(two, tmp_path / "two" / "alerting.log")
        assert role(two) == "standby"  # the lease is the first's

        produce(kafka.port, event())
        receiver.wait(1, timeout=120)  # step 1, the nurse (consumer-group join included)
        opened_at = time.monotonic()
        # the standby answers from the same database
        alerts = get(two, "/alerts")["alerts"]
        assert [a["alert_id"] for a in alerts] == [event().alert_id]
        wait_for(lambda: any(r["event"] == "notified" for r in get(two, "/audit")["audit"]),
                 10, "step 1 marked sent")

        first.kill()  # a crash, mid-escalation
        killed_at = time.monotonic()
        assert killed_at - opened_at < step2_s, "step 2 was due before the kill"
        assert len(receiver.pd("trigger")) == 1
        wait_for(lambda: role(two) == "leader", 60, "the standby to take over")
        took_over_s = time.monotonic() - killed_at
        print(f"takeover {took_over_s:.1f} s after the kill (lease {LEASE_S} s)")
        assert "leading (term 2" in second.output()

        receiver.wait(2, timeout=step2_s + 60)  # step 2, sent by the new leader
        triggers = receiver.pd("trigger")
        assert [b["routing_key"] for b in triggers] == ["key-alice", "key-registrar"]
        assert triggers[1]["payload"]["custom_details"]["escalation_step"] == 1
        assert len({b["dedup_key"] for b in triggers}) == 1

        # the killed instance comes back as the standby, and an ack through its API is sent
        # by the leader
        first = start(one, tmp_path / "one" / "alerting.log")
        assert role(one) == "standby"
        assert post(one, f"/alerts/{event().alert_id}/ack") == 200
        receiver.wait(4, timeout=120)  # acknowledge to both paged receivers
        # A clean stop gives the lease up: the standby leads at its next try, and sends
        # the resolve the rules emit meanwhile.
        assert second.stop() == 0, second.tail(20)
        wait_for(lambda: role(one) == "leader", 120, "the restarted instance to lead")
        produce(kafka.port, event(status="resolved"))
        receiver.wait(6, timeout=120)
        time.sleep(1)  # anything doubled would arrive now
        sent = Counter((b["dedup_key"], b["event_action"], b["routing_key"])
                       for b in receiver.pd())
        assert sorted(action for _, action, _ in sent) == [
            "acknowledge", "acknowledge", "resolve", "resolve", "trigger", "trigger"]
        assert set(sent.values()) == {1}, f"sent twice: {sent}"
        assert first.stop() == 0, first.tail(20)
    finally:
        first.kill()
        if second is not None:
            second.kill()
