"""`vitals demo`: the whole pipeline on embedded defaults, in one command.

1. A seeded cohort (about 20 patients, two weeks) with its truth, and the files the services
   read: the cohort's patients file and an on-call file (the embedded one, resolves not held).
2. Mosquitto and tansu on free loopback ports; `vitals ingest`, two `vitals rules` workers,
   `vitals alerting` (and `vitals store` when VITALS_INFLUX_URL is set) and `vitals canary` as
   separate processes; a local stand-in for PagerDuty that shows each page; a simulated nurse
   who acknowledges.
3. The cohort published over MQTT, two weeks compressed into 101 s, with a live
   view; then a wait until the pipeline has caught up.
4. The report, scored on what the pipeline put on `vitals.alerts`, written while every
   process stops; every process is stopped also on Ctrl-C.
"""

from __future__ import annotations

import functools
import secrets
import shutil
import signal
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live

from alerting.oncall import OnCall
from demo import report, view
from demo.nurse import Nurse
from demo.observe import Observer
from evaluation.run import desat_onsets
from harness.pagerduty import Event, PagerDutyStandIn
from harness.stack import Stack
from simulators import cohort, stream
from simulators import truth as truth_
from simulators.plan import DAY, MINUTE, Simulation
from simulators.publish import Publisher, pace, prefetch
from simulators.run import default_start
from stream_rules.config import load_rules
from vitals.configfile import embedded, load_model
from vitals.settings import MQTT_SCHEMES, Settings, load_settings, parse_endpoint

# Two weeks in 101 s of playback: with the catch-up after it, within the 2 minutes that issue #15
# asks of the demo on a quiet machine (1-2 s of catch-up at this pace on 2026-12-02; at 10,000x
# playback alone took 121 s).
DEFAULT_SPEED = 12_000.0
OX_INTERVAL = MINUTE  # a minute's summary per oximeter keeps two weeks of 20 patients light
# The pipeline has caught up when it has judged to within the rules' lateness (plus
# CAUGHT_UP_SLACK_MS) of the last message published (the minutes after that wait for readings
# that never come), no rules worker has records waiting, and it has said nothing for QUIET_S;
# while a worker's count cannot be read, for QUIET_UNKNOWN_S. Quiet alone is not enough: the
# rules workers may still be joining their group when a short cohort's publishing ends.
QUIET_S = 2.0
QUIET_UNKNOWN_S = 5.0
CAUGHT_UP_SLACK_MS = 5 * MINUTE
DRAIN_LIMIT_S = 600.0
ACK_NOTIFIED_S = 1.0  # after the nurse's last acknowledgement, for alerting to tell PagerDuty
# The canary's period in the demo: a round trip every few seconds shows in a two-minute run
# (the default of 30 s would show a handful), and costs the pipeline nothing measurable.
CANARY_EVERY_S = 5.0
# Two weeks in two minutes may leave the rules minutes behind, which the demo waits out (up
# to DRAIN_LIMIT_S); the canary's readings wait in the same queue. Only a pipeline stuck for
# longer than the demo would wait pages the operators.
CANARY_LATE_S = DRAIN_LIMIT_S

# Two rules workers split the patients (by partition): judging is most of the demo's work, and
# one worker alone left the second core idle while the pipeline caught up.
RULES_WORKERS = (("rules", "rules"), ("rules", "rules-2"))


@dataclass
class Options:
    patients: int = 20
    days: float = 14
    seed: int = 1
    speed: float = DEFAULT_SPEED
    auto_ack: float | None = 2.0
    out: Path = Path("demo-report")
    keep: bool = False
    start: int | None = None  # epoch ms; None: the cohort ends now


DEMO_NURSES = ("nurse-alice", "nurse-bob", "nurse-carol")


def oncall_file(path: Path) -> OnCall:
    """The embedded on-call file with `resolve_hold_min: 0`: at thousands of times real time a
    wall-clock hold of 5 minutes would outlast the whole demo, so no page would ever resolve.
    The embedded file has no API tokens (a public file holds no secret): each run gets fresh
    random ones (bare strings: nurses, who may read, acknowledge and resolve)."""
    doc = yaml.safe_load(embedded("oncall.yaml").read_text())
    doc["paging"]["resolve_hold_min"] = 0
    doc["tokens"] = {name: secrets.token_urlsafe(24) for name in DEMO_NURSES}
    path.write_text("# vitals demo: the embedded on-call file, resolves not held\n"
                    + yaml.safe_dump(doc, sort_keys=False))
    return load_model(OnCall, path, "VITALS_ONCALL")


def store_line(settings: Settings) -> str:
    if settings.influx_url:
        return (f"Readings, trends and alerts were also written to InfluxDB at "
                f"{settings.influx_url} (bucket {settings.influx_bucket}) by `vitals store`.")
    return ("The series were not stored: VITALS_INFLUX_URL is not set, so they stayed on the "
            "demo's Kafka topics (gone with it) and in this report's plots.")


class Demo:
    def __init__(self, opts: Options, console: Console) -> None:
        self.opts, self.console = opts, console
        self.settings = load_settings()
        self.stop = threading.Event()
        self.workdir = Path(tempfile.mkdtemp(prefix="vitals-demo-"))
        duration = round(opts.days * DAY)
        self.sim: Simulation = cohort.generate(opts.patients, opts.seed, opts.days,
                                               opts.start or default_start(duration),
                                               OX_INTERVAL)
        self.published_until = 0
        self.readings = 0
        self.messages = 0
        self.pages = view.Pages()
        self.phase = "publishing"  # what the live view says the demo is doing

    def run(self) -> Path:
        o, console, w = self.opts, self.console, self.workdir
        # SIGTERM (a supervisor, `timeout`) and SIGHUP (the terminal closed) stop the demo as
        # Ctrl-C does: every process it started stops, and the report is still written.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _as_ctrl_c)
        patients = w / "patients.yaml"
        cohort.write_patients(self.sim, patients)
        oncall = oncall_file(w / "oncall.yaml")
        s = self.settings
        # settings by name, as `Stack.env` takes them
        extra = {"influx_token": s.influx_token, "influx_org": s.influx_org,
                 "influx_bucket": s.influx_bucket} if s.influx_url else {}
        extra |= {"canary_patient": s.canary_patient, "canary_every_s": str(CANARY_EVERY_S),
                  "canary_late_s": str(CANARY_LATE_S)}
        nurse: Nurse | None = None

        def on_event(e: Event) -> None:
            self.pages.add(e)
            if not console.is_terminal:  # a log, not a screen: one line per page instead
                console.print(view.page_line(e, self.pages), soft_wrap=True)
            if nurse is not None:
                nurse.paged(e)

        standin = PagerDutyStandIn(on_event).start()
        # the topics as deployed (VITALS_KAFKA_PARTITIONS, 8): murmur2 spreads the cohort's 20
        # patients 10/10 over the two rules workers' partitions (over 4: 14/6, and the busier
        # worker caught up alone while the other core sat idle)
        stack = Stack(w, patients=patients, oncall=w / "oncall.yaml",
                      pagerduty_url=standin.url, influx_url=s.influx_url, extra_env=extra,
                      partitions=s.kafka_partitions)
        observer: Observer | None = None
        try:
            with console.status("starting Mosquitto, tansu, ingest, rules, alerting ...") as st:
                stack.start_brokers()
                st.update(f"starting vitals ingest, rules x{len(RULES_WORKERS)}, alerting"
                          f"{', store' if s.influx_url else ''} ...")
                stack.start_together((("ingest", "ingest"), *RULES_WORKERS,
                                      ("alerting", "alerting"),
                                      *((("store", "store"),) if s.influx_url else ())),
                                     timeout=120)
                st.update("starting vitals canary ...")  # once ingest has subscribed
                stack.start("canary")
            console.print(f"[green]running[/]: Mosquitto :{stack.mqtt_port}, tansu "
                          f"{stack.bootstrap}, ingest, rules x{len(RULES_WORKERS)}, alerting"
                          f"{', store' if s.influx_url else ''}, canary every "
                          f"{CANARY_EVERY_S:g} s (logs in {w})")
            if not s.influx_url:
                console.print("series: not stored (set VITALS_INFLUX_URL to run `vitals store`"
                              "); they stay on the demo's Kafka topics and in the report")
            nurse = Nurse(stack.alerting_url, oncall, o.auto_ack).start()
            observer = Observer(stack.bootstrap, s.canary_patient).start()
            return self._play(stack, observer, nurse, standin)
        finally:
            # a second Ctrl-C must not cut the clean-up short and leave servers running
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            with console.status("stopping every process ..."):
                for part in (nurse, observer):
                    if part is not None:
                        part.stop()
                stack.close()
                standin.stop()
            if not o.keep:
                shutil.rmtree(w, ignore_errors=True)

    def _play(self, stack: Stack, observer: Observer, nurse: Nurse,
              standin: PagerDutyStandIn) -> Path:
        """Publish the cohort under a live view until the pipeline has caught up (or Ctrl-C),
        then write the report."""
        opts, sim = self.opts, self.sim
        cohort_stream = stream.Stream(sim, line=False)
        token = next(iter(nurse.oncall.tokens.values()), "")

        def frame() -> view.Group:
            return view.render(sim, self.published_until, self.readings,
                               observer.judged_until(), dict(observer.latest), self.pages,
                               f"{stack.alerting_url}/", token, opts.auto_ack, self.phase,
                               observer.canary())

        with Live(frame(), console=self.console, refresh_per_second=4,
                  get_renderable=frame, transient=False):
            publish_s, drain_s, interrupted = self._publish_and_drain(stack, observer, nurse,
                                                                      cohort_stream)
        self.console.print()
        self.phase = "report"
        live = report.LiveRun(sim.source, opts.speed, publish_s, self.messages,
                              cohort_stream.readings, drain_s, interrupted,
                              store_line(self.settings), len(RULES_WORKERS))
        # Nothing more is awaited: the services stop (~3 s) while the report is written.
        # The observer first, which would take tansu's going for an error.
        nurse.stop()
        observer.stop()
        stopping = threading.Thread(target=stack.close, name="stopping", daemon=True)
        stopping.start()
        try:
            return self._report(cohort_stream, observer, nurse, standin, live)
        finally:
            stopping.join()

    def _publish_and_drain(self, stack: Stack, observer: Observer, nurse: Nurse,
                           cohort_stream: stream.Stream) -> tuple[float, float, bool]:
        """Publish over MQTT at the demo's speed, wait for the pipeline to catch up and for
        the nurse's last acks; returns the seconds publishing, the seconds catching up, and
        whether Ctrl-C cut it short."""
        opts = self.opts
        interrupted = False
        publish_s = drain_s = 0.0
        try:
            endpoint = parse_endpoint(f"mqtt://127.0.0.1:{stack.mqtt_port}", MQTT_SCHEMES)
            with Publisher(endpoint, "vitals-demo-devices") as publisher:
                paced = pace(self._items(cohort_stream), publisher, opts.speed,
                             t0=self.sim.start, every=500,
                             progress=functools.partial(self._progress, cohort_stream))
            self.messages, publish_s = paced.published, paced.seconds
            self.phase = "catching up"
            lateness_ms = round(load_rules(self.settings.rules).evaluation.lateness_s * 1000)
            drain_s = self._wait_until_caught_up(
                observer, self.published_until - lateness_ms - CAUGHT_UP_SLACK_MS,
                functools.partial(rules_pending, list(stack.rules_metrics.values())))
            nurse.settle(ACK_NOTIFIED_S, (opts.auto_ack or 0) + 5)  # the nurse's last acks
        except KeyboardInterrupt:
            interrupted = True
            self.stop.set()
            self.phase = "interrupted"
        return publish_s, drain_s, interrupted

    def _items(self, cohort_stream: stream.Stream) -> Iterator[tuple[int, str, bytes]]:
        """The stream's messages as (time, topic, payload), until the demo is stopped."""
        topics = cohort_stream.topics
        for batch in prefetch(cohort_stream.batches()):
            for at, device, item in zip(batch.at.tolist(), batch.dev.tolist(), batch.items,
                                        strict=True):
                if self.stop.is_set():
                    return
                yield at, topics[device], item.encode()

    def _progress(self, cohort_stream: stream.Stream, messages: int, at: int) -> None:
        """Publishing progress for the live view; in a log, one line per simulated day."""
        start, until = self.sim.start, self.published_until
        a_new_day = (at - start) // DAY > (until - start) // DAY >= 0 and until
        if not self.console.is_terminal and a_new_day:
            self.console.print(f"published day {(at - start) // DAY} of {self.opts.days:g}: "
                               f"{messages:,} messages")
        self.messages, self.published_until, self.readings = messages, at, cohort_stream.readings

    @staticmethod
    def _wait_until_caught_up(observer: Observer, judged_until: int,
                              pending: Callable[[], int | None] = lambda: None) -> float:
        """Wait until the rules have judged to `judged_until` (event time), `pending()` (the
        records the rules workers have waiting; None: not known) is 0 and the pipeline has
        said nothing for QUIET_S (QUIET_UNKNOWN_S while not known), at most DRAIN_LIMIT_S;
        returns how long it took, less the quiet."""
        started = time.monotonic()
        while time.monotonic() - started < DRAIN_LIMIT_S:
            if observer.judged_until() >= judged_until:
                waiting = pending()
                quiet = QUIET_S if waiting is not None else QUIET_UNKNOWN_S
                if not waiting and observer.quiet_for() >= quiet:
                    return max(0.0, time.monotonic() - started - quiet)
            time.sleep(0.2)
        return time.monotonic() - started

    def _report(self, cohort_stream: stream.Stream, observer: Observer, nurse: Nurse,
                standin: PagerDutyStandIn, live: report.LiveRun) -> Path:
        """The report of what the pipeline paged, scored against the simulation's truth."""
        truth = truth_.build(self.sim, cohort_stream.injected)
        with observer.lock:
            runs = dict(observer.runs)
        path = report.write(self.opts.out, live, truth, runs, desat_onsets(self.sim),
                            list(standin.events), list(nurse.acked))
        if nurse.failures:
            self.console.print(f"[red]acknowledgements that failed[/]: {nurse.failures[:3]}")
        return path


def rules_pending(addrs: list[str]) -> int | None:
    """The records the rules workers at `addrs` (host:port of their /metrics) have waiting,
    summed; None when a worker's count cannot be read."""
    total = 0
    for addr in addrs:
        try:
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=2) as r:
                text = r.read().decode()
        except (OSError, UnicodeDecodeError):
            return None
        counts = [sample.value for family in text_string_to_metric_families(text)
                  for sample in family.samples if sample.name == "vitals_rules_pending"]
        if not counts:
            return None
        total += round(counts[0])
    return total if addrs else None


def _as_ctrl_c(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run(opts: Options, console: Console) -> Path:
    return Demo(opts, console).run()
