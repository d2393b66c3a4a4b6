"""The chaos run: a seeded cohort with known truth is published through the whole pipeline while
faults are injected at seeded random times; at the end, what the real systems hold is checked
against the truth (`harness.chaos_checks`) and reported in one table (`harness.chaos_report`).
`tests/test_chaos.py` runs a short form, `bench/chaos.py` the full one.

Faults (`plan`): SIGKILL and restart of ingest, of each rules worker, of the store and of
alerting; a Mosquitto restart (persistence on, as deployed: stopped cleanly, started on the
same port and data); the Kafka connection cut at a relay in front of tansu (tansu keeps its
topics in memory, so it is never restarted); PagerDuty answering 500, or 429 with Retry-After,
for a window; VictoriaMetrics down for a window (stopped, then started on the same port and
data). The schedule and its seed: `harness.chaos_plan`.

A service that exits on its own is restarted, as its supervisor would, and counted. Every wait
is for a condition with a generous bound, never a short wall-clock deadline."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pickle
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from harness import servers
from harness.chaos_checks import PAGING, check_alerts, check_pages, check_readings
from harness.chaos_plan import KILL, Fault, Spec, plan, write_oncall
from harness.chaos_report import FaultRecord, Result, Unplanned
from harness.expected import Expected, judge_in_order
from harness.gateway import write_cohort
from harness.pagerduty import PagerDutyStandIn
from harness.readback import TopicTail, read_topic, vm_alerts, vm_reading_ids
from harness.services import ServiceError
from harness.stack import Stack
from simulators.plan import DAY
from simulators.run import parse_start
from vitals import topics, trafficfile

COMMANDS = {"ingest": "ingest", "store": "store", "alerting": "alerting"}  # else rules-N
RESTART_TIMEOUT_S = 240.0  # a rules worker's group join on a loaded box takes a while
POLL_S = 2.0


@dataclass
class Chaos:
    """One run in `workdir`; `run()` returns the result. `say` reports progress."""

    spec: Spec
    workdir: Path
    say: Callable[[str], None] = print
    faults: list[FaultRecord] = field(default_factory=list)
    unplanned: list[Unplanned] = field(default_factory=list)
    # the servers and services of the run, set by `run()`
    vm: servers.Server = field(init=False, repr=False)
    stack: Stack = field(init=False, repr=False)
    pagerduty: PagerDutyStandIn = field(init=False, repr=False)
    patients: Path = field(init=False, repr=False)
    _t0: float = 0.0  # wall clock when publishing began
    _gateway: subprocess.Popen[bytes] | None = None
    _windows: list[Fault] = field(default_factory=list)  # PagerDuty windows not begun yet
    _open: tuple[Fault, float, bool] | None = None  # the window on: since when, in traffic

    def run(self) -> Result:
        """The whole run: traffic and truth, stack, faults while publishing, drain, checks."""
        started = time.monotonic()
        spec, work = self.spec, self.workdir
        work.mkdir(parents=True, exist_ok=True)
        start_ms = parse_start(spec.start)
        if start_ms + spec.days * DAY + 2 * 3600_000 > time.time() * 1000:
            raise ValueError(f"the cohort from {spec.start} over {spec.days} days does not end "
                             "2 h before now: ingest would take skewed clocks for the future")
        traffic = work / "traffic.jsonl"
        patients, messages, readings = write_cohort(traffic, spec.patients, spec.seed,
                                                    spec.days, start_ms)
        self.patients = patients
        # The truth in another process while the stack starts. Every message is judged as
        # received now: live, ingest receives it later still, and the cohort ended hours ago,
        # so clock skew is judged alike (see `judge`).
        with (work / "truth.log").open("wb") as log:
            truth = subprocess.Popen(
                [sys.executable, "-m", "harness.expected", str(traffic), str(patients),
                 str(int(time.time() * 1000)), str(work / "truth.pickle")],
                stdout=log, stderr=subprocess.STDOUT)
        keys = write_oncall(work / "oncall.yaml", patients)
        pagerduty = PagerDutyStandIn().start()
        vm = servers.victoria_metrics(work / "vm")
        stack = Stack(work / "stack", patients=patients, oncall=work / "oncall.yaml",
                      pagerduty_url=pagerduty.url, partitions=spec.partitions,
                      influx_url=f"http://{servers.LOOPBACK}:{vm.port}", mqtt_persistence=True,
                      kafka_relay=True,
                      # no canary (its readings are not the cohort's); nor its watch, which
                      # would page the operators after 3 minutes without one
                      extra_env={"canary_late_s": "86400"})
        self.vm, self.stack, self.pagerduty = vm, stack, pagerduty
        gateway: subprocess.Popen[bytes] | None = None
        try:
            stack.start_brokers()
            names = ["ingest", *(f"rules-{i}" for i in range(1, spec.rules_workers + 1)),
                     "store", "alerting"]
            with ThreadPoolExecutor(len(names)) as starting:  # Faust's group join is slow
                for f in [starting.submit(self._start, name) for name in names]:
                    f.result()
            self.say(f"chaos: stack ready after {time.monotonic() - started:.0f} s; "
                     f"publishing {messages} messages over ~{spec.publish_s:.0f} s")
            # The schedule aims the PagerDuty windows at pages, so it needs the truth first
            # (judged meanwhile: the stack took longer to start).
            if truth.wait() != 0:
                raise RuntimeError(f"judging the traffic: {servers.tail(work / 'truth.log')}")
            expected: Expected = pickle.loads((work / "truth.pickle").read_bytes())
            self.say(f"chaos: the truth: {len(expected.accepted)} readings accepted, "
                     f"{len(expected.keys())} alert events")
            schedule = plan(spec, self._pages_due(expected, traffic))
            gateway_result = work / "gateway.json"
            with (work / "gateway.log").open("ab") as out:
                gateway = subprocess.Popen(
                    [sys.executable, "-m", "harness.gateway", str(traffic), "--port",
                     str(stack.mqtt_port), "--speed", str(spec.speed), "--result",
                     str(gateway_result)], stdout=out, stderr=subprocess.STDOUT)
            self._t0, self._gateway = time.time(), gateway
            self._windows = [f for f in schedule if f.window]
            for fault in schedule:
                if not fault.window:
                    self._inject(fault)
            self._wait(lambda: not self._windows and self.pagerduty.outage_window is None,
                       spec.publish_s * 2)
            self.say("chaos: faults over; waiting for the traffic and the pipeline")
            self._wait(lambda: gateway.poll() is not None, spec.drain_timeout_s * 2)
            published = json.loads(gateway_result.read_text()) if gateway_result.exists() \
                else {}
            caught_up = self._drain(expected, keys)
            time.sleep(3)  # for anything extra (a page sent twice) to arrive: it can only fail
            result = self._collect(expected, keys, published, messages, readings, caught_up)
        finally:
            if gateway is not None and gateway.poll() is None:
                gateway.kill()
                gateway.wait()
            stack.close()
            self.vm.stop()
            pagerduty.stop()
            if truth.poll() is None:
                truth.kill()
                truth.wait()
        result.wall_s = time.monotonic() - started
        return result

    # --- faults ------------------------------------------------------------------------

    def _now_s(self) -> float:
        return time.time() - self._t0

    def _start(self, name: str) -> None:
        """Start service `name`, again after a failed start (counted as unplanned)."""
        for attempt in range(3):
            try:
                self.stack.start(COMMANDS.get(name, "rules"), name, timeout=RESTART_TIMEOUT_S)
                return
            except ServiceError as exc:
                self.unplanned.append(Unplanned(self._now_s(), name, f"start failed: {exc}"))
                if attempt == 2:
                    raise
                # its /metrics port may have been taken meanwhile (a port chosen free is only
                # held once bound): another one next time
                self.stack.rules_metrics.pop(name, None)

    def _supervise(self) -> None:
        """Restart any service that exited on its own, as its supervisor would."""
        for name, svc in list(self.stack.services.items()):
            if not svc.alive():
                self.unplanned.append(Unplanned(self._now_s(), name,
                                                f"exited {svc.proc.returncode}: {svc.tail(4)}"))
                self.say(f"chaos: {name} exited on its own ({svc.proc.returncode}); restarting")
                self._start(name)

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Until `done()`, supervising meanwhile; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self._supervise()
            self._tick()
            time.sleep(0.1)
        return True

    def _in_traffic(self) -> bool:
        return self._gateway is not None and self._gateway.poll() is None

    def _record(self, fault: Fault, began: float, traffic: bool, note: str = "",
                ended: float | None = None) -> None:
        record = FaultRecord(fault.label, fault.at_s, began - self._t0,
                             (ended or time.time()) - self._t0, fault.duration_s, traffic, note)
        self.faults.append(record)
        self.say(f"chaos: {record.line()}")

    def _tick(self) -> None:
        """Begin a PagerDuty window that is due (once the one before it is over), and record
        the one that ended; the stand-in plays it meanwhile, whatever else goes on."""
        if self._open is not None and self.pagerduty.outage_window is not None \
                and time.monotonic() >= self.pagerduty.outage_window[1]:
            fault, began, traffic = self._open
            self.pagerduty.outage_window = self._open = None
            note = f"Retry-After: {fault.retry_after_s}" if fault.retry_after_s else ""
            self._record(fault, began, traffic, note, ended=began + fault.duration_s)
        if self._open is None and self._windows and self._now_s() >= self._windows[0].at_s:
            fault = self._windows.pop(0)
            self.pagerduty.outage(int(fault.kind.split()[1]), fault.duration_s,
                                  fault.retry_after_s)
            self._open = (fault, time.time(), self._in_traffic())

    def _pause(self, seconds: float) -> None:
        began = time.monotonic()
        self._wait(lambda: time.monotonic() - began >= seconds, seconds + 60)

    def _inject(self, fault: Fault) -> None:
        """One fault that holds its stage up, when it is due (or at once if late)."""
        self._wait(lambda: self._now_s() >= fault.at_s, fault.at_s + 3600)
        began, traffic = time.time(), self._in_traffic()
        if fault.kind == KILL:
            self.stack.services[fault.target].kill()
            self._start(fault.target)
        elif fault.kind == "mosquitto restart":
            assert self.stack.mosquitto is not None
            self.stack.mosquitto.stop()  # SIGTERM: it saves sessions and queues first
            self.stack.mosquitto.start()
        elif fault.kind == "kafka cut":
            assert self.stack.relay is not None
            self.stack.relay.block()
            self._pause(fault.duration_s)
            self.stack.relay.unblock()
        elif fault.kind == "tsdb down":
            self.vm.stop()
            self._pause(fault.duration_s)
            self.vm = servers.victoria_metrics(self.vm.workdir, self.vm.port)
        else:
            raise ValueError(f"not a fault that holds a stage up: {fault}")
        self._record(fault, began, traffic, "" if fault.duration_s else
                     f"back after {time.time() - began:.1f} s")

    def _pages_due(self, expected: Expected, traffic: Path) -> list[float]:
        """When the truth's paging alert events are due (s after publishing begins): the
        minute they judge is published at (its time - the first message's) / speed."""
        first = next(iter(trafficfile.read(traffic))).at
        return [(a["detected_at"] - first) / 1000 / self.spec.speed
                for alerts in expected.alerts.values() for a in alerts
                if a["severity"] in PAGING]

    # --- the end -------------------------------------------------------------------------

    def _drain(self, expected: Expected, keys: dict[str, str]) -> bool:
        """Until everything the truth calls for is on Kafka, judged, paged and stored;
        False if the drain timeout passed first (the checks then say what is missing)."""
        stack = self.stack
        alerts = TopicTail(stack.bootstrap, topics.ALERTS.name)
        trends = TopicTail(stack.bootstrap, topics.TRENDS.name)
        last: dict[str, int] = {}
        seen = 0
        truth: Expected | None = None  # in Kafka's order, once the rules have judged it all

        def missing() -> str:
            """What the pipeline does not have yet ("" when it has everything); the cheap
            conditions first, storage (read back whole) last. Storage has every reading only
            once Kafka has had it (tansu's high watermarks undercount: see `read_topic`)."""
            nonlocal seen
            records = trends.poll()
            for key, value in records[seen:]:
                last[key] = max(last.get(key, 0), value["ts"])
            seen = len(records)
            behind = [p for p, ts in expected.last_trend.items() if last.get(p, 0) < ts]
            if behind:
                return f"the rules' last minute of {len(behind)} patients, e.g. {behind[:3]}"
            nonlocal truth
            if truth is None:
                truth = self._in_kafka_order(expected)
            want_alerts = truth.keys()
            got = {(v["alert_id"], v["status"]) for _, v in alerts.poll()}
            if not want_alerts <= got:
                return f"alert events: {sorted(want_alerts - got)[:3]}"
            pages = check_pages(truth, self.pagerduty.events, keys).missed
            if pages:
                return f"pages: {pages[:3]}"
            stored = vm_reading_ids(self.vm).keys()
            if not expected.accepted.keys() <= stored:
                return (f"stored readings: {len(expected.accepted.keys() & stored)} of "
                        f"{len(expected.accepted)}")
            stored_alerts = truth.stored_alerts() - vm_alerts(self.vm)
            return f"stored alert events: {sorted(stored_alerts)[:3]}" if stored_alerts else ""

        started = time.monotonic()
        deadline = started + self.spec.drain_timeout_s
        said = changed = started
        before = ""
        try:
            while time.monotonic() < deadline:
                try:
                    lacking = missing()
                except (OSError, ValueError, KafkaException) as exc:  # slow: again
                    lacking = f"reading back failed ({exc})"
                if not lacking:
                    self.say(f"chaos: caught up {time.monotonic() - started:.0f} s after "
                             "the traffic")
                    return True
                if lacking != before:  # the counts in it moved: progress
                    before, changed = lacking, time.monotonic()
                elif time.monotonic() - changed > self.spec.stall_s:
                    self.say(f"chaos: no progress for {self.spec.stall_s:.0f} s; still missing "
                             f"{lacking}")
                    return False
                if time.monotonic() - said > 30:
                    said = time.monotonic()
                    self.say(f"chaos: still waiting for {lacking}")
                self._supervise()
                time.sleep(POLL_S)
            self.say(f"chaos: not caught up after {self.spec.drain_timeout_s:.0f} s")
            return False
        finally:
            alerts.close()
            trends.close()

    def _in_kafka_order(self, expected: Expected,
                        records: list[dict[str, Any]] | None = None) -> Expected:
        """The truth with its alert events judged on `vitals.readings` as Kafka holds it: the
        same readings (checked apart) in the order the rules worker consumed them."""
        if records is None:
            records = read_topic(self.stack.bootstrap, topics.READINGS.name)
        return dataclasses.replace(expected, alerts=judge_in_order(records, self.patients))

    def _collect(self, expected: Expected, keys: dict[str, str], published: dict[str, object],
                 messages: int, readings: int, caught_up: bool) -> Result:
        bootstrap = self.stack.bootstrap
        on_kafka = read_topic(bootstrap, topics.READINGS.name)
        truth = self._in_kafka_order(expected, on_kafka)
        alert_records = read_topic(bootstrap, topics.ALERTS.name)
        stored_alerts = vm_alerts(self.vm)
        return Result(
            spec=self.spec, faults=self.faults, unplanned=self.unplanned,
            published=int(published.get("published", 0)),  # type: ignore[call-overload]
            gateway=published, traffic_messages=messages, traffic_readings=readings,
            caught_up=caught_up,
            readings=check_readings(expected.accepted, on_kafka, vm_reading_ids(self.vm)),
            alerts=check_alerts(truth, alert_records, stored_alerts),
            in_publish_order=check_alerts(expected, alert_records, stored_alerts),
            pages=check_pages(truth, list(self.pagerduty.events), keys),
            outage_answers=dict(Counter(s for _, s in self.pagerduty.outage_answers)),
            started_at=dt.datetime.fromtimestamp(self._t0, dt.UTC).isoformat(timespec="seconds"),
            t0=self._t0, accepted_at=expected.accepted)

