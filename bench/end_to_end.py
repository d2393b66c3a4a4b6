"""End to end: devices -> Mosquitto -> `vitals ingest` -> tansu -> `vitals rules` workers ->
`vitals alerting` -> a local PagerDuty stand-in, every service its own process
(harness.stack). At each offered load (default 1k, 5k and 10k readings/s) it measures the
readings/s the pipeline sustains and the latency from the MQTT publish of the reading that
makes a paging rule fire to the PagerDuty request.

    .venv/bin/python -m bench.end_to_end [--rates 1000,5000,10000] [--seconds 40]
                                         [--patients 200] [--publishers 2] [--probe-every 0.5]
                                         [--rules-workers 2] [--runs 3]

- Load (bench/e2e_traffic.py): a cohort of `--patients` with an oximeter (1 reading per event
  second) and a thermometer (every 5 min), replayed at the speed that offers the rate, healthy
  (no rule fires for them), from `--publishers` processes, QoS 1.
- Sustained readings/s: readings judged by the rules workers per second while the level runs,
  from their `/metrics` (`vitals_rules_readings_judged_total`, summed; committed offsets move
  only at the workers' checkpoints, every 30 s), measured between the first and last change
  seen in the level. A level is kept up when that is >= 95 % of
  the rate actually published and every reading was judged within 5 s of the last publish.
- Latency (bench/e2e_probes.py): every `--probe-every` s a fresh patient's thermometer history
  is published, then the one reading that makes `fever` fire (found by running the pure engine
  offline on the same readings); latency runs from that reading's publish call to the trigger
  arriving at the stand-in. Percentiles are nearest-rank over the level's probes.
- Rules workers (`--rules-workers`, default 2, one per core): one consumer group sharing the
  8 partitions, as a deployment scales them. One worker spends most of its time in Faust's
  per-message overhead, on one core; two halve the latency at 5k readings/s.
- Raw ceiling: before the services start, one paho publisher to one paho subscriber through
  the same Mosquitto (`bench.ingest_throughput.raw_ceiling`, readings of the same shape), so
  that the highest level kept up can be set against what MQTT alone carries on the machine
  that day.
- Runs (`--runs`, default 3): the whole run again, each with a new stack; at the end, per
  level, the worst and the median of the runs (a target is met when the worst run meets it),
  and the highest level kept up / raw ceiling, worst and median.
- Targets on the 2-core machine (issue #15): kept up at 10,000 readings/s offered, p99
  publish -> page <= 1 s at 5,000/s, highest level kept up / raw ceiling >= 0.6. The
  publishers, brokers, services and this process all share the two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.e2e_probes import (
    INFUSION,
    TEAM,
    AlertWatcher,
    Probe,
    ProbeRunner,
    plan,
    plan_report,
    span_ms,
)
from bench.e2e_summary import print_summary, summarise, worst
from bench.e2e_traffic import Level, LoadPublishers, speed_for
from bench.ingest_throughput import payloads, raw_ceiling
from bench.procstats import cpu_seconds, peak_rss_mib
from bench.readings import topic_bytes
from bench.report import split_text
from harness.pagerduty import PagerDutyStandIn
from harness.servers import tail
from harness.stack import Stack
from stream_rules.config import load_rules
from stream_rules.faust_app import CHANGELOG

PARTITIONS = 8
ROUTING_KEY = "e2ebe0c4a1b2c3d4e5f60718293a4b5c"  # 32 characters, as PagerDuty requires
KEPT_UP_SHARE = 0.95
DRAIN_OK_S = 5.0
WARM_S = 3.0  # skipped at the start of a level before rates are measured
CEILING_MESSAGES = 60_000  # the raw ceiling's messages (~4 s at ~15,000 msg/s)


@dataclass(frozen=True)
class Sample:
    t: float
    received: int  # entries ingest received
    accepted: int  # readings ingest forwarded to Kafka (confirmed)
    judged: int  # records the rules workers have judged
    unacked: int = 0  # MQTT messages ingest holds until Kafka confirms their records


class Monitor:
    """Samples ingest's and the rules workers' counters every 0.2 s."""

    def __init__(self, stack: Stack) -> None:
        self.samples: list[Sample] = []
        self._metrics = f"http://{stack.metrics_addr}/metrics"
        self._rules = [f"http://{addr}/metrics" for addr in stack.rules_metrics.values()]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-monitor")
        self._thread.start()

    def _ingest(self) -> tuple[int, int, int]:
        wanted = {"vitals_ingest_entries_received_total": 0,
                  'vitals_ingest_accepted_total{record="reading"}': 0,
                  "vitals_ingest_unacked_messages": 0}
        with urllib.request.urlopen(self._metrics, timeout=5) as r:
            for line in r.read().decode().splitlines():
                name, _, value = line.rpartition(" ")
                if name in wanted:
                    wanted[name] = int(float(value))
        received, accepted, unacked = wanted.values()
        return received, accepted, unacked

    def _judged(self) -> int:
        total = 0
        for url in self._rules:
            with urllib.request.urlopen(url, timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("vitals_rules_readings_judged_total "):
                        total += int(float(line.rpartition(" ")[2]))
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(Exception):  # a slow answer under load: the next sample
                received, accepted, unacked = self._ingest()
                judged = self._judged()
                self.samples.append(Sample(time.time(), received, accepted, judged, unacked))

    @property
    def last(self) -> Sample:
        return self.samples[-1] if self.samples else Sample(0, 0, 0, 0)

    def rate(self, attr: str, t0: float, t1: float) -> float | None:
        """Per second between the first and the last change of `attr` in [t0, t1]."""
        pts = [(s.t, getattr(s, attr)) for s in self.samples if t0 <= s.t <= t1]
        changes = [pts[i] for i in range(1, len(pts)) if pts[i][1] != pts[i - 1][1]]
        if len(changes) < 2 or changes[-1][0] <= changes[0][0]:
            return None
        (ta, va), (tb, vb) = changes[0], changes[-1]
        return (vb - va) / (tb - ta)

    def wait(self, done: Any, timeout: float) -> float | None:
        """Seconds until `done(sample)` holds, or None after `timeout`."""
        start = time.time()
        while time.time() - start < timeout:
            if self.samples and done(self.last):
                return self.last.t - start
            time.sleep(0.05)
        return None

    def close(self, csv: Path | None = None) -> None:
        self._stop.set()
        self._thread.join(10)
        if csv is not None:
            csv.write_text("t,received,accepted,judged,unacked\n" + "".join(
                f"{s.t:.3f},{s.received},{s.accepted},{s.judged},{s.unacked}\n"
                for s in self.samples))


def self_cpu() -> float:
    """CPU seconds of this process: probes, the PagerDuty stand-in, the monitor."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def write_files(work: Path, ids: list[str]) -> tuple[Path, Path]:
    patients = work / "patients.yaml"
    patients.write_text("patients:\n" + "".join(
        f"  - {{id: {pid}, infusion: {INFUSION}, team: {TEAM}}}\n" for pid in ids))
    oncall = work / "oncall.yaml"
    oncall.write_text(f"targets: {{nurse: {{pagerduty: {ROUTING_KEY}}}}}\n"
                      f"teams: {{{TEAM}: {{escalation: [{{after_min: 0, notify: [nurse]}}]}}}}\n")
    return patients, oncall


class Run:
    """One benchmark run: the stack, the stand-in, the probes, and the levels in turn."""

    def __init__(self, work: Path, rates: list[float], seconds: float, patients: int,
                 publishers: int, probe_every: float, rules_workers: int = 2) -> None:
        self.work, self.rates, self.seconds, self.publishers = work, rates, seconds, publishers
        self.rules_workers = rules_workers
        self.probe_every = probe_every
        self.cohort = [f"L{i:05d}" for i in range(patients)]
        per_level = int(max(seconds - WARM_S - 1, 0) / probe_every) + 1
        self.probe_ids = [[f"P{li}x{k:04d}" for k in range(per_level)]
                          for li in range(len(rates))]
        # report probes, half a probe interval after each vital-sign probe
        self.report_ids = [[f"R{li}x{k:04d}" for k in range(per_level)]
                           for li in range(len(rates))]
        patients_file, oncall = write_files(
            work, self.cohort + ["W0000"] + [p for ids in self.probe_ids + self.report_ids
                                             for p in ids])
        self.rules = load_rules(None)
        self.runner = ProbeRunner(0)
        self.standin = PagerDutyStandIn(on_event=self.runner.on_event).start()
        # No canary here: its readings would count in the readings measured. Without one,
        # alerting's canary watch would page the operators after 3 minutes, a page this
        # benchmark would count as unexpected; the canary has its own tests.
        self.stack = Stack(work / "stack", patients=patients_file, oncall=oncall,
                           pagerduty_url=self.standin.url, partitions=PARTITIONS,
                           extra_env={"canary_late_s": "86400"})
        self.published = 0  # every MQTT message published so far (one reading each)
        self.monitor: Monitor | None = None
        self.watcher: AlertWatcher | None = None
        self.raw_ceiling: float | None = None  # msg/s, this run's Mosquitto

    def start(self) -> None:
        self.stack.start_brokers()
        self.runner.port = self.stack.mqtt_port
        # before any service: MQTT alone, on this run's broker (its topics are not ingest's)
        self.raw_ceiling = raw_ceiling(self.stack.mqtt_port, payloads(
            CEILING_MESSAGES, len(self.cohort), 1, int(time.time() * 1000)))
        print(f"  raw MQTT ceiling (one paho publisher -> one subscriber, QoS 1): "
              f"{self.raw_ceiling:,.0f} msg/s", flush=True)
        self.stack.start("ingest")
        for i in range(1, self.rules_workers + 1):
            self.stack.start("rules", "rules" if i == 1 else f"rules-{i}", timeout=120)
        self.stack.start("alerting")
        self.monitor = Monitor(self.stack)
        self.watcher = AlertWatcher(self.stack.bootstrap, self.runner.probes)
        # warm-up: one probe through the whole pipeline (consumer groups joined, paths warm)
        probe = plan("W0000", time.time() + self.runner.lead_s + 0.5, self.rules)
        self.runner.run([probe]).join()
        self.published += len(probe.readings)
        deadline = time.time() + 120
        while probe.paged is None:
            if time.time() > deadline:
                raise RuntimeError("the warm-up probe was not paged within 120 s: "
                                   + self.logs())
            time.sleep(0.1)

    def logs(self) -> str:
        return " || ".join(f"{n}: {tail(s.log, 3)}" for n, s in self.stack.services.items())

    def pids(self) -> dict[str, int]:
        out = {n: s.pid for n, s in self.stack.services.items()}
        for name, server in (("mosquitto", self.stack.mosquitto), ("tansu", self.stack.kafka)):
            if server is not None and server.proc is not None:
                out[name] = server.proc.pid
        return out

    def _monitor(self) -> Monitor:
        if self.monitor is None:
            raise RuntimeError("start() first")
        return self.monitor

    def level(self, li: int, rate: float, event_start_ms: int) -> dict[str, Any]:
        mon = self._monitor()
        speed = speed_for(rate, len(self.cohort))
        start = time.time() + 3.0  # the publishers start and connect meanwhile
        lv = Level(rate, self.seconds, start, event_start_ms, speed)
        probes = [plan(pid, start + WARM_S + k * self.probe_every, self.rules)
                  for k, pid in enumerate(self.probe_ids[li])]
        probes += [plan_report(pid, start + WARM_S + (k + 0.5) * self.probe_every)
                   for k, pid in enumerate(self.report_ids[li])]
        cpu0 = {n: cpu_seconds(p) for n, p in self.pids().items()}
        cpu0["bench"] = self_cpu()
        before = mon.last
        pubs = LoadPublishers(self.stack.mqtt_port, self.cohort, lv, self.publishers)
        prober = self.runner.run(probes)
        try:
            done = pubs.join(timeout=self.seconds * 3 + 60)
        finally:
            pubs.kill()
        prober.join(30)
        end = max(d.last for d in done)
        used = {n: cpu_seconds(p) for n, p in self.pids().items()}
        used["bench"] = self_cpu()
        cpu = {n: round((used[n] - cpu0[n]) / (end - start), 2) for n in used}
        cpu["publishers"] = round(sum(d.cpu_s for d in done) / (end - start), 2)
        load = sum(d.messages for d in done)
        self.published += load + sum(len(p.readings) for p in probes)
        first = min(d.first for d in done)

        # drained: ingest has received every message (and counted each reading as accepted
        # or not in the same step), and the worker has judged every accepted reading
        expected = self.published
        waited = mon.wait(lambda s: s.received >= expected and s.judged >= s.accepted,
                                   max(60.0, self.seconds * 3))
        drained = None if waited is None else mon.last.t - end
        deadline = time.time() + 30
        while any(p.paged is None for p in probes) and time.time() < deadline:
            time.sleep(0.1)
        after = mon.last
        refused = (after.received - after.accepted) - (before.received - before.accepted)
        return {**self._summary(lv, probes, load, first, end, drained, cpu,
                                max(d.behind_s for d in done)), "not_accepted": refused}

    def _summary(self, lv: Level, probes: list[Probe], load: int, first: float, end: float,
                 drained: float | None, cpu: dict[str, float], behind: float) -> dict[str, Any]:
        mon = self._monitor()
        t0 = lv.start + WARM_S
        offered = load / max(end - first, 1e-9)
        judged = mon.rate("judged", t0, end + 1.0)
        at_end = [s for s in mon.samples if s.t <= end]
        backlog = at_end[-1].accepted - at_end[-1].judged if at_end else None
        reports = [p.latency_ms for p in probes if p.report and p.latency_ms is not None]
        probes = [p for p in probes if not p.report]
        lat = [p.latency_ms for p in probes if p.latency_ms is not None]
        # where the time went: publish -> alert on Kafka -> page
        split = {name: [v for p in probes if (v := span_ms(getattr(p, a), getattr(p, b)))
                        is not None]
                 for name, a, b in (("rules", "published", "alerted"),
                                    ("alerting", "alerted", "paged"))}
        early = sum(1 for v in lat if v < 0)
        kept_up = bool(judged is not None and judged >= KEPT_UP_SHARE * offered
                       and drained is not None and drained <= DRAIN_OK_S)
        return {
            "offered": lv.rate, "speed": round(lv.speed, 2),
            "published_per_s": round(offered), "publisher_behind_s": round(behind, 2),
            "ingested_per_s": _round(mon.rate("accepted", t0, end)),
            "sustained_per_s": _round(judged), "backlog_at_end": backlog,
            "drained_s": None if drained is None else round(drained, 1), "kept_up": kept_up,
            "probes": len(probes), "paged": len(lat), "paged_before_tip": early,
            "p50_ms": _round(pct(lat, 50)), "p99_ms": _round(pct(lat, 99)),
            "max_ms": _round(max(lat) if lat else None),
            # a report (a seizure check-in) -> its page
            "reports": len(reports), "report_p50_ms": _round(pct(reports, 50)),
            "report_p99_ms": _round(pct(reports, 99)),
            "split_ms": {name: [_round(pct(v, 50)), _round(pct(v, 99))]
                         for name, v in split.items()}, "cores": cpu}

    def run(self) -> list[dict[str, Any]]:
        spans = [int(self.seconds * speed_for(r, len(self.cohort))) * 1000 for r in self.rates]
        # event time starts in the past by everything the levels will replay, and a margin
        cursor = int(time.time() * 1000) - sum(spans) - 10 * 60_000
        out = []
        for li, rate in enumerate(self.rates):
            result = self.level(li, rate, cursor)
            out.append(result)
            print_level(result)
            cursor += spans[li]
        return out

    def close(self) -> dict[str, float]:
        rss = {}
        for name, pid in self.pids().items():
            with contextlib.suppress(OSError):
                rss[name] = round(peak_rss_mib(pid))
        if self.monitor is not None:
            self.monitor.close(self.work / "samples.csv")
        if self.watcher is not None:
            self.watcher.close()
        self.stack.close()
        self.standin.stop()
        return rss


def _round(x: float | None) -> int | None:
    return None if x is None else round(x)


def _fmt(x: object) -> str:
    if x is None:
        return "-"
    return f"{x:,}" if isinstance(x, int) else str(x)


HEADER = ("offered/s", "published/s", "ingested/s", "sustained/s", "backlog", "drained s",
          "kept up", "paged", "p50 ms", "p99 ms", "max ms")


def print_level(r: dict[str, Any]) -> None:
    cells = (int(r["offered"]), r["published_per_s"], r["ingested_per_s"], r["sustained_per_s"],
             r["backlog_at_end"], r["drained_s"], "yes" if r["kept_up"] else "NO",
             f"{r['paged']}/{r['probes']}", r["p50_ms"], r["p99_ms"], r["max_ms"])
    print("  " + " ".join(f"{_fmt(c):>12}" for c in cells), flush=True)
    cores = ", ".join(f"{n} {c}" for n, c in r["cores"].items())
    notes = [f"{r['paged_before_tip']} PAGED BEFORE THE TIP"] if r["paged_before_tip"] else []
    if r["not_accepted"]:
        notes.append(f"{r['not_accepted']} readings not accepted by ingest")
    print(f"  {'':>12} latency p50 / p99 ms: {split_text(r['split_ms'])}", flush=True)
    print(f"  {'':>12} report -> page: {r['reports']} reports, p50 {_fmt(r['report_p50_ms'])} "
          f"ms, p99 {_fmt(r['report_p99_ms'])} ms", flush=True)
    print(f"  {'':>12} speed x{r['speed']}, publishers up to {r['publisher_behind_s']} s behind;"
          f" cores used: {cores}" + "".join(f"; {n}" for n in notes), flush=True)


def run(rates: tuple[float, ...] = (1000, 5000, 10000), seconds: float = 40,
        patients: int = 200, publishers: int = 2, probe_every: float = 0.5,
        workdir: Path | None = None, rules_workers: int = 2, runs: int = 3) -> dict[str, Any]:
    """`runs` runs of the levels, then the worst and the median of each level; `workdir`
    keeps the services' logs there (a temporary directory otherwise). `levels` in the result
    holds each level's worst run (not kept up first, then the highest p99)."""
    results = []
    for number in range(1, runs + 1):
        if runs > 1:
            print(f"run {number} of {runs}", flush=True)
        results.append(run_once(rates, seconds, patients, publishers, probe_every,
                                None if workdir is None else workdir / f"run-{number}",
                                rules_workers))
    summary = summarise(results)
    print_summary(summary)
    return {**results[0], "levels": [worst(lv) for lv in zip(
        *(r["levels"] for r in results), strict=True)],
        "changelog_bytes_per_reading": max(r["changelog_bytes_per_reading"] for r in results),
        "raw_ceiling_msg_per_s": min(r["raw_ceiling_msg_per_s"] for r in results),
        "runs": results, "summary": summary}


def run_once(rates: tuple[float, ...], seconds: float, patients: int, publishers: int,
             probe_every: float, workdir: Path | None, rules_workers: int) -> dict[str, Any]:
    """One run: a new stack, the raw ceiling, the levels."""
    print(f"end to end: MQTT publish -> ingest -> tansu -> {rules_workers} rules worker(s) -> "
          f"alerting -> PagerDuty stand-in; {patients} patients, {publishers} publishers, "
          f"{seconds:g} s "
          f"per level, a probe every {probe_every:g} s; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with contextlib.ExitStack() as cleanup:
        if workdir is None:
            workdir = Path(cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="vitals-bench-e2e-")))
        workdir.mkdir(parents=True, exist_ok=True)
        r = Run(workdir, list(rates), seconds, patients, publishers, probe_every,
                rules_workers)
        rss: dict[str, float] = {}
        try:
            r.start()
            print("  " + " ".join(f"{h:>12}" for h in HEADER), flush=True)
            levels = r.run()
            # what the rules workers wrote to their state changelog, per reading (issue #15)
            state_records, state_bytes = topic_bytes(r.stack.bootstrap, CHANGELOG)
        finally:
            rss = r.close()
        other = len(r.runner.other_pages)
    print(f"  peak RSS MiB: {', '.join(f'{n} {v:g}' for n, v in rss.items())}"
          + (f"; {other} pages for non-probe patients (expected none)" if other else ""))
    per_reading = state_bytes / max(r.published, 1)
    print(f"  state changelog: {per_reading:.0f} B per reading published ({state_records:,} "
          f"writes, {state_bytes / 2**20:.1f} MiB; target <= 64 B, issue #15)")
    return {"patients": patients, "publishers": publishers, "rules_workers": rules_workers,
            "seconds": seconds,
            "probe_every": probe_every, "levels": levels, "peak_rss_mib": rss,
            "other_pages": other, "changelog_bytes_per_reading": round(per_reading, 1),
            "raw_ceiling_msg_per_s": round(r.raw_ceiling or 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="1000,5000,10000",
                    help="offered readings/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=40, help="per level")
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--probe-every", type=float, default=0.5)
    ap.add_argument("--workdir", type=Path, help="keep the services' logs here")
    ap.add_argument("--rules-workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="the worst and the median are printed")
    args = ap.parse_args()
    run(tuple(float(x) for x in args.rates.split(",")), args.seconds, args.patients,
        args.publishers, args.probe_every, args.workdir, args.rules_workers, args.runs)


if __name__ == "__main__":
    main()
