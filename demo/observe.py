"""What the pipeline said, read back from Kafka as any downstream consumer would: every alert
event on `vitals.alerts` and every trend point on `vitals.trends`, per patient. The report is
scored on these, so it judges the running pipeline, not a re-run of the engine.

The canary's events (CONTRACT section 7) are on `vitals.alerts` too; they are no patient's and
not the cohort's traffic, so they are only counted as round trips: they never join the
patients' runs, and they do not keep the pipeline from looking quiet once the cohort is done."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import msgspec
from confluent_kafka import Consumer, KafkaError

from evaluation.run import PatientRun
from stream_rules.engine import Output
from vitals import topics
from vitals.kafka import reader_config
from vitals.records import AlertEvent, TrendPoint


class Observer:
    """A Kafka consumer on its own thread; read the fields under `lock`."""

    def __init__(self, bootstrap: str, canary_patient: str | None = None) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, PatientRun] = defaultdict(PatientRun)
        self.latest: dict[str, TrendPoint] = {}
        self.alerts = 0
        self.canary_patient = canary_patient
        self.canary_rounds = 0  # canary events seen: round trips through the whole path
        self.canary_last_s: float | None = None  # the last one's seconds, published -> here
        self.last_message = time.monotonic()  # wall clock: when the pipeline last said anything
        self._stop = threading.Event()
        self._consumer = Consumer(reader_config(bootstrap, "vitals-demo"))
        self._consumer.subscribe([topics.ALERTS.name, topics.TRENDS.name])
        self._thread = threading.Thread(target=self._loop, name="observer", daemon=True)
        self._alert = msgspec.json.Decoder(AlertEvent)
        self._trend = msgspec.json.Decoder(TrendPoint)

    def start(self) -> Observer:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, 0.2):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"demo observer: {msg.error()}")
                    continue
                with self.lock:
                    if msg.topic() == topics.ALERTS.name:
                        a = self._alert.decode(msg.value())
                        if a.patient_id == self.canary_patient:
                            self.canary_rounds += 1
                            self.canary_last_s = max(0.0, time.time() - a.start / 1000)
                            continue
                        self.alerts += 1
                        self.runs[a.patient_id].add(Output(alerts=[a]))
                    else:
                        t = self._trend.decode(msg.value())
                        if t.patient_id == self.canary_patient:
                            continue  # no patient's, should the rules ever keep some
                        self.runs[t.patient_id].add(Output(trends=[t]))
                        self.latest[t.patient_id] = t
                    self.last_message = time.monotonic()

    def quiet_for(self) -> float:
        with self.lock:
            return time.monotonic() - self.last_message

    def canary(self) -> tuple[int, float | None]:
        """The canary's round trips seen so far, and the last one's seconds (None: none yet)."""
        with self.lock:
            return self.canary_rounds, self.canary_last_s

    def judged_until(self) -> int:
        """The newest minute of event time the rules have judged, over all patients."""
        with self.lock:
            return max((t.ts for t in self.latest.values()), default=0)

    def stop(self) -> None:
        """Stop reading and close the consumer; again, nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
