"""Helpers for the storage tests: produce records to Kafka, run the store on a thread, and read
points back from VictoriaMetrics.

VictoriaMetrics names a series `{measurement}_{field}` and keeps tags as labels. It keeps every
sample it is sent, two at the same timestamp included, unless it runs with
`-dedup.minScrapeInterval`; InfluxDB instead overwrites a point with the same measurement, tag
set and timestamp. The readers here therefore return both: the distinct (series, timestamp)
pairs, which is what InfluxDB would hold, and the raw samples, so a test can say which it means.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer, TopicPartition

from harness import servers
from storage import writer
from storage.writer import Backoff, Store, StoreCounts
from tests.support import RunningService
from vitals.kafka import consumer_config, producer_config
from vitals.settings import Settings

Labels = frozenset[tuple[str, str]]


def produce(bootstrap: str, records: list[tuple[str, str | None, bytes]]) -> None:
    """(topic, key, value) records, confirmed by Kafka."""
    p = Producer(producer_config(bootstrap))
    for topic, key, value in records:
        p.produce(topic, value, key.encode() if key else None)
    assert p.flush(10) == 0


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    samples: list[tuple[int, float]]

    @property
    def timestamps(self) -> Counter[int]:
        return Counter(ts for ts, _ in self.samples)


@dataclass
class Points:
    """What VictoriaMetrics holds, by (series name, labels)."""

    series: dict[tuple[str, Labels], Series] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> Series:
        key = (name, frozenset(labels.items()))
        assert key in self.series, f"no series {name}{labels}; have {sorted(self.names())}"
        return self.series[key]

    def names(self) -> set[str]:
        return {name for name, _ in self.series}

    def distinct(self, name: str) -> int:
        """Points of series `name` (all label sets) as InfluxDB would count them."""
        return sum(len(s.timestamps) for (n, _), s in self.series.items() if n == name)

    def raw(self, name: str) -> int:
        return sum(len(s.samples) for (n, _), s in self.series.items() if n == name)


def vm_points(vm: servers.Server, match: str = '{__name__=~".+"}') -> Points:
    base = f"http://127.0.0.1:{vm.port}"
    # Recent writes become searchable about a second later unless flushed.
    urllib.request.urlopen(f"{base}/internal/force_flush", timeout=10).read()
    out = Points()
    q = urllib.parse.urlencode({"match[]": match, "start": "0"})
    with urllib.request.urlopen(f"{base}/api/v1/export?{q}", timeout=10) as r:
        for line in r:
            row = json.loads(line)
            labels = dict(row["metric"])
            name = labels.pop("__name__")
            s = Series(name, labels, list(zip(row["timestamps"], row["values"], strict=True)))
            out.series[name, frozenset(labels.items())] = s
    return out


def wait_for_points(vm: servers.Server, name: str, expect: int, timeout: float = 60.0
                    ) -> Points:
    """Points once `name` has `expect` distinct points, then 0.5 s more to catch extras."""
    deadline = time.monotonic() + timeout
    while True:
        pts = vm_points(vm)
        if pts.distinct(name) >= expect:
            time.sleep(0.5)
            return vm_points(vm)
        assert time.monotonic() < deadline, \
            f"{name}: {pts.distinct(name)} of {expect} points after {timeout:.0f} s"
        time.sleep(0.2)


def committed(bootstrap: str, topic: str, partitions: int) -> int:
    """How many records of `topic` the store's consumer group has committed."""
    c = Consumer(consumer_config(bootstrap, writer.GROUP_ID))
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(tp.offset for tp in tps if tp.offset > 0)
    finally:
        c.close()


@dataclass(kw_only=True)
class RunningStore(RunningService[StoreCounts]):
    store: list[Store]


QUICK = Backoff(0.2, 1.0)


def start_store(settings: Settings, backoff: Backoff = QUICK) -> RunningStore:
    """`storage.writer.run` on a thread, with a short backoff cap so tests stay quick."""
    stop, ready = threading.Event(), threading.Event()
    result: list[StoreCounts] = []
    stores: list[Store] = []

    def on_ready(store: Store) -> None:
        stores.append(store)
        ready.set()

    t = threading.Thread(target=lambda: result.append(
        writer.run(settings, stop, backoff=backoff, on_ready=on_ready)), daemon=True)
    t.start()
    assert ready.wait(20), "store did not start"
    return RunningStore(name="store", stop_event=stop, thread=t, result=result, store=stores)
