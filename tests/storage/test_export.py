"""Stored history back into replayable traffic: query rows -> traffic file -> ingest's own
parser gives the readings that were stored.

The conversion is pure and tested on rows shaped as influxdb-client returns them for the
readings query (`FluxRecord.values`). `vitals export` as a whole runs against `FluxDouble`, a
small local HTTP server that is a test double for InfluxDB 2's /api/v2/query: it records the
request and answers with hand-written annotated CSV of what the pivoted query returns. Flux
itself cannot run here (no InfluxDB 2); see test_queries.py.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import servers, services
from harness.command import vitals
from ingest.parse import Parser
from storage.export import rows_to_messages
from tests.support import write_patients
from vitals import trafficfile
from vitals.patients import load_patients
from vitals.records import Ice, Reading

UTC = dt.UTC
T = dt.datetime(2026, 11, 20, 8, 0, 0, 123000, tzinfo=UTC)
T_MS = 1795161600123


def row(**values: object) -> dict[str, object]:
    base = {"result": "_result", "table": 0, "_start": T - dt.timedelta(days=1),
            "_stop": T + dt.timedelta(days=1), "_measurement": "readings", "patient": "P001"}
    return base | values


ROWS = [
    row(_time=T + dt.timedelta(seconds=1), device="ox-1", kind="oximetry", seq=18, hr=88.0,
        flags="no_signal", received_at=T_MS + 1040),
    row(_time=T, device="ox-1", kind="oximetry", seq=17, spo2=94.0, hr=112.0, pi=2.5,
        flags="motion", received_at=T_MS + 40),
    row(_time=T + dt.timedelta(milliseconds=500), device="th-1", kind="temperature", table=1,
        site="oral", temp=38.25, battery=80.0, received_at=T_MS + 900),
]
STORED = [  # what ingest produced, and the store stored, for those rows
    Reading("P001", "ox-1", T_MS, "oximetry", 0, seq=17, spo2=94.0, hr=112.0, pi=2.5,
            flags=("motion",)),
    Reading("P001", "th-1", T_MS + 500, "temperature", 0, temp=38.25, site="oral",
            battery=80.0),
    Reading("P001", "ox-1", T_MS + 1000, "oximetry", 0, seq=18, hr=88.0, flags=("no_signal",)),
]


def parsed(messages: list[trafficfile.Message], tmp_path: Path) -> list[Reading]:
    registry = load_patients(write_patients(tmp_path / "patients.yaml", ["P001"]))
    parser = Parser(registry)
    out = []
    for m in messages:
        result = parser.parse(m.topic, m.payload, received_at=m.at + 1000)
        assert result.rejections == [], result.rejections
        out += [Reading(**{**{f: getattr(r, f) for f in r.__struct_fields__},
                           "received_at": 0}) for r in result.readings]
    return out


def test_rows_become_traffic_that_ingest_parses_back_into_the_stored_readings(
        tmp_path: Path) -> None:
    messages = rows_to_messages(ROWS)
    assert [(m.at, m.topic) for m in messages] == [
        (T_MS, "vitals/v1/P001/ox-1"), (T_MS + 500, "vitals/v1/P001/th-1"),
        (T_MS + 1000, "vitals/v1/P001/ox-1")]
    # the finger-out reading is sent again as the sentinel the device sent
    assert json.loads(messages[2].payload) == {"ts": T_MS + 1000, "kind": "oximetry",
                                               "seq": 18, "spo2": 127, "hr": 88.0}
    path = tmp_path / "history.jsonl.gz"
    assert trafficfile.write(path, messages) == 3
    again = list(trafficfile.read(path))
    assert again == messages
    assert parsed(again, tmp_path) == STORED


def test_stored_reports_become_traffic_that_ingest_parses_back_into_the_same_reports(
        tmp_path: Path) -> None:
    rows = [row(_time=T, _measurement="reports", device="app-1", kind="symptoms",
                by="caregiver", seq=41, symptoms="chills,other", note='says "it hurts"',
                received_at=T_MS + 500),
            row(_time=T + dt.timedelta(minutes=1), _measurement="reports", device="app-1",
                kind="neuro_check", by="patient", seq=42, ice_orientation=3, ice_naming=2,
                ice_commands=1, ice_writing=0, ice_attention=1, ice_total=7,
                received_at=T_MS + 60_500),
            row(_time=T + dt.timedelta(minutes=2), _measurement="reports", device="app-1",
                kind="symptoms", by="patient", seq=43, symptoms="", received_at=T_MS)]
    messages = rows_to_messages(rows)
    assert json.loads(messages[2].payload)["symptoms"] == []  # checked in, nothing new
    assert parsed(messages, tmp_path) == [
        Reading("P001", "app-1", T_MS, "symptoms", 0, seq=41, by="caregiver",
                symptoms=("chills", "other"), note='says "it hurts"'),
        Reading("P001", "app-1", T_MS + 60_000, "neuro_check", 0, seq=42, by="patient",
                ice=Ice(3, 2, 1, 0, 1), ice_total=7),
        Reading("P001", "app-1", T_MS + 120_000, "symptoms", 0, seq=43, by="patient",
                symptoms=())]


class FluxDouble(ThreadingHTTPServer):
    """Test double for InfluxDB 2's query endpoint (see the module docstring)."""

    csv: str
    requests: list[dict]


CSV = """\
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string,string,double,string,double,double,long,long,double
#group,false,false,true,true,false,true,true,true,true,false,false,false,false,false,false,false
#default,_result,,,,,,,,,,,,,,,
,result,table,_start,_stop,_time,_measurement,device,kind,patient,battery,flags,hr,pi,received_at,seq,spo2
,,0,2026-11-20T00:00:00Z,2026-11-21T00:00:00Z,2026-11-20T08:00:00.123Z,readings,ox-1,oximetry,P001,,motion,112,2.5,1795161600163,17,94
,,0,2026-11-20T00:00:00Z,2026-11-21T00:00:00Z,2026-11-20T08:00:01.123Z,readings,ox-1,oximetry,P001,,no_signal,88,,1795161601163,18,

#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string,string,string,double,long,double
#group,false,false,true,true,false,true,true,true,true,true,false,false,false
#default,_result,,,,,,,,,,,,
,result,table,_start,_stop,_time,_measurement,device,kind,patient,site,battery,received_at,temp
,,1,2026-11-20T00:00:00Z,2026-11-21T00:00:00Z,2026-11-20T08:00:00.623Z,readings,th-1,temperature,P001,oral,80,1795161601023,38.25

"""


class Handler(BaseHTTPRequestHandler):
    server: FluxDouble

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append({"path": self.path, "body": json.loads(body)})
        reply = self.server.csv.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=utf-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def flux_double() -> Iterator[FluxDouble]:
    server = FluxDouble(("127.0.0.1", 0), Handler)
    server.csv, server.requests = CSV, []
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def run_vitals(*args: str, influx_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(vitals(*args), env=services.environment({"influx_url": influx_url}),
                          capture_output=True, text=True, timeout=30, cwd="/")


def test_vitals_export_queries_influxdb_and_writes_a_replayable_traffic_file(
        flux_double: FluxDouble, tmp_path: Path) -> None:
    out = tmp_path / "P001.jsonl"
    proc = run_vitals("export", "P001", "2026-11-20", "2026-11-21T00:00:00Z", "--out", str(out),
                  influx_url=f"http://127.0.0.1:{flux_double.server_port}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"export: 3 readings of P001 from 2026-11-20T00:00:00+00:00 "
                                  f"to 2026-11-21T00:00:00+00:00 written to {out}")
    request = flux_double.requests[0]
    assert request["path"].startswith("/api/v2/query?org=vitals")
    assert 'r.patient == _patient' in request["body"]["query"]
    options = {s["assignment"]["id"]["name"]: s["assignment"]["init"]["value"]
               for s in request["body"]["extern"]["body"]}
    assert options == {"_bucket": "vitals", "_patient": "P001",
                       "_start": "2026-11-20T00:00:00.000000000Z",
                       "_stop": "2026-11-21T00:00:00.000000000Z"}
    assert parsed(list(trafficfile.read(out)), tmp_path) == STORED


def test_vitals_export_says_in_one_line_when_the_server_cannot_run_the_query(
        vm: servers.Server, tmp_path: Path) -> None:
    """VictoriaMetrics does not serve Flux: the command fails with the server's answer."""
    proc = run_vitals("export", "P001", "2026-11-20", "2026-11-21", "--out", str(tmp_path / "x"),
                  influx_url=f"http://127.0.0.1:{vm.port}")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"vitals: InfluxDB at http://127.0.0.1:{vm.port} refused the query (HTTP 400): ")
    assert not (tmp_path / "x").exists()
