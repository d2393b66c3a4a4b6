"""Alerting's own health: `/healthz` for the orchestrator and `/metrics` for Prometheus.

`/healthz` answers 503 (with the reason) when the Kafka consumer has not polled (on the
leader), or the clock that escalates has not ticked, for `VITALS_STALL_S`: alerting alive but
stuck would page no one, so it must be restarted. It says the instance's role, leader or
standby (`alerting.leader`). Round trips that are late say nothing about alerting itself
(the stage at fault is before it): they page the operators instead (`alerting.operators`).

`/metrics` holds no patient data: the canary's round trips, each stage's last-seen time, the
operators' page, the dead-man's switch and alerting's own progress."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from alerting.deadman import DeadMan

if TYPE_CHECKING:
    from alerting.core import Alerting


def stalled(core: Alerting, stall_ms: int) -> str | None:
    """Why alerting is stuck, or None. A standby consumes nothing: only its clock counts."""
    now = core.now()
    watched = [("the escalation clock has not ticked", core.ticked_at)]
    if core.leading():
        watched.insert(0, ("the Kafka consumer has not polled", core.polled_at))
    for what, at in watched:
        if now - at > stall_ms:
            return f"{what} for {(now - at) / 1000:.0f} s"
    return None


class AlertingCollector(Collector):
    """Reads the core, its watch and the dead-man's switch at each scrape."""

    def __init__(self, core: Alerting, deadman: DeadMan | None) -> None:
        self.core = core
        self.deadman = deadman

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        core, watch = self.core, self.core.watch
        now, state = core.now(), watch.state

        def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, value=value)

        yield gauge("vitals_alerting_leader",
                    "1 while this instance leads (consumes, escalates and sends)",
                    1.0 if core.leading() else 0.0)
        yield gauge("vitals_alerting_last_progress_seconds",
                    "Wall-clock time alerting last read a batch from Kafka (Unix seconds)",
                    core.kafka_read_at / 1000)
        yield CounterMetricFamily("vitals_canary_round_trips",
                                  "Canary round trips completed (publish -> alerting)",
                                  value=state.round_trips)
        yield gauge("vitals_canary_last_round_trip_published_seconds",
                    "Publish time of the newest canary whose round trip completed",
                    (state.last_published or 0) / 1000)
        yield gauge("vitals_canary_round_trip_seconds",
                    "That round trip's time, publish -> received by alerting",
                    (state.last_latency_ms or 0) / 1000)
        yield gauge("vitals_canary_late", "1 while no round trip is within the late limit",
                    1.0 if watch.late(now) else 0.0)
        yield gauge("vitals_canary_operators_paged", "1 while the operators' page is open",
                    1.0 if state.page else 0.0)
        seen = GaugeMetricFamily("vitals_canary_stage_last_seen_seconds",
                                 "When each stage last passed a canary (Unix seconds)",
                                 labels=["stage"])
        for stage, at in sorted(state.seen.items()):
            seen.add_metric([stage], at / 1000)
        yield seen
        if self.deadman is not None:
            yield CounterMetricFamily("vitals_deadman_pings", "Dead-man's switch pings taken",
                                      value=self.deadman.pings)
            yield gauge("vitals_deadman_last_ping_seconds",
                        "Wall-clock time of the last ping taken (Unix seconds)",
                        self.deadman.last_ping)


def routes(core: Alerting, stall_s: float, deadman: DeadMan | None) -> list[web.RouteDef]:
    """GET /healthz and GET /metrics, both public (no patient data)."""
    registry = CollectorRegistry()
    registry.register(AlertingCollector(core, deadman))
    stall_ms = int(stall_s * 1000)

    async def healthz(_request: web.Request) -> web.Response:
        reason = stalled(core, stall_ms)
        role = "leader" if core.leading() else "standby"
        if reason:
            return web.json_response({"ok": False, "reason": reason, "role": role},
                                     status=503)
        return web.json_response({"ok": True, "role": role})

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/healthz", healthz), web.get("/metrics", metrics)]
