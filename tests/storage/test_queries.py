"""The Flux queries of a patient's history bind every user-supplied value as a parameter.

Flux only runs on a real InfluxDB 2, which cannot run on this machine (VictoriaMetrics answers
/api/v2/query with 400). So these tests check the query text and what influxdb-client sends
with it: each parameter becomes an `option` statement in the request's `extern`, a typed
literal (string, time) that Flux never parses as code. The request itself is checked against a
test double in test_export.py; whether InfluxDB plans the query well is not tested here.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from influxdb_client import InfluxDBClient

from storage import queries

START = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
STOP = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
PARAMS = {"_bucket", "_patient", "_start", "_stop"}


@pytest.mark.parametrize(("build", "measurement"), [
    (queries.readings, "readings"), (queries.trends, "trends"), (queries.alerts, "alerts")])
def test_each_history_query_binds_patient_bucket_and_time_range(build, measurement) -> None:
    q = build("vitals-raw", "Px_9-Z", START, STOP)
    assert set(q.params) == PARAMS
    assert q.params == {"_bucket": "vitals-raw", "_patient": "Px_9-Z", "_start": START,
                        "_stop": STOP}
    # the user's values are nowhere in the text; only the parameter names are
    assert "Px_9-Z" not in q.text and "vitals-raw" not in q.text and "2026" not in q.text
    assert "from(bucket: _bucket)" in q.text
    assert "range(start: _start, stop: _stop)" in q.text
    assert "r.patient == _patient" in q.text
    assert f'r._measurement == "{measurement}"' in q.text
    if build is queries.readings:  # and what patients and caregivers reported
        assert 'r._measurement == "readings" or r._measurement == "reports"' in q.text
    # every identifier starting with `_` that the text uses is bound (or a Flux column)
    used = set(re.findall(r"(?<![\w.\"])_[a-z]+\b", q.text)) - {"_time", "_field", "_value"}
    assert used == PARAMS


def test_influxdb_client_sends_the_parameters_as_typed_literals() -> None:
    q = queries.readings("vitals", "P001", START, STOP)
    client = InfluxDBClient("http://127.0.0.1:1", token="t", org="vitals")
    request = client.query_api()._create_query(q.text, params=q.params)
    sent = client.api_client.sanitize_for_serialization(request)
    options = {s["assignment"]["id"]["name"]: s["assignment"]["init"]
               for s in sent["extern"]["body"]}
    assert options == {
        "_bucket": {"type": "StringLiteral", "value": "vitals"},
        "_patient": {"type": "StringLiteral", "value": "P001"},
        "_start": {"type": "DateTimeLiteral", "value": "2026-11-20T08:30:00.000000000Z"},
        "_stop": {"type": "DateTimeLiteral", "value": "2026-11-21T00:00:00.000000000Z"},
    }
    assert sent["query"] == q.text


@pytest.mark.parametrize("patient", ['P001" or true or r.patient == "', "", "x" * 65, "P 001"])
def test_patient_ids_outside_the_contract_are_refused(patient: str) -> None:
    with pytest.raises(ValueError, match="patient id"):
        queries.readings("vitals", patient, START, STOP)


def test_time_ranges_must_be_zoned_and_in_order() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        queries.trends("vitals", "P001", dt.datetime(2026, 11, 20), STOP)
    with pytest.raises(ValueError, match="is not before"):
        queries.alerts("vitals", "P001", STOP, START)
