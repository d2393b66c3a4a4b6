"""The `vitals` console command. Each subcommand lives with its package; this module only
wires them up, loads the settings, and turns configuration errors into one line."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

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
    counts = service.run(settings, stop_on_signals())
    print(f"ingest: {counts.summary()}", file=sys.stderr)


@app.command()
@one_line_errors
def credentials(
    out: Annotated[Path, typer.Option(help="Directory for passwords, acl, credentials.csv.")],
    rotate: Annotated[bool, typer.Option("--rotate", help="New passwords for all.")] = False,
) -> None:
    """Mosquitto password and ACL files for the enrolled devices, and a CSV for provisioning."""
    from ingest.credentials import generate
    from vitals.patients import load_patients
    from vitals.settings import load_settings

    settings = load_settings()
    patients = load_patients(settings.patients)
    accounts, without_devices = generate(out, patients, rotate)
    if without_devices:
        print(f"credentials: warning: no devices listed, so no accounts, for patients "
              f"{', '.join(without_devices)}", file=sys.stderr)
    devices = len(accounts) - 1  # all but the ingest account
    print(f"credentials: wrote {out}/passwords, acl, credentials.csv: {devices} devices of "
          f"{len(patients) - len(without_devices)} patients, and the ingest account"
          f"{' (all passwords rotated)' if rotate else ''}")


@app.command()
@one_line_errors
def demo(
    minutes: Annotated[int, typer.Option(min=1, max=24 * 60,
                                         help="Simulated minutes of readings per patient.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the simulated cohort.")] = 1,
) -> None:
    """The pipeline as far as it is built, on embedded defaults: real brokers on free loopback
    ports, ingest, and the embedded cohort's devices (with their faults) publishing."""
    from rich.console import Console

    from vitals import demo as demo_

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    counts = demo_.run(minutes, seed, Console())
    print(f"ingest: {counts.summary()}")


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
def store(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Readings, trends and alerts from Kafka into InfluxDB 2 (VITALS_INFLUX_*); what InfluxDB
    refuses goes to vitals.rejected. `vitals export` reads a patient's history back out."""
    from ingest.influx import writer
    from vitals.settings import load_settings

    settings = load_settings()
    target = writer.influx_target(settings)  # VITALS_INFLUX_URL unset stops here
    setup_logging(verbose)
    counts = writer.run(settings, stop_on_signals(), target=target)
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
    from ingest.influx.export import command

    command(patient, start, end, out)


def main() -> None:
    app()
