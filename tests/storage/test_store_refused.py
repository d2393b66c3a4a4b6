"""A point the server refuses goes to `vitals.rejected` and the rest is written.

VictoriaMetrics accepts almost anything (it answers 204 to malformed lines and skips them), so
the 4xx path needs a test double: `RefusingProxy` is a small local HTTP server that answers
400, with InfluxDB 2's error body, to any write containing a line of patient `REFUSEME`, and
forwards every other write to the real VictoriaMetrics. Kafka (tansu) is real."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import servers
from tests.storage.support import committed, produce, start_store, wait_for_points
from tests.support import read_topic
from vitals import topics
from vitals.records import Reading, encode
from vitals.settings import Settings

PARTITIONS = 4
MARKER = b"patient=REFUSEME"


class RefusingProxy(ThreadingHTTPServer):
    """Test double for InfluxDB's 400 (see the module docstring)."""

    upstream: str
    refused_requests = 0


class Handler(BaseHTTPRequestHandler):
    server: RefusingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        bad = [x for x in body.split(b"\n") if MARKER in x]
        if bad:
            self.server.refused_requests += 1
            reply = json.dumps({"code": "invalid", "message": f"unable to parse "
                                f"'{bad[0].decode()}': test double refuses patient REFUSEME"})
            self._reply(400, reply.encode())
            return
        req = urllib.request.Request(self.server.upstream + self.path, data=body, method="POST",
                                     headers={"Content-Type": "text/plain"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                self._reply(r.status, r.read())
        except urllib.error.HTTPError as exc:
            self._reply(exc.code, exc.read())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def proxy(vm: servers.Server) -> Iterator[RefusingProxy]:
    server = RefusingProxy(("127.0.0.1", 0), Handler)
    server.upstream = f"http://127.0.0.1:{vm.port}"
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_refused_points_go_to_the_dead_letter_topic_and_the_rest_is_written(
        store_settings: Settings, vm: servers.Server, proxy: RefusingProxy) -> None:
    settings = store_settings.model_copy(
        update={"influx_url": f"http://127.0.0.1:{proxy.server_port}"})
    t0 = int(time.time() * 1000) - 600_000
    good = [Reading("P001", "ox-1", t0 + i * 1000, "oximetry", t0 + i * 1000, seq=i, hr=80.0)
            for i in range(60)]
    bad = [Reading("REFUSEME", "ox-1", t0 + i * 1000, "oximetry", t0, seq=i, hr=80.0)
           for i in (0, 1)]
    records = [(topics.READINGS.name, r.patient_id, encode(r)) for r in good]
    # keyed like the good ones: same partition, so the refused points sit inside their batches
    records[20:20] = [(topics.READINGS.name, "P001", encode(bad[0]))]
    records[45:45] = [(topics.READINGS.name, "P001", encode(bad[1]))]
    records.append((topics.READINGS.name, "P001", b'{"not": "a reading"}'))
    produce(settings.kafka_bootstrap, records)

    store = start_store(settings)
    pts = wait_for_points(vm, "readings_hr", 60)
    dead = read_topic(settings.kafka_bootstrap, topics.REJECTED.name, 3)
    counts = store.stop()

    assert pts.distinct("readings_hr") == 60
    assert "REFUSEME" not in {s.labels["patient"] for s in pts.series.values()}
    refused = [v for _, v in dead if v["reason"] == "store_refused"]
    assert sorted(json.loads(v["payload"])["seq"] for v in refused) == [0, 1]
    for v in refused:
        assert v["topic"] == "vitals.readings" and v["patient_id"] == "P001"
        assert v["detail"].startswith("InfluxDB refused this record's point: HTTP 400: unable "
                                      "to parse 'readings,device=ox-1,kind=oximetry,"
                                      "patient=REFUSEME ")
        assert v["detail"].endswith("test double refuses patient REFUSEME")
        assert json.loads(v["payload"])["patient_id"] == "REFUSEME"  # the original record
    unreadable = [v for _, v in dead if v["reason"] == "store_bad_record"]
    assert len(unreadable) == 1 and unreadable[0]["payload"] == '{"not": "a reading"}'
    assert "not a valid Reading record" in unreadable[0]["detail"]
    assert len(dead) == 3
    assert (counts.written, counts.refused, counts.bad) == (60, 2, 1)
    assert committed(settings.kafka_bootstrap, topics.READINGS.name, PARTITIONS) == 63
