"""What the live pipeline must agree with: a traffic file run through ingest's parser and
de-duplication and the pure rule engine in this process, no brokers. Used by the end-to-end
test and the chaos run (`harness.chaos`)."""

from __future__ import annotations

import pickle
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from evaluation.run import Pipeline
from ingest.dedup import DuplicateFilter
from ingest.parse import Parser
from stream_rules.config import load_rules
from stream_rules.engine import Engine
from vitals import trafficfile
from vitals.patients import load_patients
from vitals.records import Reading

AlertKey = tuple[str, str]  # (alert_id, status)
# A reading as the checks identify it: (patient, device, kind, seq, ts). seq alone is not
# enough: a device that restarted its counter sends a seen seq again, with a newer ts.
ReadingId = tuple[str, str, str, int | None, int]


def reading_id(record: dict[str, Any]) -> ReadingId:
    """The identity of a `vitals.readings` record (JSON as decoded)."""
    return (record["patient_id"], record["device_id"], record["kind"], record.get("seq"),
            record["ts"])


@dataclass
class Expected:
    """What ingest's parser and the pure engine make of a traffic file, fed in publish order
    and never flushed: the live worker judges a minute only once later readings arrive, so at
    the end of the traffic it has judged exactly what `Engine.process` has."""

    alerts: dict[str, list[dict[str, Any]]]  # patient -> alert events (JSON-able), in order
    last_trend: dict[str, int]  # patient -> ts of its last trend point
    readings: dict[tuple[str, str], set[int]]  # (patient, device) -> reading times
    flagged: dict[tuple[str, str], int]  # (patient, device) -> readings with flags
    rejected: dict[str, int]
    messages: int
    # every reading ingest forwards once -> the `at` of the message that carried it first
    accepted: dict[ReadingId, int] = field(default_factory=dict)

    def keys(self) -> set[AlertKey]:
        return {(a["alert_id"], a["status"]) for alerts in self.alerts.values() for a in alerts}

    def stored_alerts(self) -> set[tuple[str, str, str, int]]:
        """As `readback.vm_alerts` reads them back."""
        return {(a["patient_id"], a["rule"], a["status"], a["detected_at"])
                for als in self.alerts.values() for a in als}

    def by_key(self) -> dict[AlertKey, dict[str, Any]]:
        return {(a["alert_id"], a["status"]): a for als in self.alerts.values() for a in als}


def judge(traffic: Path, patients: Path, rules: Path | None = None,
          received_at: int | None = None) -> Expected:
    """The traffic file through the parser and the pure engine. `received_at` (epoch ms): the
    receipt time of every message instead of its `at`, for traffic published live long after
    its event times (then clock skew is judged against the wall clock, as ingest does)."""
    registry = load_patients(patients)
    pipe = Pipeline(load_rules(rules), registry)
    parser, dedup = Parser(registry), DuplicateFilter()
    readings: dict[tuple[str, str], set[int]] = defaultdict(set)
    flagged: dict[tuple[str, str], int] = defaultdict(int)
    accepted: dict[ReadingId, int] = {}
    chunk: list[tuple[int, str, bytes]] = []
    for m in trafficfile.read(traffic):
        at = m.at if received_at is None else received_at
        chunk.append((at, m.topic, m.payload))
        for r in parser.parse(m.topic, m.payload, at).readings:
            if dedup.first_time(r):
                readings[r.patient_id, r.device_id].add(r.ts)
                flagged[r.patient_id, r.device_id] += bool(r.flags)
                accepted[r.patient_id, r.device_id, r.kind, r.seq, r.ts] = m.at
        if len(chunk) >= 5000:
            pipe.feed(chunk)
            chunk = []
    pipe.feed(chunk)
    return Expected(
        alerts={pid: [msgspec.to_builtins(a) for a in run.alerts]
                for pid, run in pipe.runs.items()},
        last_trend={pid: run.ts[-1] for pid, run in pipe.runs.items() if run.ts},
        readings=dict(readings), flagged=dict(flagged), rejected=dict(pipe.counts.rejected),
        messages=pipe.counts.messages, accepted=accepted)


def judge_in_order(records: list[dict[str, Any]], patients: Path, rules: Path | None = None
                   ) -> dict[str, list[dict[str, Any]]]:
    """The pure engine on the readings as `vitals.readings` holds them, each patient in its
    partition's order: what the rules worker judged, whatever order the broker gave the
    messages of a patient's several devices (their interleaving can change a judgement, e.g.
    which patch reading a spot check calibrates). Patients not enrolled (the canary) are left
    out."""
    registry = load_patients(patients)
    rules_file = load_rules(rules)
    by_patient: dict[str, list[Reading]] = defaultdict(list)
    for record in records:
        by_patient[record["patient_id"]].append(msgspec.convert(record, Reading))
    out: dict[str, list[dict[str, Any]]] = {}
    for patient_id, readings in by_patient.items():
        patient = registry.get(patient_id)
        if patient is None:
            continue
        engine = Engine(rules_file, patient)
        events = engine.process(engine.new_state(), readings).alerts
        out[patient_id] = [msgspec.to_builtins(event) for event in events]
    return out


def main() -> None:
    """`python -m harness.expected TRAFFIC PATIENTS RECEIVED_AT OUT`: `judge` in a process of
    its own (the chaos run judges while its stack starts), the result pickled to OUT."""
    from harness import expected as module  # pickled by this name, not as __main__'s

    traffic, patients, received_at, out = sys.argv[1:5]
    expected = module.judge(Path(traffic), Path(patients), None, int(received_at) or None)
    Path(out).write_bytes(pickle.dumps(expected))


if __name__ == "__main__":
    main()
