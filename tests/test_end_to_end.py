"""The whole pipeline end to end (issue 7): every part as its own process on real servers.

Simulated devices publish over a real Mosquitto; `vitals ingest` carries the readings to a real
Kafka-protocol broker (tansu); `vitals rules` (the Faust worker) judges them; `vitals alerting`
pages a local PagerDuty Events v2 receiver and serves the nurses' ack API; `vitals store` writes
everything to VictoriaMetrics (standing in for InfluxDB 2, which cannot run here).

The traffic (tests/data/e2e_scenario.yaml, 30 simulated hours) has a patient with a grade-2 CRS
fever that rises, plateaus and recovers, a healthy patient whose oximeter slips and comes off
the finger, and a patient whose whole fever lies in a thermometer's buffer that the gateway sent
after newer live readings (paged late). It is published with `vitals simulate --speed`, and
the same traffic, written to a file with `vitals simulate --out`, goes through ingest's parser
and the pure rule engine in this process: that is what the live pipeline must agree with.

One run, in a module fixture, then one test per property:

1. start the stack; publish the traffic;
2. as soon as the CRS patient is paged (fever), SIGKILL the rules worker: alerts have been
   emitted and readings judged, and the traffic goes on arriving while it is down;
3. a nurse acknowledges over the API while the worker is down, so the fever cannot clear first;
4. restart the worker; it catches up and the fever clears: PagerDuty gets `resolve`;
5. once every reading is stored and the worker has judged the last minute the pure engine
   judged, collect what PagerDuty, Kafka, the alerting audit and VictoriaMetrics hold.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import servers
from harness.command import vitals
from harness.expected import AlertKey, Expected, judge
from harness.pagerduty import Event, PagerDutyStandIn
from harness.readback import TopicTail, topic_size, vm_alerts, vm_points
from harness.stack import Stack
from harness.waits import Waiter
from tests.alerting.support import pagerduty_validator
from tests.e2e_support import api, nurse_token, write_oncall
from vitals import topics
from vitals.ready import ready_line

pytestmark = pytest.mark.slow

SCENARIO = Path(__file__).resolve().parent / "data" / "e2e_scenario.yaml"
CRS, HEALTHY, LATE = "E2E-CRS", "E2E-OK", "E2E-LATE"
SPEED = 3600  # one simulated hour a second: 30 simulated hours in ~30 s
# A fixed start: the same traffic byte for byte on every run, so a failure can be reproduced.
# It must lie in the past (ingest rejects readings from the future as clock skew); nothing
# in the pipeline minds readings that are weeks old.
START = "2026-11-02T00:00:00Z"


@dataclass
class Kill:
    """What had happened when the rules worker was SIGKILLed, and when it was back."""

    alert_events: int  # on vitals.alerts
    trend_points: int  # on vitals.trends: minutes judged
    readings_in_kafka: int  # on vitals.readings, of `Expected.readings` in all
    simulate_running: bool
    readings_when_back: int = 0  # on vitals.readings once the restarted worker was ready
    ready_lines: int = 0  # the worker's ready lines in its log: 2 after the restart


@dataclass
class Run:
    expected: Expected
    events: list[Event]  # every request PagerDuty's stand-in accepted, in order
    refused: list[str]  # and why it refused others (400)
    alerts: list[dict[str, Any]]  # every record on vitals.alerts, repeats included
    kill: Kill
    ack_status: int
    ack_body: Any
    ack_key: str  # the dedup_key the nurse acknowledged
    resolve_before_ack: bool
    audit: list[dict[str, Any]]  # the CRS patient's audit rows
    vm_readings: dict[tuple[str, str], set[int]]
    vm_flags: dict[tuple[str, str], set[int]]
    vm_alerts: set[tuple[str, str, str, int]]  # (patient, rule, status, detected_at)
    published: int  # messages `vitals simulate` published
    timings: dict[str, float] = field(default_factory=dict)

    def of(self, patient: str) -> list[Event]:
        return [e for e in self.events if patient_of(e) == patient]


def patient_of(e: Event) -> str:
    """The patient a PagerDuty event is about: payload.source on a trigger; on acknowledge and
    resolve (which carry no payload) the incident id `{patient}-{opened_at_ms}`."""
    if e.action == "trigger":
        return str(e.body["payload"]["source"])
    return e.dedup_key.rsplit("-", 1)[0]


def simulate(*args: str, env: dict[str, str] | None = None, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(vitals("simulate", "--scenario", str(SCENARIO), *args),
                                env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    work = tmp_path_factory.mktemp("e2e")
    start = START
    assert dt.datetime.fromisoformat(start) + dt.timedelta(days=2) < dt.datetime.now(dt.UTC), (
        f"the scenario's start {start} is not in the past: the clock reads {dt.datetime.now()}")

    # The traffic as a file, and what the pure engine makes of it (no brokers).
    traffic = work / "traffic.jsonl"
    proc = simulate("--start", start, "--out", str(traffic), log=work / "simulate-out.log")
    assert proc.wait(60) == 0, (work / "simulate-out.log").read_text()[-2000:]
    patients = work / "traffic.jsonl.patients.yaml"
    expected = judge(traffic, patients)
    rules_of = {pid: {(a["rule"], a["status"]) for a in als}
                for pid, als in expected.alerts.items()}
    # The scenario's premises: if these fail, the scenario no longer tests what it claims.
    assert {("fever", "firing"), ("fever", "resolved")} <= rules_of[CRS], (
        f"the pure engine should see {CRS}'s fever fire and clear: {rules_of[CRS]}")
    paging = [a for a in expected.alerts[CRS] if a["severity"] in ("critical", "error")]
    assert (paging[-1]["rule"], paging[-1]["status"]) == ("fever", "resolved"), (
        f"the fever should be the last of {CRS}'s paging alerts to clear: {paging}")
    assert expected.alerts[HEALTHY] == [], (
        f"the pure engine fires on {HEALTHY}'s artefacts: {expected.alerts[HEALTHY]}")
    assert expected.rejected == {}, f"ingest's parser rejects some traffic: {expected.rejected}"
    timings["traffic file and pure engine"] = time.monotonic() - t0

    oncall = write_oncall(work / "oncall.yaml")
    token = nurse_token(oncall)
    pagerduty = PagerDutyStandIn().start()
    vm = servers.victoria_metrics(work / "vm")
    stack = Stack(work / "stack", patients=patients, oncall=oncall,
                  pagerduty_url=pagerduty.url, influx_url=f"http://{servers.LOOPBACK}:{vm.port}")
    tails: list[TopicTail] = []
    sim: subprocess.Popen[bytes] | None = None
    kill: Kill | None = None
    try:
        stack.start_brokers()
        # The Faust worker takes ~7 s to be ready; the others start meanwhile.
        with ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(stack.start, "rules", name="rules-1", timeout=90),
                      pool.submit(stack.start, "alerting"), pool.submit(stack.start, "store"),
                      pool.submit(stack.start, "ingest")]:
                f.result()
        timings["stack ready"] = time.monotonic() - t0
        alerts = TopicTail(stack.bootstrap, topics.ALERTS.name)
        trends = TopicTail(stack.bootstrap, topics.TRENDS.name)
        tails += [alerts, trends]
        wait = Waiter(stack, [
            lambda: f"PagerDuty events: {[(e.action, e.dedup_key) for e in pagerduty.events]}",
            lambda: f"alert events: {len(alerts.poll())}"])

        sim_log = work / "simulate.log"
        sim = simulate("--start", start, "--speed", str(SPEED), env=stack.env("simulate"),
                       log=sim_log)
        sim_started = time.monotonic()

        # 2. The CRS patient is paged: crash the rules worker mid-traffic.
        def paged() -> bool:
            return any(e.action == "trigger" and patient_of(e) == CRS for e in pagerduty.events)

        wait.until(paged, 90, f"a PagerDuty trigger for {CRS}")
        timings["first trigger, after the traffic began"] = time.monotonic() - sim_started
        # Counted on the broker (high watermarks): the tails may not have read them yet.
        kill = Kill(alert_events=topic_size(stack.bootstrap, topics.ALERTS.name),
                    trend_points=topic_size(stack.bootstrap, topics.TRENDS.name),
                    readings_in_kafka=topic_size(stack.bootstrap, topics.READINGS.name),
                    simulate_running=sim.poll() is None)
        stack.services["rules-1"].kill()
        key = next(e.dedup_key for e in pagerduty.events
                   if e.action == "trigger" and patient_of(e) == CRS)

        # 3. A nurse acknowledges over the API, while the worker is down.
        resolve_before_ack = any(e.action == "resolve" and e.dedup_key == key
                                 for e in pagerduty.events)
        ack_status, ack_body = api(stack, "POST", f"/alerts/{key}/ack", token)
        wait.quietly(lambda: any(e.action == "acknowledge" and e.dedup_key == key
                                 for e in pagerduty.events), 20)

        # 4. The worker comes back and catches up; the fever clears.
        stack.start("rules", name="rules-1", timeout=90)
        kill.readings_when_back = topic_size(stack.bootstrap, topics.READINGS.name)
        kill.ready_lines = stack.services["rules-1"].output().count(ready_line("rules"))
        timings["worker back, after the traffic began"] = time.monotonic() - sim_started
        wait.until(lambda: sim is not None and sim.poll() is not None, 120,
                   "vitals simulate to finish")
        assert sim.returncode == 0, sim_log.read_text()[-2000:]
        timings["traffic published"] = time.monotonic() - sim_started
        m = re.search(r"published to \S+: (\d+) messages", sim_log.read_text())
        published = int(m.group(1)) if m else -1

        # 5. Done when the worker has judged the last minute the pure engine judged (it sends
        # a batch's alerts before its trend points), PagerDuty has what it should, and every
        # reading and alert is stored.
        want = expected.keys()
        stored_alerts = expected.stored_alerts()

        def done() -> bool:
            last = {}
            for k, v in trends.poll():
                last[k] = max(last.get(k, 0), v["ts"])
            return (all(last.get(p, 0) >= ts for p, ts in expected.last_trend.items())
                    and {(v["alert_id"], v["status"]) for _, v in alerts.poll()} >= want
                    and any(e.action == "resolve" for e in pagerduty.events)
                    and vm_points(vm, "readings_received_at") == expected.readings
                    and vm_alerts(vm) == stored_alerts)

        wait.quietly(done, 90, every=0.5)
        # A grace window for anything extra (a second page, an invented alert) to show up:
        # it can only make a test fail, never pass.
        time.sleep(1.5)
        timings["all judged, paged and stored, after the traffic began"] = (
            time.monotonic() - sim_started)
        _, audit = api(stack, "GET", f"/audit?patient={CRS}", token)
        result = Run(
            expected=expected, events=list(pagerduty.events), refused=list(pagerduty.refused),
            alerts=[v for _, v in alerts.poll()], kill=kill, ack_status=ack_status,
            ack_body=ack_body, ack_key=key, resolve_before_ack=resolve_before_ack,
            audit=audit["audit"] if isinstance(audit, dict) else [],
            vm_readings=vm_points(vm, "readings_received_at"),
            vm_flags=vm_points(vm, "readings_flags"), vm_alerts=vm_alerts(vm),
            published=published, timings=timings)
    finally:
        if sim is not None and sim.poll() is None:
            sim.kill()
            sim.wait()
        for t in tails:
            t.close()
        stack.close()
        vm.stop()
        pagerduty.stop()
        timings["total, stopped"] = time.monotonic() - t0
        print("\nend-to-end timings (s):", {k: round(v, 1) for k, v in timings.items()},
              "\nPagerDuty:", [(e.action, e.dedup_key) for e in pagerduty.events],
              "\nworker killed:", kill)
    yield result


def test_the_crs_patient_is_paged_with_a_trigger_naming_the_patient_and_the_fever(
        run: Run) -> None:
    triggers = [e for e in run.of(CRS) if e.action == "trigger"]
    assert triggers, f"no PagerDuty trigger for {CRS}: {[e.body for e in run.events]}"
    first = triggers[0]
    assert first.body["payload"]["source"] == CRS
    assert first.body["payload"]["class"] == "fever", first.body
    assert re.match(rf"{CRS}: fever: temperature 3[89]\.\d °C", first.summary), first.summary
    details = first.details
    assert details["patient_id"] == CRS
    fever = [a for a in details["alerts"] if a["rule"] == "fever"]
    assert fever, details
    assert fever[0]["evidence"]["unit"] == "°C" and fever[0]["evidence"]["value"] >= 38.0, fever
    expected = next(a for a in run.expected.alerts[CRS] if a["rule"] == "fever")
    assert fever[0]["alert_id"] == expected["alert_id"]


def test_every_request_to_pagerduty_validates_against_the_official_schema(run: Run) -> None:
    assert run.refused == [], f"the PagerDuty stand-in refused requests: {run.refused}"
    assert run.events, "PagerDuty received nothing"
    validator = pagerduty_validator()
    for e in run.events:
        errors = [f"{'/'.join(map(str, err.path))}: {err.message}"
                  for err in validator.iter_errors(e.body)]
        assert not errors, f"{e.action} {e.dedup_key}: {errors}"
    assert {e.action for e in run.events} == {"trigger", "acknowledge", "resolve"}, (
        f"every kind of request should have been checked: {[e.action for e in run.events]}")


def test_a_nurses_ack_over_the_api_sends_acknowledge_with_the_same_dedup_key(run: Run) -> None:
    assert not run.resolve_before_ack, (
        "the fever had already cleared when the test came to acknowledge: the rules worker "
        "ran far behind the traffic")
    assert run.ack_status == 200, (run.ack_status, run.ack_body)
    assert run.ack_body["state"] == "acknowledged" and run.ack_body["acked_by"] == "nurse-alice"
    actions = [e.action for e in run.of(CRS)]
    assert "acknowledge" in actions, actions
    assert actions.index("acknowledge") > actions.index("trigger"), actions
    acks = [e for e in run.events if e.action == "acknowledge"]
    assert {e.dedup_key for e in acks} == {run.ack_key}, [e.body for e in acks]
    assert [r["actor"] for r in run.audit if r["event"] == "acknowledged"] == ["nurse-alice"]


def test_the_fever_clearing_sends_resolve_with_the_same_dedup_key(run: Run) -> None:
    events = run.of(CRS)
    assert [e.action for e in events][-1:] == ["resolve"], [e.action for e in events]
    assert sum(e.action == "resolve" for e in events) == 1, [e.action for e in events]
    # one PagerDuty alert for the whole episode: trigger, acknowledge and resolve share the key
    assert {e.dedup_key for e in events} == {run.ack_key}, [(e.action, e.dedup_key)
                                                            for e in events]
    # it was the rules that resolved it, when the fever (the last of its alerts) cleared
    rows = [r for r in run.audit if r["event"] in ("cleared", "resolved")]
    resolved = [i for i, r in enumerate(rows) if r["event"] == "resolved"]
    assert len(resolved) == 1, rows
    by = rows[resolved[0]]
    assert by["actor"] is None, f"a person resolved it, not the rules: {by}"
    fever = next(a for a in run.expected.alerts[CRS] if a["rule"] == "fever")["alert_id"]
    assert rows[resolved[0] - 1]["alert_id"] == fever, rows


def test_the_healthy_patient_with_artefacts_and_a_probe_off_period_is_never_paged(
        run: Run) -> None:
    assert run.of(HEALTHY) == [], [e.body for e in run.of(HEALTHY)]
    assert [a for a in run.alerts if a["patient_id"] == HEALTHY] == []
    # the artefacts were there: flagged readings (probe off, flagged motion) reached storage
    ox = (HEALTHY, "ox-1")
    assert run.expected.flagged[ox] > 100, run.expected.flagged
    assert len(run.vm_flags.get(ox, ())) == run.expected.flagged[ox]


def test_a_fever_only_in_a_buffer_sent_after_newer_live_readings_is_paged_as_late(
        run: Run) -> None:
    """The gateway sent live readings first and the buffer holding the whole fever after
    (issue #16): the minutes were judged empty, then judged again when the buffer came."""
    expected = [a for a in run.expected.alerts[LATE] if a["rule"] == "fever"]
    assert [(a["status"], a["late"]) for a in expected] == [("firing", True),
                                                            ("resolved", True)], expected
    triggers = [e for e in run.of(LATE) if e.action == "trigger"]
    assert len(triggers) == 1, [e.body for e in run.of(LATE)]
    (fever,) = triggers[0].details["alerts"]
    assert fever["alert_id"] == expected[0]["alert_id"] and fever["late"], fever
    when = r"\d\d \w+ \d\d:\d\d UTC"
    assert re.match(rf"{LATE}: fever: temperature 3[89]\.\d °C, (median over 20 min, >= 38 °C|"
                    rf"\d+ readings in a row >= 38 °C over \d+ min), from {when} to {when}; "
                    r".* Reported late: its readings arrived \d+ h \d+ min after they were "
                    r"measured\.",
                    triggers[0].summary), triggers[0].summary


def test_alert_events_equal_the_pure_engines_although_the_worker_was_killed_midway(
        run: Run) -> None:
    got: set[AlertKey] = {(a["alert_id"], a["status"]) for a in run.alerts}
    want = run.expected.keys()
    assert not want - got, f"lost: {sorted(want - got)}"
    assert not got - want, f"invented: {sorted(got - want)}"
    # a repeat after the crash is the same event, not merely the same id
    by_key = run.expected.by_key()
    for a in run.alerts:
        assert a == by_key[a["alert_id"], a["status"]], a
    # and the crash came mid-traffic, after alerts had been emitted and minutes judged ...
    k = run.kill
    total = sum(len(ts) for ts in run.expected.readings.values())
    assert k.alert_events >= 1 and k.trend_points >= 60, k
    assert k.simulate_running and k.readings_in_kafka < total, (k, total)
    assert k.readings_when_back > k.readings_in_kafka, k  # ... traffic arrived while down
    assert k.ready_lines == 2, f"the worker did not come back: {k}"


def test_every_reading_and_alert_reaches_victoriametrics(run: Run) -> None:
    # the traffic published is the traffic the pure engine judged (same scenario and start)
    assert run.published == run.expected.messages, (
        f"vitals simulate published {run.published} messages, the traffic file has "
        f"{run.expected.messages}")
    want = run.expected.readings
    for dev in sorted(set(want) | set(run.vm_readings)):
        got, sent = run.vm_readings.get(dev, set()), want.get(dev, set())
        assert got == sent, (f"{dev}: {len(sent)} readings published, {len(got)} stored; "
                             f"missing {sorted(sent - got)[:5]}, extra {sorted(got - sent)[:5]}")
    want_alerts = run.expected.stored_alerts()
    assert run.vm_alerts == want_alerts, (f"missing {sorted(want_alerts - run.vm_alerts)}, "
                                          f"extra {sorted(run.vm_alerts - want_alerts)}")
