"""What `vitals simulate` and `vitals replay` do, with their progress bars; the CLI only parses
options. Problems the user can fix (a bad option, an unreachable broker, a broken file) raise
`ConfigError`, which the CLI prints as one line."""

from __future__ import annotations

import datetime as dt
import gzip
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from simulators import cohort, stream
from simulators import plot as plot_
from simulators import truth as truth_
from simulators.plan import DAY, MINUTE, Simulation, iso
from simulators.publish import Publisher, PublishError, pace, prefetch
from vitals import trafficfile
from vitals.settings import ConfigError, Endpoint


def parse_speed(text: str) -> float | None:
    """`max` or 0: as fast as the broker takes it (None); otherwise a factor > 0."""
    if text.strip().lower() in ("max", "0", "0.0"):
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not speed > 0 or speed == float("inf"):
        raise ConfigError(f"--speed: expected a factor such as 1, 60 or 600, or max; got {text!r}")
    return speed


def parse_start(text: str) -> int:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--start: not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def default_start(duration: int, now: float | None = None) -> int:
    """Now minus the duration, floored to the minute: no event time is in the future, so
    ingest does not take the simulation for clock skew."""
    now_ms = int((time.time() if now is None else now) * 1000)
    return (now_ms - duration) // MINUTE * MINUTE


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


@dataclass
class Outcome:
    messages: int
    readings: int
    seconds: float
    truth: Path
    patients: Path
    plots: list[Path]


def connect(endpoint: Endpoint, name: str) -> Publisher:
    """The publisher, connected: an unreachable broker stops the command before it starts."""
    try:
        return Publisher(endpoint, f"vitals-{name}-{time.time_ns() % 10**9}")
    except PublishError as exc:
        raise ConfigError(f"VITALS_MQTT_URL: {exc}") from None


def simulate(sim: Simulation, out: Path | None, truth_path: Path, patients_path: Path,
             plot_dir: Path | None, speed: float | None, publisher: Publisher | None,
             chunk: int | None, console: Console) -> Outcome:
    """Generate `sim` into a traffic file (`out`) or publish it with `publisher`; then write
    the truth, the patients file and the plots."""
    cohort.write_patients(sim, patients_path)  # first: ingest needs it before the traffic
    collector = plot_.Collector(sim.start, sim.end) if plot_dir else None
    span = sim.end - sim.start
    started = time.perf_counter()
    with progress_bar(console) as bar:
        task = bar.add_task("simulate", total=span, info="")
        if out is not None:
            s = stream.Stream(sim, line=True, chunk=chunk)

            def advance(b: stream.Batch) -> None:
                bar.update(task, completed=b.until - sim.start,
                           info=f"{s.readings:,} readings  sim {iso(b.until)}")

            stream.write(s, out, advance)
            messages, readings = s.messages, s.readings
        else:
            assert publisher is not None
            s = stream.Stream(sim, line=False, chunk=chunk)
            topics = s.topics

            def items() -> Iterator[tuple[int, str, bytes]]:
                for b in prefetch(s.batches()):
                    for at, dev, item in zip(b.at.tolist(), b.dev.tolist(), b.items,
                                             strict=True):
                        payload = item.encode()
                        if collector:
                            collector.feed(trafficfile.Message(at, topics[dev], payload))
                        yield at, topics[dev], payload

            def advance(n: int, at: int) -> None:
                bar.update(task, completed=max(0, at - sim.start),
                           info=f"{n:,} messages  sim {iso(at) if at else ''}")

            try:
                paced = pace(items(), publisher, speed, t0=sim.start, progress=advance)
            except PublishError as exc:
                raise ConfigError(f"VITALS_MQTT_URL: {exc}") from None
            messages, readings = paced.published, s.readings
        bar.update(task, completed=span)
    seconds = time.perf_counter() - started
    t = truth_.build(sim, s.injected)
    truth_.dump(t, truth_path)
    plots = []
    if plot_dir:
        if collector is None or out is not None:
            collector = plot_.Collector(sim.start, sim.end)
            for m in trafficfile.read(out or Path()):
                collector.feed(m)
        plots = plot_.draw(collector, t, plot_dir, sim)
    return Outcome(messages, readings, seconds, truth_path, patients_path, plots)


def count_lines(path: Path) -> int:
    n = 0
    with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n


def replay(path: Path, speed: float | None, endpoint: Endpoint, console: Console
           ) -> tuple[int, float]:
    """Publish a traffic file again, payloads unchanged, in its order."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such traffic file")
    total = count_lines(path)
    publisher = connect(endpoint, "replay")
    line = [0]

    def items() -> Iterator[tuple[int, str, bytes]]:
        try:
            for m in trafficfile.read(path):
                line[0] += 1
                yield m.at, m.topic, m.payload
        except (msgspec.DecodeError, ValueError) as exc:
            raise ConfigError(f"{path}: line {line[0] + 1} is not a traffic-file line: {exc}"
                              ) from None

    with progress_bar(console) as bar:
        task = bar.add_task(f"replay {path.name}", total=total, info="")

        def advance(n: int, at: int) -> None:
            bar.update(task, completed=n, info=f"{n:,}/{total:,} messages  "
                                              f"event {iso(at) if at else ''}")

        try:
            with publisher:
                paced = pace(items(), publisher, speed, progress=advance)
        except PublishError as exc:
            raise ConfigError(f"VITALS_MQTT_URL: {exc}") from None
    return paced.published, paced.seconds


def command(*, scenario: Path | None, patients: int, seed: int | None, days: float,
            start: str | None, speed: str, out: Path | None, truth: Path | None,
            patients_file: Path | None, plot: Path | None, chunk_minutes: float | None
            ) -> None:
    """`vitals simulate`: build the scenario or cohort, then publish it or write it."""
    from simulators.scenario import build, load_scenario
    from vitals.settings import load_settings

    settings = load_settings()
    rate = parse_speed(speed)
    t0 = parse_start(start) if start else None
    if scenario is not None:
        model = load_scenario(scenario)
        if t0 is None and model.start is not None:
            t0 = int((model.start if model.start.tzinfo else model.start.replace(
                tzinfo=dt.UTC)).timestamp() * 1000)
        t0 = default_start(model.duration) if t0 is None else t0
        sim = build(model, t0, seed, source=f"scenario {scenario}")
    else:
        t0 = default_start(round(days * DAY)) if t0 is None else t0
        sim = cohort.generate(patients, 1 if seed is None else seed, days, t0)
    if out is not None:
        truth = truth or out.with_name(out.name + ".truth.json")
    elif truth is None:
        folder = settings.state_dir / "simulate"
        folder.mkdir(parents=True, exist_ok=True)
        truth = folder / f"{iso(sim.start).replace(':', '')}.truth.json"
    patients_file = patients_file or truth.with_name(
        truth.name.removesuffix(".truth.json").removesuffix(".json") + ".patients.yaml")
    for path in (out, truth, patients_file):
        if path is not None and not path.parent.is_dir():
            raise ConfigError(f"{path}: no such directory {path.parent}")
    publisher = None if out else connect(settings.mqtt, "simulate")
    print(f"simulate: {len(sim.patients)} patients, {iso(sim.start)} to {iso(sim.end)} "
          f"({sim.source}), to {out or settings.mqtt.address}", file=sys.stderr)
    try:
        done = simulate(sim, out, truth, patients_file, plot, rate, publisher,
                            chunk_minutes and round(chunk_minutes * MINUTE),
                            Console(stderr=True))
    finally:
        if publisher:
            publisher.close()
    where = f"wrote {out}" if out else f"published to {settings.mqtt.address}"
    print(f"simulate: {where}: {done.messages} messages, {done.readings} readings in "
          f"{done.seconds:.2f} s ({done.readings / max(done.seconds, 1e-9):,.0f} readings/s)")
    print(f"simulate: truth {done.truth}; patients {done.patients} (set VITALS_PATIENTS to it)"
          + (f"; {len(done.plots)} plots in {plot}" if plot else ""))
