"""Helpers for the end-to-end test (tests/test_end_to_end.py): the test's on-call file, what
ingest's parser and the pure engine say about a traffic file, Kafka topics read while the
pipeline runs, VictoriaMetrics read back, the alerting API as a nurse uses it, and bounded
waits that say what the pipeline was doing when they time out."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml
from confluent_kafka import Consumer, TopicPartition

from alerting.oncall import default_oncall_path
from evaluation.run import Pipeline
from harness import servers
from harness.stack import Stack
from ingest.dedup import DuplicateFilter
from ingest.parse import Parser
from stream_rules.config import load_rules
from vitals import trafficfile
from vitals.kafka import reader_config
from vitals.patients import load_patients

AlertKey = tuple[str, str]  # (alert_id, status)


def write_oncall(path: Path) -> Path:
    """The embedded on-call file with `paging.resolve_hold_min: 0`.

    The embedded file holds a resolve for 5 minutes of wall-clock time (a patient who fires
    again meanwhile returns silently to the open incident instead of churning resolve/trigger).
    This test plays a whole fever in seconds, so with the hold its `resolve` would reach
    PagerDuty 5 wall minutes after the fever cleared, long after the test is over.
    The embedded file has no API tokens (a public file holds no secret): fresh random ones."""
    oncall = yaml.safe_load(default_oncall_path().read_text())
    oncall["paging"]["resolve_hold_min"] = 0
    oncall["tokens"] = {name: secrets.token_urlsafe(24)
                        for name in ("nurse-alice", "nurse-bob", "nurse-carol")}
    path.write_text(yaml.safe_dump(oncall, sort_keys=False))
    return path


def nurse_token(oncall: Path, person: str = "nurse-alice") -> str:
    return str(yaml.safe_load(oncall.read_text())["tokens"][person])


@dataclass
class Expected:
    """What ingest's parser and the pure engine make of a traffic file, fed in publish order
    and never flushed: the live worker judges a minute only once later readings arrive, so at
    the end of the traffic it has judged exactly what `Engine.process` has."""

    alerts: dict[str, list[dict[str, Any]]]  # patient -> alert events (JSON-able), in order
    last_trend: dict[str, int]  # patient -> ts of its last trend point
    readings: dict[tuple[str, str], set[int]]  # (patient, device) -> reading times
    flagged: dict[tuple[str, str], int]  # (patient, device) -> readings with flags
    rejected: dict[str, int]
    messages: int

    def keys(self) -> set[AlertKey]:
        return {(a["alert_id"], a["status"]) for alerts in self.alerts.values() for a in alerts}

    def stored_alerts(self) -> set[tuple[str, str, str, int]]:
        """As `vm_alerts` reads them back."""
        return {(a["patient_id"], a["rule"], a["status"], a["detected_at"])
                for als in self.alerts.values() for a in als}

    def by_key(self) -> dict[AlertKey, dict[str, Any]]:
        return {(a["alert_id"], a["status"]): a for als in self.alerts.values() for a in als}


def judge(traffic: Path, patients: Path, rules: Path | None = None) -> Expected:
    registry = load_patients(patients)
    pipe = Pipeline(load_rules(rules), registry)
    parser, dedup = Parser(registry), DuplicateFilter()
    readings: dict[tuple[str, str], set[int]] = defaultdict(set)
    flagged: dict[tuple[str, str], int] = defaultdict(int)
    chunk: list[tuple[int, str, bytes]] = []
    for m in trafficfile.read(traffic):
        chunk.append((m.at, m.topic, m.payload))
        for r in parser.parse(m.topic, m.payload, m.at).readings:
            if dedup.first_time(r):
                readings[r.patient_id, r.device_id].add(r.ts)
                flagged[r.patient_id, r.device_id] += bool(r.flags)
        if len(chunk) >= 5000:
            pipe.feed(chunk)
            chunk = []
    pipe.feed(chunk)
    return Expected(
        alerts={pid: [msgspec.to_builtins(a) for a in run.alerts]
                for pid, run in pipe.runs.items()},
        last_trend={pid: run.ts[-1] for pid, run in pipe.runs.items() if run.ts},
        readings=dict(readings), flagged=dict(flagged), rejected=dict(pipe.counts.rejected),
        messages=pipe.counts.messages)


class TopicTail:
    """Every record of a Kafka topic from the beginning, gathered as the test goes on."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[tuple[str, dict[str, Any]]] = []  # (key, value)
        self._c = Consumer(reader_config(bootstrap, f"e2e-{topic}"))
        parts = self._c.list_topics(topic, timeout=10).topics[topic].partitions
        self._c.assign([TopicPartition(topic, p, 0) for p in parts])

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        while msgs := self._c.consume(5000, 0.05):
            for m in msgs:
                if m.error() is None:
                    key = m.key()
                    self.records.append((key.decode() if key else "", json.loads(m.value())))
        return self.records

    def close(self) -> None:
        self._c.close()


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in `topic` (the sum of its partitions' high watermarks)."""
    c = Consumer(reader_config(bootstrap, "e2e-size"))
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in parts)
    finally:
        c.close()


def vm_export(vm: servers.Server, match: str) -> list[dict[str, Any]]:
    """VictoriaMetrics' raw series for `match` (each with metric labels, timestamps, values).
    It names a series `{measurement}_{field}` and keeps the tags as labels."""
    base = f"http://{servers.LOOPBACK}:{vm.port}"
    urllib.request.urlopen(f"{base}/internal/force_flush", timeout=10).read()
    q = urllib.parse.urlencode({"match[]": match, "start": "0"})
    with urllib.request.urlopen(f"{base}/api/v1/export?{q}", timeout=30) as r:
        return [json.loads(line) for line in r]


def vm_points(vm: servers.Server, name: str) -> dict[tuple[str, str], set[int]]:
    """(patient, device) -> the distinct timestamps of series `name` (as InfluxDB would hold
    them: one point per series and timestamp)."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row in vm_export(vm, f'{{__name__="{name}"}}'):
        labels = row["metric"]
        out[labels["patient"], labels["device"]].update(row["timestamps"])
    return dict(out)


def vm_alerts(vm: servers.Server) -> set[tuple[str, str, str, int]]:
    """The stored alert events as (patient, rule, status, detected_at): the `alerts`
    measurement is timed by `detected_at`, and `start` is one of its fields."""
    return {(row["metric"]["patient"], row["metric"]["rule"], row["metric"]["status"], ts)
            for row in vm_export(vm, '{__name__="alerts_start"}') for ts in row["timestamps"]}


def api(stack: Stack, method: str, path: str, token: str) -> tuple[int, Any]:
    """A request to the alerting API with a bearer token: (status, JSON body)."""
    req = urllib.request.Request(f"{stack.alerting_url}{path}", method=method,
                                 headers={"Authorization": f"Bearer {token}"},
                                 data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def diagnosis(stack: Stack, lines: int = 6) -> str:
    """Which services are alive, the first error in each log and its end: for a failed wait."""
    parts = []
    for name, svc in stack.services.items():
        state = "alive" if svc.alive() else f"exited {svc.proc.returncode}"
        text = svc.log.read_text(errors="replace") if svc.log.exists() else ""
        error = next((line for line in text.splitlines() if "Error" in line), None)
        parts.append(f"\n  {name} ({state}): {servers.tail(svc.log, lines)}"
                     + (f"\n    first error: {error[:300]}" if error else ""))
    return "".join(parts)


@dataclass
class Waiter:
    """Bounded waits for conditions, with the pipeline's state in the message on a timeout.
    A wait never asserts by sleeping: it polls until the condition holds or time runs out."""

    stack: Stack
    extra: list[Callable[[], str]] = field(default_factory=list)

    def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        """Seconds it took; AssertionError after `timeout`, or at once when a service died."""
        started = time.monotonic()
        while not predicate():
            dead = [name for name, svc in self.stack.services.items() if not svc.alive()]
            late = time.monotonic() - started > timeout
            if dead or late:
                why = f"{', '.join(dead)} died" if dead else f"timed out after {timeout:.0f} s"
                more = "".join(f"\n  {f()}" for f in self.extra)
                raise AssertionError(f"{why} waiting for {what}{more}{diagnosis(self.stack)}")
            time.sleep(0.1)
        return time.monotonic() - started

    def quietly(self, predicate: Callable[[], bool], timeout: float, every: float = 0.1
                ) -> bool:
        """Like `until`, but says whether the condition came true instead of failing: for
        outcomes that the tests assert on one by one."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(every)
        return True
