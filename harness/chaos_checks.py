"""The checks of the chaos run (`harness.chaos`), on what the real systems hold at the end,
against the truth (`harness.expected`): readings on Kafka and in storage by identity, alert
events against the pure engine's, and PagerDuty's events against the pages the pure engine's
alerts call for. Pure: every input is handed in.

Pages the truth calls for. Alerting groups a patient's concurrent paging alerts (critical,
error) into one incident, pages it when it opens, pages it again when a worse alert joins, and
resolves it when its last alert clears (the on-call file of the run holds no resolve and
repeats no step). So, in the pure engine's order, each patient's paging alerts form episodes:
the opener must reach the patient's routing key in a trigger that names it, every alert that
raises the episode's severity in a trigger of the same incident with that severity, and an
episode whose alerts all cleared a resolve of that incident. A page is doubled when the same
(routing key, incident, action, severity) reached PagerDuty twice."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.expected import Expected, ReadingId, reading_id
from harness.pagerduty import Event

PAGING = ("critical", "error")
RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}
EXAMPLES = 8  # ids listed per finding, for the report


@dataclass
class Episode:
    """One patient's run of overlapping paging alerts, as the pure engine emitted them."""

    patient: str
    opener: str  # alert_id
    triggers: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, severity)
    firing: set[str] = field(default_factory=set)
    closed: bool = False


def episodes(expected: Expected) -> list[Episode]:
    """The pages the truth calls for: each patient's paging alerts grouped as alerting
    groups them (see the module docstring)."""
    out: list[Episode] = []
    for patient, alerts in expected.alerts.items():
        current: Episode | None = None
        worst = ""
        for a in alerts:
            if a["severity"] not in PAGING:
                continue
            if a["status"] == "firing":
                if current is None:
                    current = Episode(patient, a["alert_id"], [(a["alert_id"], a["severity"])])
                    worst = a["severity"]
                    out.append(current)
                elif RANK[a["severity"]] > RANK[worst]:
                    current.triggers.append((a["alert_id"], a["severity"]))
                    worst = a["severity"]
                current.firing.add(a["alert_id"])
            elif current is not None and a["alert_id"] in current.firing:
                current.firing.discard(a["alert_id"])
                if not current.firing:
                    current.closed, current = True, None
    return out


def patient_of(e: Event) -> str:
    """A trigger's payload.source; otherwise the patient in the incident id (patient-ms)."""
    if e.action == "trigger":
        return str(e.body.get("payload", {}).get("source", ""))
    return e.dedup_key.rsplit("-", 1)[0]


def page_key(e: Event) -> tuple[str, str, str, str]:
    """What makes a PagerDuty event the same page: routing key, incident, action, severity."""
    severity = e.body.get("payload", {}).get("severity", "") if e.action == "trigger" else ""
    return str(e.body.get("routing_key")), e.dedup_key, e.action, str(severity)


@dataclass
class Pages:
    triggers_expected: int
    resolves_expected: int
    missed: list[str]  # "trigger P fever/alert-id error" / "resolve P ..."
    doubled: list[tuple[tuple[str, str, str, str], list[float]]]  # page, when each copy came
    unexpected: list[str]  # events for no episode of the truth
    delivered: int  # events accepted by the stand-in


def check_pages(expected: Expected, events: list[Event], routing_key: Mapping[str, str]
                ) -> Pages:
    """PagerDuty's accepted events against the truth's episodes; `routing_key` per patient."""
    eps = episodes(expected)
    named: dict[tuple[str, str], list[tuple[str, set[str], str]]] = defaultdict(list)
    resolves: set[tuple[str, str]] = set()
    for e in events:
        rk = str(e.body.get("routing_key"))
        if e.action == "trigger":
            ids = {str(a.get("alert_id")) for a in e.details.get("alerts", [])}
            named[rk, patient_of(e)].append((e.dedup_key, ids, page_key(e)[3]))
        elif e.action == "resolve":
            resolves.add((rk, e.dedup_key))
    matched: set[tuple[str, str]] = set()
    missed: list[str] = []
    for ep in eps:
        rk = routing_key.get(ep.patient, "?")
        pages = named[rk, ep.patient]
        key = next((dk for dk, ids, _ in pages if ep.opener in ids), None)
        if key is not None:
            matched.add((rk, key))
        for aid, severity in ep.triggers:
            if key is None or not any(dk == key and aid in ids and sev == severity
                                      for dk, ids, sev in pages):
                missed.append(f"trigger {ep.patient} {aid} {severity}")
        if ep.closed and (key is None or (rk, key) not in resolves):
            missed.append(f"resolve {ep.patient} (opened by {ep.opener})")
    copies: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for e in events:
        copies[page_key(e)].append(e.received)
    return Pages(
        triggers_expected=sum(len(ep.triggers) for ep in eps),
        resolves_expected=sum(ep.closed for ep in eps), missed=missed,
        doubled=[(k, times) for k, times in copies.items() if len(times) > 1],
        unexpected=[f"{e.action} {e.dedup_key} to {e.body.get('routing_key')}" for e in events
                    if (str(e.body.get("routing_key")), e.dedup_key) not in matched],
        delivered=len(events))


@dataclass
class Readings:
    accepted: int  # the truth: readings ingest's parser and de-duplication forward
    on_kafka: int  # of them, found on vitals.readings
    kafka_records: int
    lost_on_kafka: list[ReadingId]
    doubled_on_kafka: dict[ReadingId, list[int]]  # -> each copy's received_at (ms)
    not_accepted_on_kafka: list[ReadingId]
    stored: int  # accepted readings found in storage by (device, seq) and time
    lost_in_storage: list[ReadingId]
    not_accepted_in_storage: list[ReadingId]
    rewritten_points: int  # raw samples beyond the first (InfluxDB would overwrite them)
    # accepted readings that share (patient, device, kind, ts) with another accepted reading:
    # one InfluxDB point for both, so InfluxDB would keep only the last written
    sharing_a_point: int = 0
    # records on Kafka that come after a later-published reading of the same device (in the
    # partition's order): the rules judge them as late, so alert events can differ
    out_of_order: list[ReadingId] = field(default_factory=list)

    def written_twice(self) -> dict[ReadingId, list[int]]:
        """Doubled with one receipt time: one ingest sent one receipt twice to Kafka (its
        producer retried a send whose answer it lost)."""
        return {rid: c for rid, c in self.doubled_on_kafka.items() if len(set(c)) == 1}

    def received_twice(self) -> dict[ReadingId, list[int]]:
        """Doubled with different receipt times: the broker delivered the message again (after
        an ingest crash, or a device's redelivery) and ingest did not recognise it."""
        return {rid: c for rid, c in self.doubled_on_kafka.items() if len(set(c)) > 1}


def check_readings(accepted: Mapping[ReadingId, int], records: Iterable[dict[str, Any]],
                   stored: Counter[ReadingId]) -> Readings:
    """`records` of vitals.readings and the `stored` readings (raw samples by identity,
    `readback.vm_reading_ids`) against the accepted readings."""
    copies: dict[ReadingId, list[int]] = defaultdict(list)
    newest: dict[tuple[str, str], int] = {}  # device -> the latest publish time seen
    out_of_order: list[ReadingId] = []
    n = 0
    for r in records:  # a device's records are in one partition, in its order
        rid = reading_id(r)
        copies[rid].append(int(r.get("received_at", 0)))
        n += 1
        at = accepted.get(rid)
        if at is not None and len(copies[rid]) == 1:
            if at < newest.get(rid[:2], at):
                out_of_order.append(rid)
            newest[rid[:2]] = max(at, newest.get(rid[:2], at))
    points = Counter((p, d, k, ts) for p, d, k, _, ts in accepted)
    return Readings(
        accepted=len(accepted), on_kafka=sum(1 for rid in accepted if rid in copies),
        kafka_records=n, lost_on_kafka=[rid for rid in accepted if rid not in copies],
        doubled_on_kafka={rid: sorted(c) for rid, c in copies.items() if len(c) > 1},
        not_accepted_on_kafka=[rid for rid in copies if rid not in accepted],
        stored=sum(1 for rid in accepted if rid in stored),
        lost_in_storage=sorted((rid for rid in accepted if rid not in stored), key=str),
        not_accepted_in_storage=sorted((rid for rid in stored if rid not in accepted), key=str),
        rewritten_points=sum(c - 1 for c in stored.values()),
        sharing_a_point=sum(c for c in points.values() if c > 1), out_of_order=out_of_order)


@dataclass
class Alerts:
    expected: int  # distinct (alert_id, status) of the pure engine
    received: int  # records on vitals.alerts, repeats included
    missing: list[tuple[str, str]]
    extra: list[tuple[str, str]]
    # the same key with other content than the engine's: (key, "field: engine's -> live")
    differing: list[tuple[tuple[str, str], str]]
    stored_missing: list[tuple[str, str, str, int]]
    stored_extra: list[tuple[str, str, str, int]]


def check_alerts(expected: Expected, records: list[dict[str, Any]],
                 stored: set[tuple[str, str, str, int]]) -> Alerts:
    """The alert events on vitals.alerts and in storage against the pure engine's."""
    want = expected.by_key()
    got = {(a["alert_id"], a["status"]) for a in records}
    differing: dict[tuple[str, str], str] = {}
    for a in records:
        key = (a["alert_id"], a["status"])
        if key in want and a != want[key]:
            differing[key] = "; ".join(f"{k}: {want[key].get(k)!r} -> {a.get(k)!r}"
                                       for k in sorted(set(a) | set(want[key]))
                                       if a.get(k) != want[key].get(k))
    want_stored = expected.stored_alerts()
    return Alerts(expected=len(want), received=len(records), missing=sorted(want.keys() - got),
                  extra=sorted(got - want.keys()), differing=sorted(differing.items()),
                  stored_missing=sorted(want_stored - stored),
                  stored_extra=sorted(stored - want_stored))


def blame(when_s: float, faults: list[tuple[float, str]], following: bool = False) -> str:
    """The last fault that began before `when_s` (wall clock), or with `following` the first
    that began after it; "no fault" when there is none."""
    if following:
        return next((label for start, label in faults if start > when_s), "no fault after")
    before = [label for start, label in faults if start <= when_s]
    return before[-1] if before else "before any fault"


def attribute(times: Iterable[float], faults: list[tuple[float, str]], following: bool = False
              ) -> dict[str, int]:
    """How many of these moments each fault explains (see `blame`)."""
    return dict(Counter(blame(t, faults, following) for t in times))


def examples(items: Iterable[Any], fmt: Callable[[Any], str] = str) -> str:
    """A few of `items`, for the report."""
    listed = list(items)
    shown = ", ".join(fmt(x) for x in listed[:EXAMPLES])
    return shown + (f", ... ({len(listed)} in all)" if len(listed) > EXAMPLES else "")
