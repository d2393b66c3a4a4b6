"""What ingest has done, counted per entry (CONTRACT section 2: every entry ends somewhere).

Plain integers on the hot path; Prometheus reads them only when it scrapes, through a custom
collector (the client_python pattern for values a program already keeps).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass
class Counts:
    messages: int = 0
    received: int = 0  # entries: readings of batches, whole messages that are not readings
    accepted: int = 0  # readings forwarded to vitals.readings
    statuses: int = 0  # device status messages forwarded to vitals.status
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def accounted(self) -> int:
        return self.accepted + self.statuses + self.duplicates + self.rejected.total()

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
        return (f"{self.messages} messages, {self.received} entries: {self.accepted} readings "
                f"accepted, {self.statuses} statuses, {self.duplicates} duplicates, "
                f"{self.rejected.total()} rejected" + (f" ({reasons})" if reasons else ""))


class CountsCollector(Collector):
    def __init__(self, counts: Counts, pending: Callable[[], int]) -> None:
        self.counts = counts
        self.pending = pending

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        c = self.counts
        yield CounterMetricFamily("vitals_ingest_messages", "MQTT messages received",
                                  value=c.messages)
        yield CounterMetricFamily("vitals_ingest_entries_received",
                                  "Entries received (readings of batches, or whole messages)",
                                  value=c.received)
        accepted = CounterMetricFamily("vitals_ingest_accepted", "Entries forwarded to Kafka",
                                       labels=["record"])
        accepted.add_metric(["reading"], c.accepted)
        accepted.add_metric(["status"], c.statuses)
        yield accepted
        yield CounterMetricFamily("vitals_ingest_duplicates",
                                  "Readings recognised as already forwarded", value=c.duplicates)
        rejected = CounterMetricFamily("vitals_ingest_rejected",
                                       "Entries sent to vitals.rejected", labels=["reason"])
        for reason, n in sorted(c.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield GaugeMetricFamily("vitals_ingest_unacked_messages",
                                "MQTT messages waiting for Kafka before they are acknowledged",
                                value=self.pending())
