"""The `vitals` console command. Each subcommand lives with its package; this module only
wires them up, loads the settings, and turns configuration errors into one line."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from vitals.ready import announce_ready
from vitals.settings import ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Remote monitoring after CAR-T cell therapy.")



@app.callback()
def _group() -> None:
    """Remote monitoring after CAR-T cell therapy: devices -> MQTT -> Kafka -> rules -> pages."""


P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """A bad setting or file stops the command with one line naming it (exit status 2)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            print(f"vitals: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so services finish what they hold before exiting."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        logging.getLogger("vitals").info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@app.command()
@one_line_errors
def ingest(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """The MQTT -> Kafka bridge: validate, normalise, de-duplicate; bad input to vitals.rejected."""
    from ingest import service
    from vitals.patients import load_patients
    from vitals.settings import load_settings

    settings = load_settings()
    load_patients(settings.patients)  # a bad patients file stops here, before any connection
    setup_logging(verbose)
    try:
        counts = service.run(settings, stop_on_signals(), lambda _: announce_ready("ingest"))
    except service.IngestFailed as exc:
        print(f"vitals ingest: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"ingest: {counts.summary()}", file=sys.stderr)


@app.command()
@one_line_errors
def canary(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """The canary: a synthetic patient's fever over MQTT every VITALS_CANARY_EVERY_S seconds,
    so that alerting can tell the whole path still works and page the operators when not."""
    from canary import publisher
    from vitals.settings import load_settings

    settings = load_settings()
    setup_logging(verbose)
    counts = publisher.run(settings, stop_on_signals(), lambda: announce_ready("canary"))
    print(f"canary: {counts.summary()}", file=sys.stderr)


@app.command()
@one_line_errors
def credentials(
    out: Annotated[Path, typer.Option(help="Directory for passwords, acl, credentials.csv.")],
    rotate: Annotated[bool, typer.Option("--rotate", help="New passwords for all.")] = False,
    ingest_account: Annotated[list[str] | None, typer.Option(
        "--ingest-account",
        help="One more ingest account (repeat for several), e.g. one per ingest instance; "
             "kept on later runs, like `ingest`, until its row leaves credentials.csv.")
    ] = None,
) -> None:
    """Mosquitto password and ACL files for the enrolled devices, and a CSV for provisioning."""
    from ingest.credentials import HEALTHCHECK_USER, generate
    from vitals.patients import load_patients
    from vitals.settings import load_settings

    settings = load_settings()
    patients = load_patients(settings.patients)
    accounts, without_devices = generate(out, patients, rotate, settings.canary_patient,
                                         ingest_account or ())
    if without_devices:
        print(f"credentials: warning: no devices listed, so no accounts, for patients "
              f"{', '.join(without_devices)}", file=sys.stderr)
    devices = sum(1 for a in accounts if a.device_id and a.patient_id != settings.canary_patient)
    ingest = [a.username for a in accounts if not a.device_id and a.username != HEALTHCHECK_USER]
    print(f"credentials: wrote {out}/passwords, acl, credentials.csv: {devices} devices of "
          f"{len(patients) - len(without_devices)} patients, the ingest accounts "
          f"({', '.join(ingest)}; one password), the broker health check's and the "
          f"canary's ({settings.canary_patient}.canary)"
          f"{' (all passwords rotated)' if rotate else ''}")


@app.command()
@one_line_errors
def demo(
    patients: Annotated[int, typer.Option(min=1, max=200,
                                          help="Simulated patients in the cohort.")] = 20,
    days: Annotated[float, typer.Option(min=0.01, max=30,
                                        help="Simulated days after infusion.")] = 14,
    speed: Annotated[float, typer.Option(
        min=1, max=1_000_000,
        help="Simulated seconds per second: 12000 plays two weeks in 101 s (if the pipeline "
             "falls behind, it catches up at the end).")
    ] = 12_000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the cohort (same seed, same "
                                                  "patients and episodes).")] = 1,
    auto_ack: Annotated[float, typer.Option(
        min=0, help="Seconds after which the simulated nurse acknowledges each page; 0: "
                    "nobody does, acknowledge on the nurse page yourself.")] = 2,
    out: Annotated[Path, typer.Option(help="Directory for report.md, report.json and plots/."
                                      )] = Path("demo-report"),
    keep: Annotated[bool, typer.Option("--keep", help="Keep the services' logs and state "
                                                      "(printed at start).")] = False,
    start: Annotated[str | None, typer.Option(
        help="ISO time the cohort starts (default: so that it ends now). The seed fixes the "
             "cohort relative to its start's date, so a fixed start replays the same demo.")
    ] = None,
) -> None:
    """The whole pipeline on embedded defaults: Mosquitto, tansu, ingest, rules and alerting
    as separate processes, a simulated cohort published over MQTT, pages to a local stand-in
    for PagerDuty, a live view; at the end a report scored against the simulation's truth."""
    from rich.console import Console

    from demo.run import Options, run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from simulators.run import parse_start

    begin = parse_start(start) if start else None
    if begin is not None and begin + days * 86_400_000 > time.time() * 1000:
        raise ConfigError(f"--start {start}: the cohort would end in the future, and ingest "
                          "refuses readings from the future (clock skew)")
    path = run(Options(patients=patients, days=days, seed=seed, speed=speed,
                       auto_ack=auto_ack or None, out=out, keep=keep, start=begin), Console())
    print(f"demo: report in {path} (plots in {path.parent / 'plots'})")


@app.command()
@one_line_errors
def store(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Readings, trends and alerts from Kafka into InfluxDB 2 (VITALS_INFLUX_*); what InfluxDB
    refuses goes to vitals.rejected. `vitals export` reads a patient's history back out."""
    from storage import writer
    from vitals.settings import load_settings

    settings = load_settings()
    target = writer.influx_target(settings)  # VITALS_INFLUX_URL unset stops here
    setup_logging(verbose)
    counts = writer.run(settings, stop_on_signals(), target=target,
                        on_ready=lambda _: announce_ready("store"))
    print(f"store: {counts.summary()}", file=sys.stderr)


@app.command()
@one_line_errors
def export(
    patient: Annotated[str, typer.Argument(help="Pseudonymous patient id.")],
    start: Annotated[str, typer.Argument(help="From (RFC 3339 time or date, UTC).")],
    end: Annotated[str, typer.Argument(help="Until, exclusive (RFC 3339 time or date).")],
    out: Annotated[Path, typer.Option(help="Traffic file to write (.gz compresses).")],
) -> None:
    """A patient's stored readings from InfluxDB 2, as a traffic file that `vitals replay`
    publishes again."""
    from storage.export import command

    command(patient, start, end, out)


@app.command()
@one_line_errors
def rules(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """The Faust worker that judges vitals.readings against the CRS rules (VITALS_RULES) and
    emits vitals.alerts and vitals.trends. Run several to split patients by partition."""
    from stream_rules.config import load_rules
    from stream_rules.worker import run
    from vitals.patients import load_patients
    from vitals.settings import load_settings

    settings = load_settings()
    rules_file = load_rules(settings.rules)  # a bad rules file stops here, in one line
    registry = load_patients(settings.patients)
    run(settings, rules_file, registry, loglevel="DEBUG" if verbose else "INFO")


@app.command()
@one_line_errors
def alerting(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Pages the on-call team for vitals.alerts (VITALS_ONCALL: PagerDuty, webhook, e-mail),
    escalates until someone acknowledges, and serves the ack API and nurse page."""
    from alerting.service import load_config, run
    from vitals.settings import load_settings

    settings = load_settings()
    load_config(settings)  # a bad patients or on-call file stops here, in one line
    setup_logging(verbose)
    run(settings, stop_on_signals(), on_ready=lambda _: announce_ready("alerting"))


@app.command("app")
@one_line_errors
def patient_app(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """The patients' own page at VITALS_APP_ADDR (one personal link each, `vitals app-links`):
    their devices in words, symptom check-ins, the caregiver's daily neuro check and a manual
    temperature, published over MQTT as the patient's `app` device."""
    from patient_app import service
    from patient_app.config import load_app_config
    from vitals.settings import load_settings

    settings = load_settings()
    config = load_app_config(settings)  # no secret, a bad patients or on-call file: stops here
    setup_logging(verbose)
    service.run(settings, config, stop_on_signals(), on_ready=lambda _: announce_ready("app"))


@app.command("app-links")
@one_line_errors
def app_links(
    out: Annotated[Path, typer.Option(help="Directory for {patient}.png and links.csv (the "
                                           "links are credentials: owner-only files).")],
) -> None:
    """Each enrolled patient's personal link (VITALS_APP_BASE_URL, signed with
    VITALS_APP_SECRET) as a QR code to print at enrolment, and all of them in links.csv."""
    from rich.console import Console

    from patient_app.config import require_secret
    from patient_app.links import require_base_url, summary, write_links
    from vitals.patients import load_patients
    from vitals.settings import load_settings

    settings = load_settings()
    secret, base_url = require_secret(settings), require_base_url(settings)
    links = write_links(out, load_patients(settings.patients), secret, base_url)
    Console().print(summary(links, out))


@app.command()
@one_line_errors
def simulate(
    scenario: Annotated[Path | None, typer.Option(
        help="A scenario file (YAML, see simulators/README.md); otherwise a generated cohort."
    )] = None,
    patients: Annotated[int, typer.Option(min=1, max=100_000,
                                          help="Patients in the generated cohort.")] = 20,
    seed: Annotated[int | None, typer.Option(
        min=0, help="Seed (default: 1 for a cohort, the scenario's own seed).")] = None,
    days: Annotated[float, typer.Option(
        min=0.0001, max=400, help="Simulated days of the generated cohort (0.5 = 12 hours).")
    ] = 14,
    start: Annotated[str | None, typer.Option(
        help="ISO time the timeline starts (default: now minus its duration, to the minute)."
    )] = None,
    speed: Annotated[str, typer.Option(
        help="1 = real time, 600 = 10 simulated minutes a second, max (or 0) = as fast as the "
             "broker takes it.")] = "1",
    out: Annotated[Path | None, typer.Option(
        help="Write the traffic to this file (.jsonl, .jsonl.gz) instead of publishing.")] = None,
    truth: Annotated[Path | None, typer.Option(
        help="The truth file (default: <out>.truth.json, or in VITALS_STATE_DIR).")] = None,
    patients_file: Annotated[Path | None, typer.Option(
        help="The patients file for VITALS_PATIENTS (default: beside the truth).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw a PNG per patient here.")] = None,
    chunk_minutes: Annotated[float | None, typer.Option(
        min=0.1, max=1440, help="Simulated minutes generated at a time (memory; default 10, "
                                "less for big cohorts). The output does not depend on it.")
    ] = None,
) -> None:
    """Simulated patients and devices: publish over MQTT (VITALS_MQTT_URL) at any speed, or
    write the traffic to a file; writes the truth and a patients file beside it."""
    from simulators.run import command

    command(scenario=scenario, patients=patients, seed=seed, days=days, start=start,
            speed=speed, out=out, truth=truth, patients_file=patients_file, plot=plot,
            chunk_minutes=chunk_minutes)


@app.command()
@one_line_errors
def replay(
    file: Annotated[Path, typer.Argument(help="A traffic file (vitals simulate --out).")],
    speed: Annotated[str, typer.Option(
        help="1 = real time, 600 = 10 minutes a second, max (or 0) = as fast as the broker "
             "takes it.")] = "1",
) -> None:
    """Publish a recorded or simulated traffic file again over MQTT, payloads and event times
    unchanged, in its order (so per device too), at any speed."""
    from rich.console import Console

    from simulators import run
    from vitals.settings import load_settings

    settings = load_settings()
    pace = run.parse_speed(speed)
    n, seconds = run.replay(file, pace, settings.mqtt, Console(stderr=True))
    print(f"replay: published {n} messages from {file} to {settings.mqtt.address} in "
          f"{seconds:.1f} s ({n / max(seconds, 1e-9):,.0f} msg/s)")


@app.command()
@one_line_errors
def evaluate(
    patients: Annotated[int, typer.Option(min=1, max=100_000,
                                          help="Patients in the generated cohort.")] = 100,
    seed: Annotated[int | None, typer.Option(
        min=0, help="Seed of the generated cohort (default 1).")] = None,
    seeds: Annotated[str | None, typer.Option(
        help="Several seeds, e.g. 1,7,42: each seed's cohort is judged (report in "
             "<out>/seed-<n>/) and <out>/report.md shows the seeds side by side.")] = None,
    days: Annotated[float, typer.Option(
        min=0.0001, max=400, help="Simulated days of the generated cohort.")] = 14,
    start: Annotated[str | None, typer.Option(
        help="ISO time the generated timeline starts (default 2026-11-20T00:00Z).")] = None,
    traffic: Annotated[Path | None, typer.Option(
        help="Evaluate this traffic file (vitals simulate --out) instead of generating.")
    ] = None,
    truth: Annotated[Path | None, typer.Option(
        help="The traffic's truth file (default: <traffic>.truth.json).")] = None,
    patients_file: Annotated[Path | None, typer.Option(
        help="The patients file (default: the patients in the truth).")] = None,
    rules: Annotated[Path | None, typer.Option(
        help="Rules file (default: VITALS_RULES, else the embedded defaults).")] = None,
    out: Annotated[Path, typer.Option(
        help="Directory for report.md, report.json and plots/.")] = Path("evaluation-report"),
    workers: Annotated[int, typer.Option(
        min=1, help="Processes for a generated cohort (split by patient).")
    ] = max(1, os.cpu_count() or 1),
    plots: Annotated[bool, typer.Option(help="Draw the PNG plots.")] = True,
) -> None:
    """A cohort and its truth through ingest's parser and the pure rule engine (no brokers):
    sensitivity, delays, lead over nurse checks, false pages; Markdown, JSON and plots.
    With --seeds, several cohorts, their headline numbers side by side."""
    from evaluation.command import command

    command(patients=patients, seed=seed, seeds=seeds, days=days, start=start,
            traffic=traffic, truth=truth, patients_file=patients_file, rules=rules, out=out,
            workers=workers, plots=plots)


def main() -> None:
    """The `vitals` command. A bad option stops it with one line (exit status 2), as a bad
    setting does: `vitals: demo: Invalid value for '--speed': ...`, not a framed box."""
    from typer import _click  # typer's own click: what a bad option raises

    try:
        code = app(standalone_mode=False)
    except _click.exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `vitals`: the help, as is
            print(exc.format_message(), file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        command = exc.ctx.command_path.removeprefix("vitals").strip() if exc.ctx else ""
        where = f"{command}: " if command else ""
        print(f"vitals: {where}{exc.format_message()} (see vitals {command} --help)".replace(
            "  ", " ").replace("\n", " "), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except _click.exceptions.ClickException as exc:
        print(f"vitals: {exc.format_message()}".replace("\n", " "), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)
