"""The rules worker's counters on `/metrics` (Prometheus text), at `VITALS_RULES_METRICS_ADDR`:
what it has judged and sent, and what its checkpoints wrote. The benchmarks read the judged
count to measure progress: committed offsets move only at checkpoints. Its last progress and
the records waiting (`vitals_rules_last_progress_seconds`, `vitals_rules_pending`) come from
`vitals.progress`, like every stage's."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from stream_rules.batch import Judge

# (metric, help, the Judge's attribute)
COUNTERS = (
    ("vitals_rules_readings_judged",
     "Records judged (readings and device statuses), repeats after a restart included",
     "readings"),
    ("vitals_rules_alert_events", "Alert events sent", "alerts"),
    ("vitals_rules_bad_records", "Records that were not readings, sent to vitals.rejected",
     "bad_records"),
    ("vitals_rules_records_dropped",
     "Records delivered again and not judged: before the position written with the states, "
     "or fetched before a rebalance", "redelivered"),
    ("vitals_rules_checkpoints", "Checkpoints taken (states written)", "checkpoints"),
    ("vitals_rules_state_bytes", "Bytes of patient state written to the state table",
     "state_bytes"),
)


class JudgeCollector(Collector):
    """Reads the `Judge`'s counters at each scrape (no second bookkeeping)."""

    def __init__(self, judge: Judge) -> None:
        self.judge = judge

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, text, attribute in COUNTERS:
            yield CounterMetricFamily(name, text, value=getattr(self.judge, attribute))
