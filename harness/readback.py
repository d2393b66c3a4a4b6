"""Reading back what the real systems hold, for the end-to-end test and the chaos run: Kafka
topics (as they grow, or whole up to their end) and VictoriaMetrics' raw series."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from harness import servers
from vitals.kafka import reader_config


class TopicTail:
    """Every record of a Kafka topic from the beginning, gathered as the caller goes on."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[tuple[str, dict[str, Any]]] = []  # (key, value)
        self._c = Consumer(reader_config(bootstrap, f"e2e-{topic}"))
        parts = self._c.list_topics(topic, timeout=10).topics[topic].partitions
        self._c.assign([TopicPartition(topic, p, 0) for p in parts])

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        """Every record so far: those that arrived since the last poll are read first."""
        while msgs := self._c.consume(5000, 0.05):
            for m in msgs:
                if m.error() is None:
                    key = m.key()
                    self.records.append((key.decode() if key else "", json.loads(m.value())))
        return self.records

    def close(self) -> None:
        """Close the consumer."""
        self._c.close()


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in `topic` (the sum of its partitions' high watermarks). On tansu a lower
    bound: its high watermark is the last batch's first offset + 1 (see `read_topic`)."""
    c = Consumer(reader_config(bootstrap, "e2e-size"))
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in parts)
    finally:
        c.close()


def read_topic(bootstrap: str, topic: str, timeout: float = 300.0, quiet_s: float = 2.0
               ) -> list[dict[str, Any]]:
    """Every record's value in `topic` from offset 0: up to the high watermarks of now, then
    until nothing more comes for `quiet_s` (tansu reports the last batch's first offset + 1 as
    its high watermark, not the last record's + 1, so the rest of that batch lies beyond)."""
    c = Consumer(reader_config(bootstrap, f"readback-{topic}"))
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        behind = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] - 1
                  for p in parts}
        behind = {p: last for p, last in behind.items() if last >= 0}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while behind or time.monotonic() - quiet_since < quiet_s:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: still behind in partitions {sorted(behind)} "
                                   f"after {timeout:.0f} s ({len(out)} records read)")
            messages = c.consume(10000, 0.2)
            if messages:
                quiet_since = time.monotonic()
            for m in messages:
                if m.error() is not None:
                    continue
                if m.offset() >= behind.get(m.partition(), m.offset() + 1):
                    behind.pop(m.partition(), None)
                out.append(json.loads(m.value()))
        return out
    finally:
        c.close()


def vm_export(vm: servers.Server, match: str) -> list[dict[str, Any]]:
    """VictoriaMetrics' raw series for `match` (each with metric labels, timestamps, values).
    It names a series `{measurement}_{field}` and keeps the tags as labels."""
    base = f"http://{servers.LOOPBACK}:{vm.port}"
    urllib.request.urlopen(f"{base}/internal/force_flush", timeout=10).read()
    q = urllib.parse.urlencode({"match[]": match, "start": "0"})
    with urllib.request.urlopen(f"{base}/api/v1/export?{q}", timeout=60) as r:
        return [json.loads(line) for line in r]


def vm_points(vm: servers.Server, name: str) -> dict[tuple[str, str], set[int]]:
    """(patient, device) -> the distinct timestamps of series `name` (as InfluxDB would hold
    them: one point per series and timestamp)."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row in vm_export(vm, f'{{__name__="{name}"}}'):
        labels = row["metric"]
        out[labels["patient"], labels["device"]].update(row["timestamps"])
    return dict(out)


def vm_samples(vm: servers.Server, name: str) -> Counter[tuple[str, str, str, int]]:
    """(patient, device, kind, timestamp) -> raw samples of series `name`. InfluxDB keeps one
    point per series and timestamp (a rewrite overwrites it); VictoriaMetrics keeps every
    sample written, so a count above 1 is a point written again."""
    out: Counter[tuple[str, str, str, int]] = Counter()
    for row in vm_export(vm, f'{{__name__="{name}"}}'):
        labels = row["metric"]
        for ts in row["timestamps"]:
            out[labels["patient"], labels["device"], labels.get("kind", ""), ts] += 1
    return out


def vm_reading_ids(vm: servers.Server) -> Counter[tuple[str, str, str, int | None, int]]:
    """The stored readings by identity (patient, device, kind, seq, ts) -> raw samples: from the
    `seq` field's series, and from `received_at` for readings without a seq; the wearables'
    from the measurement `readings`, the patients' reports from `reports`. A count above 1 is
    a point written again (InfluxDB would keep one)."""
    out: Counter[tuple[str, str, str, int | None, int]] = Counter()
    for measurement in ("readings", "reports"):
        with_seq: set[tuple[str, str, str, int]] = set()
        for row in vm_export(vm, f'{{__name__="{measurement}_seq"}}'):
            m = row["metric"]
            for ts, seq in zip(row["timestamps"], row["values"], strict=True):
                out[m["patient"], m["device"], m.get("kind", ""), int(seq), ts] += 1
                with_seq.add((m["patient"], m["device"], m.get("kind", ""), ts))
        for (patient, device, kind, ts), n in vm_samples(vm, f"{measurement}_received_at").items():
            if (patient, device, kind, ts) not in with_seq:
                out[patient, device, kind, None, ts] += n
    return out


def vm_alerts(vm: servers.Server) -> set[tuple[str, str, str, int]]:
    """The stored alert events as (patient, rule, status, detected_at): the `alerts`
    measurement is timed by `detected_at`, and `start` is one of its fields."""
    return {(row["metric"]["patient"], row["metric"]["rule"], row["metric"]["status"], ts)
            for row in vm_export(vm, '{__name__="alerts_start"}') for ts in row["timestamps"]}
