"""The Flux queries of a patient's history: readings, trends and alerts over a time range.

Every value that comes from a user (patient, times, bucket) is bound as a parameter, never
formatted into the text. influxdb-client sends `params` as the query's `extern`: each becomes
an `option _name = <literal>` statement, a string literal or a time literal that Flux parses as
such, so a patient id cannot inject Flux. The names start with `_` to stay clear of Flux's own.

`pivot` turns the stored one-row-per-field into one row per point (time, tags, every field),
the shape `storage.export` reads. Only a real InfluxDB 2 runs Flux.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from storage import schema

PATIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # CONTRACT section 1

# The measurement is one of the schema's constants, never user input, so it is written into the
# text as a literal.
_HISTORY = """\
from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => ({measurements}) and r.patient == _patient)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
"""


@dataclass(frozen=True)
class FluxQuery:
    text: str
    params: dict[str, Any]


def _history(measurement: str | tuple[str, ...], bucket: str, patient: str,
             start: dt.datetime, stop: dt.datetime) -> FluxQuery:
    if not PATIENT_ID.fullmatch(patient):
        raise ValueError(f"patient id {patient!r} is not 1-64 of A-Z a-z 0-9 _ -")
    for name, t in (("start", start), ("stop", stop)):
        if t.tzinfo is None:
            raise ValueError(f"{name} {t.isoformat()} has no time zone")
    if not start < stop:
        raise ValueError(f"start {start.isoformat()} is not before stop {stop.isoformat()}")
    names = (measurement,) if isinstance(measurement, str) else measurement
    assert set(names) <= {schema.READINGS, schema.REPORTS, schema.TRENDS, schema.ALERTS}
    matches = " or ".join(f'r._measurement == "{name}"' for name in names)
    return FluxQuery(_HISTORY.format(measurements=matches),
                     {"_bucket": bucket, "_patient": patient, "_start": start, "_stop": stop})


def readings(bucket: str, patient: str, start: dt.datetime, stop: dt.datetime) -> FluxQuery:
    """A patient's readings and reports (CONTRACT section 6), one row per reading: `_time`,
    device, kind, site or by, the fields."""
    return _history((schema.READINGS, schema.REPORTS), bucket, patient, start, stop)


def trends(bucket: str, patient: str, start: dt.datetime, stop: dt.datetime) -> FluxQuery:
    """A patient's per-minute trend points."""
    return _history(schema.TRENDS, bucket, patient, start, stop)


def alerts(bucket: str, patient: str, start: dt.datetime, stop: dt.datetime) -> FluxQuery:
    """A patient's alert events (firing and resolved), at the time each was detected."""
    return _history(schema.ALERTS, bucket, patient, start, stop)


def run(client: Any, query: FluxQuery, org: str) -> list[dict[str, Any]]:
    """The rows of `query` (an influxdb_client.InfluxDBClient's query API), as plain dicts."""
    tables = client.query_api().query(query.text, org=org, params=query.params)
    return [dict(record.values) for table in tables for record in table.records]
