"""Latency probes for the end-to-end benchmark: fresh patients whose thermometer history is
built so that one known reading, the tip, makes a paging rule fire.

Each probe patient's thermometer (axillary, one reading a minute, 38.2 °C: 38.7 °C
core-equivalent) reports a fever. The pure engine (stream_rules.engine, the embedded rules, as
the worker runs them) is run offline on the same readings, one at a time, to find the first
reading after which a rule of a paging severity fires (`fever`, error: the median over 20 min
>= 38.0 °C for 10 min, judged once the thermometer is 2 minutes past the minute). The readings
before it are published `lead_s` ahead, the tip at its due time, and the time of the tip's
publish call is the start of the latency. Each probe is a new patient, because alerting groups
a patient's alerts into one incident and pages once for it.

Report probes (issue #14): a caregiver's check-in reporting a seizure, one message from the
patient's app device, which the rules page at once (`red_flag`, critical); its publish call is
the start of the latency.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from harness.pagerduty import Event
from harness.servers import LOOPBACK
from simulators.publish import Publisher
from stream_rules.config import RulesFile
from stream_rules.engine import Engine
from vitals import topics
from vitals.kafka import reader_config
from vitals.patients import Patient
from vitals.records import Reading
from vitals.settings import Endpoint

INFUSION = dt.date(2026, 11, 18)
TEAM = "haem-a"
FEVER_C = 38.2  # axillary; +0.5 °C site correction = 38.7 °C: fever (error), not high fever
HISTORY = 40  # candidate readings, a minute apart; the tip is found among them
PAGING = frozenset({"critical", "error"})
MINUTE = 60_000


@dataclass
class Probe:
    patient: str
    due: float  # wall time the tip is published
    readings: list[Reading]  # history, then the tip
    rule: str = ""
    report: bool = False  # a report probe (one check-in), not a thermometer's history
    published: float | None = None  # the tip's publish call
    alerted: float | None = None  # its alert event on vitals.alerts (its Kafka timestamp)
    paged: float | None = None  # the PagerDuty trigger at the stand-in

    @property
    def latency_ms(self) -> float | None:
        return span_ms(self.published, self.paged)


def span_ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000


def tip(engine: Engine, readings: list[Reading]) -> tuple[int, str]:
    """The index of the first reading after which a paging rule fires, and the rule."""
    state = engine.new_state()
    for k, r in enumerate(readings):
        for a in engine.process(state, [r]).alerts:
            if a.status == "firing" and a.severity in PAGING:
                return k, a.rule
    raise RuntimeError(f"no paging rule fires on {len(readings)} minutes of {FEVER_C} °C")


def plan(patient: str, due: float, rules: RulesFile) -> Probe:
    """The probe's readings, ending with the tip at event time `due` (never in the future)."""
    tip_ms = int(due * 1000)
    engine = Engine(rules, Patient(id=patient, infusion=INFUSION, team=TEAM))
    candidates = [Reading(patient, "th-1", tip_ms - (HISTORY - 1 - i) * MINUTE, "temperature",
                          tip_ms, seq=i, temp=FEVER_C, site="axillary") for i in range(HISTORY)]
    k, rule = tip(engine, candidates)
    # shift by whole minutes so that the tip is at tip_ms: minute boundaries stay where they
    # were, so the same reading tips it
    shift = (HISTORY - 1 - k) * MINUTE
    readings = [Reading(patient, r.device_id, r.ts + shift, r.kind, r.received_at, seq=r.seq,
                        temp=r.temp, site=r.site) for r in candidates[:k + 1]]
    if tip(engine, readings)[0] != k:  # checked, not assumed: the tip is the last reading
        raise RuntimeError(f"probe {patient}: shifting the readings moved the tip")
    return Probe(patient, due, readings, rule=rule)


def plan_report(patient: str, due: float) -> Probe:
    """A report probe: a caregiver's check-in reporting a seizure at event time `due`."""
    ts = int(due * 1000)
    report = Reading(patient, "app-1", ts, "symptoms", ts, seq=1, by="caregiver",
                     symptoms=("seizure",))
    return Probe(patient, due, [report], rule="red_flag", report=True)


def payload(r: Reading) -> bytes:
    if r.kind == "symptoms":
        body: dict[str, object] = {"ts": r.ts, "kind": r.kind, "seq": r.seq, "by": r.by,
                                   "symptoms": list(r.symptoms or ())}
    else:
        body = {"ts": r.ts, "kind": r.kind, "seq": r.seq, "temp": r.temp, "site": r.site}
    return json.dumps(body, separators=(",", ":")).encode()


class AlertWatcher:
    """Finds each probe's first firing alert event on vitals.alerts and takes its Kafka
    timestamp (set by the worker's producer when it sent it), which splits the latency into
    publish -> alert on Kafka (Mosquitto, ingest, the rules worker) and alert -> page
    (alerting). vitals.readings is not watched: a second consumer of the whole stream made
    tansu use 0.3-0.45 more of a core in a trial run, slowing what is measured. It fetches at
    most every 50 ms (tansu holds a fetch that finds nothing for the whole wait, and each fetch
    costs it CPU), so an alert's time on Kafka is known to within 50 ms."""

    def __init__(self, bootstrap: str, probes: dict[str, Probe]) -> None:
        self._probes = probes
        self._consumer = Consumer({**reader_config(bootstrap, "bench-watch"),
                                   "fetch.wait.max.ms": 50})
        topic = topics.ALERTS.name
        parts = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-alerts")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(1000, 0.05):
                if msg.error():
                    continue
                event = json.loads(msg.value())
                probe = self._probes.get(event.get("patient_id", ""))
                if probe is not None and probe.alerted is None and event["status"] == "firing":
                    probe.alerted = msg.timestamp()[1] / 1000

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


@dataclass
class ProbeRunner:
    """Publishes the probes on its own MQTT connection (a device of its own), and takes the
    first PagerDuty trigger of each probe patient from the stand-in."""

    port: int
    lead_s: float = 3.0
    probes: dict[str, Probe] = field(default_factory=dict)
    other_pages: list[str] = field(default_factory=list)  # triggers for anyone else
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_event(self, event: Event) -> None:
        if event.action != "trigger":
            return
        source = str(event.body.get("payload", {}).get("source", ""))
        with self._lock:
            probe = self.probes.get(source)
            if probe is None:
                self.other_pages.append(source)
            elif probe.paged is None:
                probe.paged = event.received

    def run(self, probes: Iterable[Probe]) -> threading.Thread:
        """Publish `probes` on a thread: each history `lead_s` before its tip."""
        probes = list(probes)
        with self._lock:
            self.probes.update((p.patient, p) for p in probes)
        steps = sorted([(p.due - self.lead_s, p, False) for p in probes]
                       + [(p.due, p, True) for p in probes], key=lambda s: s[0])
        t = threading.Thread(target=self._publish, args=(steps,), daemon=True,
                             name="bench-probes")
        t.start()
        return t

    def _publish(self, steps: list[tuple[float, Probe, bool]]) -> None:
        with Publisher(Endpoint("mqtt", LOOPBACK, self.port),
                       f"bench-probes-{time.time_ns()}") as pub:
            for at, probe, tip in steps:
                delay = at - time.time()
                if delay > 0:
                    time.sleep(delay)
                topic = f"vitals/v1/{probe.patient}/{probe.readings[-1].device_id}"
                if not tip:
                    for r in probe.readings[:-1]:
                        pub.publish(topic, payload(r))
                    continue
                probe.published = time.time()
                pub.publish(topic, payload(probe.readings[-1]))
