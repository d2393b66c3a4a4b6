"""The devices' side of the chaos run: a seeded cohort written as a traffic file, and a gateway
that publishes it over MQTT at a chosen speed and survives the broker's restart.

`vitals simulate` and `vitals replay` stop at the first publish that finds the broker gone
(paho reports it as an error). Real devices keep what the broker has not acknowledged and send
it again once they are back on; so does this gateway: paho keeps every QoS 1 message until its
PUBACK and sends the unacknowledged ones again after it reconnects, and the gateway counts a
message as delivered only on its PUBACK, whatever paho said when it was first handed over.
Messages sent again may reach the broker twice; ingest drops such repeats by (device, seq).

    python -m harness.gateway TRAFFIC --port PORT --speed X --result RESULT.json
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.servers import LOOPBACK
from simulators import cohort, stream
from simulators.plan import MINUTE
from vitals import trafficfile

IN_FLIGHT = 100  # unacknowledged messages at most: paho collapses with more (ENVIRONMENT.md)
DONE_TIMEOUT_S = 900.0  # for the last acknowledgements, across broker restarts


def write_cohort(path: Path, patients: int, seed: int, days: float, start_ms: int
                 ) -> tuple[Path, int, int]:
    """A seeded cohort's traffic (`simulators.cohort`, oximeters reporting a minute's summary
    as in `vitals demo`) to `path`, its patients file beside it; returns (patients file,
    messages, readings)."""
    sim = cohort.generate(patients, seed, days, start_ms, ox_interval=MINUTE)
    patients_file = path.with_name(path.name + ".patients.yaml")
    cohort.write_patients(sim, patients_file)
    s = stream.Stream(sim, line=True)
    stream.write(s, path, lambda _batch: None)
    return patients_file, s.messages, s.readings


class Gateway:
    """One MQTT 3.1.1 client publishing every device's messages at QoS 1, in order."""

    def __init__(self, port: int, client_id: str = "chaos-gateway") -> None:
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        self.connects = 0
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(IN_FLIGHT)
        c.reconnect_delay_set(0.2, 2)  # a restarted broker is back within a second

        def on_connect(*_args: Any) -> None:
            self.connects += 1

        def on_publish(_c: mqtt.Client, _u: object, mid: int, *_rest: object) -> None:
            with self.lock:
                self.acked.add(mid)

        c.on_connect = on_connect
        c.on_publish = on_publish
        c.connect(LOOPBACK, port, keepalive=30)
        c.loop_start()
        self.client = c
        self.window: deque[int] = deque()

    def _settle(self) -> None:
        """Drop the acknowledged messages from the front of the window."""
        with self.lock:
            while self.window and self.window[0] in self.acked:
                self.acked.discard(self.window.popleft())

    def publish(self, topic: str, payload: bytes) -> None:
        """Hand the message to paho (queued there while the broker is away); wait while
        `IN_FLIGHT` messages are unacknowledged."""
        self.window.append(self.client.publish(topic, payload, qos=1).mid)
        while True:
            self._settle()
            if len(self.window) < IN_FLIGHT:
                return
            time.sleep(0.001)

    def flush(self, timeout: float = DONE_TIMEOUT_S) -> bool:
        """Until every message is acknowledged; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            self._settle()
            if not self.window:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()


def publish(traffic: Path, port: int, speed: float, stop: threading.Event | None = None
            ) -> dict[str, Any]:
    """Publish the traffic file in its order, a message at simulated time `at` going out
    (at - first at) / speed seconds after the start; what was done, as JSON-able facts."""
    gateway = Gateway(port)
    started, started_wall = time.monotonic(), time.time()
    n, t0 = 0, None
    try:
        for m in trafficfile.read(traffic):
            if stop is not None and stop.is_set():
                break
            t0 = m.at if t0 is None else t0
            delay = started + (m.at - t0) / 1000 / speed - time.monotonic()
            if delay > 0.002:
                time.sleep(delay)
            gateway.publish(m.topic, m.payload)
            n += 1
        flushed = gateway.flush()
    finally:
        gateway.close()
    # when it began and the first message's `at`: a message's `at` -> when it went out
    return {"published": n, "acknowledged": flushed, "seconds": time.monotonic() - started,
            "connects": gateway.connects, "started": started_wall, "first_at": t0,
            "speed": speed}


def main() -> None:
    """`python -m harness.gateway`: publish, then write what was done as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traffic", type=Path)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--speed", type=float, required=True)
    ap.add_argument("--result", type=Path, required=True)
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    result = publish(args.traffic, args.port, args.speed, stop)
    args.result.write_text(json.dumps(result))
    print(f"gateway: {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
