"""The canary end to end (issue 18), every part its own process on real servers: `vitals canary`
publishes over a real Mosquitto, `vitals ingest` carries it to a real Kafka-protocol broker
(tansu, reached through a relay that can cut the connection), `vitals rules` judges it and
`vitals alerting` times each round trip, pages a local PagerDuty stand-in and pings a local
dead-man's-switch stand-in (a real HTTP server).

Each test stops one stage in a way that leaves it alive (SIGSTOP: a process that is there and
does nothing; or the Kafka connection cut) and checks what the issue asks: the operators are
paged (never a nurse), the nurse page shows the banner, the dead-man's pings stop; then it lets
the stage go on and checks that the page resolves, the banner goes and the pings resume.

Round trips are late after 15 s here (a canary every second), so that a test takes a minute,
not ten; every wait is a poll with a generous bound, never a deadline a busy machine misses."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
import yaml
from confluent_kafka import Producer

from harness import servers
from harness.pagerduty import PagerDutyStandIn
from harness.relay import TcpRelay
from harness.stack import Stack
from tests.e2e_support import api, nurse_token, write_oncall
from vitals import topics
from vitals.kafka import producer_config
from vitals.records import AlertEvent

pytestmark = pytest.mark.slow

LATE_S = 15
OPS_KEY = "60718293a4b5c6d7e8f90a1b2c3d4e5f"  # the embedded on-call file's ops-engineer
WAIT_S = 240  # the longest any one condition is waited for: a loaded machine is slow


def until(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll `check` until it returns something true; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.25)


@dataclass
class DeadManStandIn:
    """A dead-man's-switch stand-in: a real HTTP server that records when each GET came."""

    pings: list[float] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> DeadManStandIn:
        pings = self.pings

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pings.append(time.time())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((servers.LOOPBACK, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{servers.LOOPBACK}:{self.server.server_port}/ping"

    def between(self, start: float, end: float) -> int:
        return sum(start <= at < end for at in self.pings)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass(frozen=True)
class Episode:
    """One stall as the operators saw it: the page's summary, each stage's last-seen time
    (epoch ms) when it was paged, and the incident's dedup_key."""

    summary: str
    seen: dict[str, int]
    dedup_key: str


@dataclass
class Pipeline:
    stack: Stack
    pagerduty: PagerDutyStandIn
    deadman: DeadManStandIn
    relay: TcpRelay
    token: str

    def pipeline(self) -> dict[str, Any]:
        status, body = api(self.stack, "GET", "/pipeline", self.token)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    def banner(self) -> str | None:
        import urllib.request

        request = urllib.request.Request(f"{self.stack.alerting_url}/page/alerts",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            html = response.read().decode()
        return html if "id='banner'" in html else None

    def ops(self, action: str) -> list[dict[str, Any]]:
        return self.pagerduty.pd(action, OPS_KEY)

    def nurse_events(self) -> list[dict[str, Any]]:
        return [body for body in self.pagerduty.pd() if body["routing_key"] != OPS_KEY]

    def wait_on_time(self) -> None:
        """Round trips are flowing, nothing is open, the dead-man's switch is being pinged."""
        until("round trips on time", lambda: not self.pipeline()["late"]
              and self.pipeline()["round_trips"] > 0 and not self.pipeline()["operators_paged"])
        pings = len(self.deadman.pings)
        until("a dead-man's ping", lambda: len(self.deadman.pings) > pings)

    def stall_and_resume(self, stall: Callable[[], None], resume: Callable[[], None]
                         ) -> Episode:
        """The issue's cycle around one stuck stage; what the operators were told, for the
        test to check against the stage it stopped."""
        self.wait_on_time()
        triggers = len(self.ops("trigger"))
        resolves = len(self.ops("resolve"))
        stall()
        try:
            until("the operators' page", lambda: len(self.ops("trigger")) > triggers)
            paged_at = time.time()
            trigger = self.ops("trigger")[-1]
            payload = trigger["payload"]
            assert payload["source"] == "vitals" and payload["class"] == "pipeline"
            assert payload["severity"] == "critical"
            summary = payload["summary"]
            assert "no canary round trip since" in summary and "last seen: ingest" in summary
            watch = self.pipeline()
            assert watch["late"] and watch["operators_paged"] == trigger["dedup_key"]
            banner = until("the nurse page's banner", self.banner, timeout=30)
            assert "Monitoring delayed since" in banner
            assert "check patients by phone" in banner
            time.sleep(4)  # four rounds of the dead-man's switch, none taken while late (a
            # ping already on its way when the watch turned late may land just after)
            assert self.deadman.between(paged_at + 2, time.time()) == 0
        finally:
            resume()
        until("the page to resolve", lambda: len(self.ops("resolve")) > resolves)
        assert self.ops("resolve")[-1]["dedup_key"] == trigger["dedup_key"]
        until("the banner to go", lambda: self.banner() is None, timeout=30)
        resumed = time.time()
        until("the dead-man's pings to resume",
              lambda: self.deadman.between(resumed, time.time() + 1) > 0)
        assert self.nurse_events() == []  # a canary never reaches a nurse's target
        return Episode(summary, watch["last_seen"], trigger["dedup_key"])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("canary-e2e")
    oncall = write_oncall(workdir / "oncall.yaml")
    assert yaml.safe_load(oncall.read_text())["operators"] == "ops"
    with PagerDutyStandIn(strict=False) as pagerduty:
        deadman = DeadManStandIn().start()
        stack = Stack(workdir, oncall=oncall, pagerduty_url=pagerduty.url, partitions=2,
                      kafka_relay=True)
        try:
            stack.start_brokers()
            relay = stack.relay
            assert relay is not None
            stack.extra_env.update({
                "canary_every_s": "1", "canary_late_s": str(LATE_S),
                "deadman_url": deadman.url, "deadman_every_s": "1"})
            for service in ("ingest", "rules", "alerting", "canary"):
                stack.start(service, timeout=120)
            yield Pipeline(stack, pagerduty, deadman, relay, nurse_token(oncall))
        finally:
            stack.close()
            deadman.stop()


def test_a_stuck_rules_worker_pages_the_operators_and_a_forged_canary_no_nurse(
        pipeline: Pipeline) -> None:
    # an alert event in the canary's name, as if a fever: recorded as a round trip, never paged
    forged = AlertEvent(alert_id="forged-1", status="firing", rule="fever", severity="critical",
                        patient_id="CANARY", start=int(time.time() * 1000),
                        detected_at=int(time.time() * 1000), summary="CANARY: fever 40 °C")
    producer = Producer(producer_config(pipeline.stack.bootstrap))
    producer.produce(topics.ALERTS.name, msgspec.json.encode(forged), b"CANARY")
    assert producer.flush(30) == 0

    rules = pipeline.stack.services["rules"]
    episode = pipeline.stall_and_resume(lambda: os.kill(rules.pid, signal.SIGSTOP),
                                        lambda: os.kill(rules.pid, signal.SIGCONT))
    # the rules stopped passing canaries; ingest went on (its copies on vitals.canary)
    seen = episode.seen
    assert seen["rules"] < seen["ingest"] and seen["rules"] < seen["alerting"], seen
    status, body = api(pipeline.stack, "GET", "/alerts", pipeline.token)
    assert status == 200 and all(a["patient_id"] != "CANARY" for a in body["alerts"]), body


def test_a_stuck_ingest_pages_the_operators(pipeline: Pipeline) -> None:
    ingest = pipeline.stack.services["ingest"]
    episode = pipeline.stall_and_resume(lambda: os.kill(ingest.pid, signal.SIGSTOP),
                                        lambda: os.kill(ingest.pid, signal.SIGCONT))
    # ingest stopped passing canaries, so nothing after it had any to pass either
    seen = episode.seen
    assert seen["ingest"] < seen["alerting"] and seen["rules"] <= seen["alerting"], seen
    assert seen["ingest"] <= seen["rules"] + 1000, seen  # the last one it passed was judged
    assert episode.dedup_key.startswith("pipeline-")


def test_the_kafka_connection_cut_pages_the_operators(pipeline: Pipeline) -> None:
    episode = pipeline.stall_and_resume(pipeline.relay.block, pipeline.relay.unblock)
    # with Kafka cut every stage stops at once: the page still says when each was last seen
    assert set(episode.seen) == {"ingest", "rules", "alerting"}, episode.seen
    assert "last seen: ingest" in episode.summary and "rules" in episode.summary
    # alerting's own metrics say what the page said, for a dashboard
    import urllib.request

    with urllib.request.urlopen(f"{pipeline.stack.alerting_url}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert "vitals_canary_round_trips_total" in metrics
    assert 'vitals_canary_stage_last_seen_seconds{stage="rules"}' in metrics
    assert json.dumps(pipeline.pipeline()["late"]) == "false"
