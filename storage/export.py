"""Stored history back into replayable traffic: `vitals export PATIENT START END --out FILE`.

It runs the readings query (storage/queries.py: the `readings` and `reports` measurements)
against InfluxDB 2 and writes the traffic-file format of vitals/trafficfile.py, which
`vitals replay` publishes again: one message per reading or report on
`vitals/v1/{patient}/{device}`, its payload a contract reading (`ts`, `kind`, `seq` if stored,
the values or what was reported, the device's flags), `at` = `ts`.

What comes back is what ingest stored, normalised: temperatures in °C (so no `unit`), and a
sentinel that ingest turned into "no value" + `no_signal` is sent again as a sentinel (SpO2 127,
pulse 255) for each missing oximetry value, so ingest normalises it to the same reading.
`rows_to_messages` is pure, so it is tested without InfluxDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import typer

from storage import queries
from storage.queries import FluxQuery
from vitals.records import DEVICE_FLAGS, ICE_PARTS, NO_SIGNAL
from vitals.trafficfile import Message

VALUE_FIELDS = ("temp", "site", "spo2", "hr", "rr", "pi", "battery", "by", "note")
SPO2_SENTINEL, HR_SENTINEL = 127, 255

_encode = msgspec.json.Encoder().encode


class ExportError(Exception):
    """InfluxDB could not answer the query; the message is one line."""


def epoch_ms(t: object) -> int:
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            raise ValueError(f"time {t.isoformat()} has no time zone")
        return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    if isinstance(t, int) and not isinstance(t, bool):
        return t
    raise ValueError(f"unusable time {t!r}")


def reading_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """A contract reading (CONTRACT section 1), or a report (section 6, from the `reports`
    measurement), from one pivoted row of the query."""
    kind = row["kind"]
    out: dict[str, Any] = {"ts": epoch_ms(row["_time"]), "kind": kind}
    if row.get("seq") is not None:
        out["seq"] = int(row["seq"])
    for name in VALUE_FIELDS:
        if row.get(name) is not None:
            out[name] = row[name]
    if kind == "symptoms":
        out["symptoms"] = [code for code in (row.get("symptoms") or "").split(",") if code]
    if kind == "neuro_check":
        out["ice"] = {part: int(row[f"ice_{part}"]) for part in ICE_PARTS}
    stored_flags = [f for f in (row.get("flags") or "").split(",") if f]
    if kind == "oximetry" and NO_SIGNAL in stored_flags:
        out.setdefault("spo2", SPO2_SENTINEL)
        out.setdefault("hr", HR_SENTINEL)
    flags = [f for f in stored_flags if f in DEVICE_FLAGS]  # `no_signal` is ingest's, not sent
    if flags:
        out["flags"] = flags
    return out


def rows_to_messages(rows: Iterable[Mapping[str, Any]]) -> list[Message]:
    """Traffic messages, in time order (then topic and seq), one per stored reading."""
    keyed = []
    for row in rows:
        payload = reading_payload(row)
        topic = f"vitals/v1/{row['patient']}/{row['device']}"
        keyed.append(((payload["ts"], topic, payload.get("seq", -1)),
                      Message(payload["ts"], topic, _encode(payload))))
    keyed.sort(key=lambda km: km[0])
    return [m for _, m in keyed]


def parse_time(value: str) -> dt.datetime:
    """RFC 3339 (a time without an offset is taken as UTC) or a date (its midnight, UTC)."""
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an RFC 3339 time or a date") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def export(url: str, token: str, org: str, query: FluxQuery, out: Path) -> int:
    """Run the readings query and write the traffic file; returns how many messages."""
    import urllib3
    from influxdb_client import InfluxDBClient
    from influxdb_client.rest import ApiException

    from storage.target import error_message
    from vitals import trafficfile

    with InfluxDBClient(url=url, token=token, org=org, timeout=120_000) as client:
        try:
            rows = queries.run(client, query, org)
        except ApiException as exc:
            message = error_message(exc)
            raise ExportError(f"InfluxDB at {url} refused the query (HTTP {exc.status}): "
                              f"{message}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ExportError(f"InfluxDB at {url} is unreachable: {exc}") from None
    return trafficfile.write(out, rows_to_messages(rows))


def command(patient: str, start: str, end: str, out: Path) -> None:
    """`vitals export`: a patient's stored readings from InfluxDB 2, as a traffic file."""
    import sys

    from vitals.settings import ConfigError, load_settings

    settings = load_settings()
    if not settings.influx_url:
        raise ConfigError("VITALS_INFLUX_URL is not set: `vitals export` reads InfluxDB 2")
    t0, t1 = parse_time(start), parse_time(end)
    try:
        query = queries.readings(settings.influx_bucket, patient, t0, t1)
    except ValueError as exc:  # a bad patient id or time range
        raise typer.BadParameter(str(exc)) from None
    try:
        n = export(settings.influx_url, settings.influx_token, settings.influx_org, query, out)
    except ExportError as exc:
        print(f"vitals: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"export: {n} readings of {patient} from {t0.isoformat()} to {t1.isoformat()} "
          f"written to {out}")
