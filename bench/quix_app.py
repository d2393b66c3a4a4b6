"""The project's pure rule engine (stream_rules.engine) run by a Quix Streams app instead of the
Faust worker: the same rules, the same readings, the same alert events, so that the two
frameworks are compared on equal work (issue #15).

It runs in its own virtual environment (bench/quix_rules.py makes it), because quixstreams
pins confluent-kafka < 2.13 and pydantic < 2.14 while the project pins newer ones; the engine's
own needs (pydantic >= 2.7, numpy, scipy, msgspec, PyYAML) are met there too, and the project's
source is put on `sys.path`. Usage:

    python bench/quix_app.py PARAMS_JSON

PARAMS_JSON: project (the repository root), bootstrap, topic, outputs_topic, group, state_dir,
expect (readings to process before stopping), patients, infusion, team. It prints one JSON line
at the end: readings processed, the wall times of the start, the first and the last reading,
and the alert events as [alert_id, status] pairs.

What it does per reading, as the Faust worker does per batch (stream_rules.batch): decode the
record (a reading or a device status), run the patient's engine on its state (held in memory),
and produce the alert events and trend points (here to one topic; the worker sends them to
two). A patient's state is written to the Quix state store at most every `CHECKPOINT_S`, as the
worker writes its table. Quix Streams has no batch step: the engine is called once per
reading, which is part of the framework's cost being compared.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import time

from quixstreams import Application
from quixstreams.state import State

CHECKPOINT_S = 30.0  # the Faust worker's checkpoint cadence (stream_rules.worker)


class Progress:
    def __init__(self, app: Application, expect: int) -> None:
        self.app, self.expect = app, expect
        self.n, self.first, self.last = 0, 0.0, 0.0

    def count(self) -> None:
        self.n += 1
        now = time.time()
        if self.n == 1:
            self.first = now
        self.last = now
        if self.n >= self.expect:
            self.app.stop()


def main() -> None:
    p = json.loads(sys.argv[1])
    sys.path.insert(0, p["project"])
    from stream_rules import state as state_io
    from stream_rules.batch import decode_records
    from stream_rules.config import load_rules
    from stream_rules.engine import Engine
    from stream_rules.state import PatientState
    from vitals.patients import Patient
    from vitals.records import encode

    rules = load_rules(None)
    infusion = dt.date.fromisoformat(p["infusion"])
    engines = {pid: Engine(rules, Patient(id=pid, infusion=infusion, team=p["team"]))
               for pid in p["patients"]}
    states: dict[str, PatientState] = {}
    written: dict[str, float] = {}
    events: list[tuple[str, str]] = []

    app = Application(
        broker_address=p["bootstrap"], consumer_group=p["group"], auto_offset_reset="earliest",
        state_dir=p["state_dir"], loglevel="WARNING",
        # group joins on tansu take ~max(5 s, session timeout / 2): 45 s by default
        consumer_extra_config={"session.timeout.ms": 10_000})
    readings = app.topic(p["topic"], value_deserializer="bytes", key_deserializer="bytes")
    outputs = app.topic(p["outputs_topic"], value_serializer="bytes", key_serializer="bytes")
    progress = Progress(app, p["expect"])

    def judge(raw: bytes, state: State) -> list[bytes]:
        progress.count()
        records, _rejected = decode_records([raw], int(time.time() * 1000))
        out: list[bytes] = []
        for record in records:
            engine = engines.get(record.patient_id)
            if engine is None:
                continue
            patient_state = states.get(record.patient_id)
            if patient_state is None:
                saved = state.get("engine")
                patient_state = states[record.patient_id] = (
                    state_io.load(base64.b64decode(saved)) if saved else engine.new_state())
            result = engine.process(patient_state, [record])
            now = time.monotonic()
            if now - written.get(record.patient_id, 0.0) >= CHECKPOINT_S:
                # Quix's state store serialises values as JSON: the state's bytes in base64
                state.set("engine", base64.b64encode(state_io.dump(patient_state)).decode())
                written[record.patient_id] = now
            events.extend((a.alert_id, a.status) for a in result.alerts)
            out += [encode(a) for a in result.alerts] + [encode(t) for t in result.trends]
        return out

    app.dataframe(readings).apply(judge, stateful=True, expand=True).to_topic(outputs)
    started = time.time()
    app.run()
    print(json.dumps({"readings": progress.n, "started": started, "first": progress.first,
                      "last": progress.last, "events": events}), flush=True)


if __name__ == "__main__":
    main()
