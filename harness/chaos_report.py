"""The chaos run's result (`harness.chaos`): the faults as injected, the checks' findings, the
one table (Markdown) with the count that each finding must have (0), and the details that
say which fault each finding followed."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.chaos_checks import Alerts, Pages, Readings, attribute, examples
from harness.expected import ReadingId


@dataclass(frozen=True)
class FaultRecord:
    label: str  # "SIGKILL ingest", "kafka cut", ...
    planned_s: float  # after publishing began
    started_s: float
    ended_s: float  # restarted, or the outage over
    duration_s: float  # the outage planned (0: a kill or restart)
    during_traffic: bool  # the devices were still publishing when it began
    note: str = ""

    def line(self) -> str:
        """One line for the progress log and the details."""
        span = f" for {self.duration_s:g} s" if self.duration_s else ""
        after = "" if self.during_traffic else ", after the traffic"
        return (f"{self.label}{span} at {self.started_s:.1f} s (planned {self.planned_s:.1f} s)"
                f", over at {self.ended_s:.1f} s{after}"
                + (f"; {self.note}" if self.note else ""))


@dataclass(frozen=True)
class Unplanned:
    """A service that exited (or failed to start) without being killed; it was restarted."""

    at_s: float
    service: str
    detail: str


@dataclass
class Result:
    spec: Any  # harness.chaos.Spec
    faults: list[FaultRecord]
    unplanned: list[Unplanned]
    published: int  # messages the gateway published (and the broker acknowledged)
    gateway: dict[str, Any]
    traffic_messages: int
    traffic_readings: int
    caught_up: bool  # the pipeline had everything before the drain timeout
    readings: Readings
    alerts: Alerts  # against the pure engine on vitals.readings in Kafka's order
    pages: Pages
    outage_answers: dict[int, int]  # HTTP status -> requests the stand-in refused so
    started_at: str
    t0: float  # wall clock when publishing began
    accepted_at: dict[ReadingId, int] = field(repr=False, default_factory=dict)
    wall_s: float = 0.0
    # against the pure engine on the traffic in publish order: a patient's devices' messages
    # may reach Kafka interleaved otherwise, which a judgement can depend on (not a finding)
    in_publish_order: Alerts | None = None

    # --- the findings that must be zero ----------------------------------------------

    def findings(self) -> dict[str, int]:
        """Each check's count of failures: every one must be 0."""
        r, a, p = self.readings, self.alerts, self.pages
        return {
            "readings lost on Kafka": len(r.lost_on_kafka),
            "readings lost in storage": len(r.lost_in_storage),
            "readings doubled on Kafka: received twice (redelivered)": len(r.received_twice()),
            "readings doubled on Kafka: one receipt written twice (producer retry)":
                len(r.written_twice()),
            "records on Kafka that are no accepted reading": len(r.not_accepted_on_kafka),
            "points in storage that are no accepted reading": len(r.not_accepted_in_storage),
            "alert events missing (vs the pure engine on the same records)": len(a.missing),
            "alert events extra": len(a.extra),
            "alert events missing in storage": len(a.stored_missing),
            "alert events extra in storage": len(a.stored_extra),
            "pages missed": len(p.missed),
            "pages doubled": sum(len(times) - 1 for _, times in p.doubled),
            "pages for no alert of the truth": len(p.unexpected),
            "services that exited on their own": len(self.unplanned),
        }

    # --- the table -----------------------------------------------------------------------

    def fault_counts(self) -> dict[str, int]:
        return dict(Counter(f.label for f in self.faults))

    def table(self) -> str:
        """The one table: what was done, what was measured, and what each count must be."""
        r, a, p, s = self.readings, self.alerts, self.pages, self.spec
        kinds = ", ".join(f"{label} x{n}" for label, n in self.fault_counts().items())
        durations = sorted({f.duration_s for f in self.faults if f.duration_s})
        rows: list[tuple[str, str, str]] = [
            ("cohort", f"{s.patients} patients x {s.days:g} days, seed {s.seed}, "
                       f"speed x{s.speed:,.0f}", ""),
            ("faults injected", f"{len(self.faults)}: {kinds}", ""),
            ("outage lengths, s", ", ".join(f"{d:g}" for d in durations), ""),
            ("PagerDuty requests refused by the outages",
             ", ".join(f"{n} x {st}" for st, n in sorted(self.outage_answers.items())) or "0",
             ""),
            ("messages published / in the traffic", f"{self.published:,} / "
             f"{self.traffic_messages:,}", "equal"),
            ("readings in the traffic / accepted (the truth)",
             f"{self.traffic_readings:,} / {r.accepted:,}", ""),
            ("accepted readings on Kafka (records)", f"{r.on_kafka:,} ({r.kafka_records:,})",
             f"{r.accepted:,}"),
            ("accepted readings stored (by device, seq and time)", f"{r.stored:,}",
             f"{r.accepted:,}"),
            ("accepted readings sharing (device, kind, time) with another: InfluxDB keeps one",
             f"{r.sharing_a_point:,}", ""),
            ("points written again (VictoriaMetrics keeps both; InfluxDB overwrites)",
             f"{r.rewritten_points:,}", ""),
            ("accepted readings on Kafka after a later-published one of their device",
             f"{len(r.out_of_order):,}", ""),
            ("alert events expected / records on Kafka", f"{a.expected} / {a.received}", ""),
            ("alert events whose evidence differs from the engine's (same id and status)",
             f"{len(a.differing)}", ""),
            ("alert events of the engine on the publish order, not the Kafka order: missing / "
             "extra / other evidence", self._order_effect(), ""),
            ("pages expected: triggers / resolves",
             f"{p.triggers_expected} / {p.resolves_expected}", ""),
            ("PagerDuty events accepted", f"{p.delivered}", ""),
        ]
        rows += [(name, f"{n:,}", "0") for name, n in self.findings().items()]
        rows += [("pipeline caught up before the drain timeout", "yes" if self.caught_up
                  else "no", "yes"),
                 ("wall time", f"{self.wall_s:.0f} s", "")]
        out = ["| chaos run | value | must be |", "|---|---|---|"]
        out += [f"| {name} | {value} | {want} |" for name, value, want in rows]
        return "\n".join(out)

    def _order_effect(self) -> str:
        o = self.in_publish_order
        if o is None:
            return "not judged"
        patients = sorted({key[0].split("/")[0] for key in [*o.missing, *o.extra]})
        return (f"{len(o.missing)} / {len(o.extra)} / {len(o.differing)}"
                + (f" (patients {', '.join(patients[:5])})" if patients else ""))

    # --- which fault each finding followed ---------------------------------------------

    def _fault_times(self) -> list[tuple[float, str]]:
        # by start: a PagerDuty window is recorded when it ends, after faults begun within it
        return sorted((self.t0 + f.started_s, f"#{i + 1} {f.label} at {f.started_s:.0f} s")
                      for i, f in enumerate(self.faults))

    def _published_at(self, rid: ReadingId) -> float:
        """When the message that carried a reading went out (wall clock, s)."""
        g = self.gateway
        at = self.accepted_at.get(rid)
        if at is None or not g.get("speed") or g.get("first_at") is None:
            return 0.0
        return float(g["started"]) + (at - int(g["first_at"])) / 1000 / float(g["speed"])

    def details(self) -> str:
        """The faults in order, then every finding with examples and the fault it followed."""
        r, a, p = self.readings, self.alerts, self.pages
        faults = self._fault_times()
        lines = ["faults, in order (s after publishing began):"]
        lines += [f"  #{i + 1} {f.line()}" for i, f in enumerate(self.faults)]
        for u in self.unplanned:
            lines.append(f"  unplanned: {u.service} at {u.at_s:.0f} s: {u.detail[:400]}")
        if r.doubled_on_kafka:
            # written twice: the fault is the first after the receipt (the send was in flight)
            retried, again = list(r.written_twice().items()), list(r.received_twice().items())
            lines.append(f"readings doubled on Kafka: {len(r.doubled_on_kafka)}")
            if retried:
                after = attribute([c[0] / 1000 for _, c in retried], faults, following=True)
                lines.append(f"  written twice from one receipt (a Kafka producer retry): "
                             f"{len(retried)}; the first fault after the receipt: {after}; "
                             f"e.g. {examples(retried, _copies)}")
            if again:
                after = attribute([c[-1] / 1000 for _, c in again], faults)
                lines.append(f"  received again (an MQTT redelivery): {len(again)}; the last "
                             f"fault before the later receipt: {after}; e.g. "
                             f"{examples(again, _copies)}")
        if r.out_of_order:
            when = [self._published_at(x) for x in r.out_of_order]
            lines.append(f"readings on Kafka out of their device's publish order: "
                         f"{len(r.out_of_order)}; published after: {attribute(when, faults)}; "
                         f"e.g. {examples(r.out_of_order)}")
        if r.lost_on_kafka:
            when = [self._published_at(x) for x in r.lost_on_kafka]
            lines.append(f"readings lost on Kafka: {len(r.lost_on_kafka)}; published after: "
                         f"{attribute(when, faults)}; e.g. {examples(r.lost_on_kafka)}")
        if r.lost_in_storage:
            also = len(set(r.lost_in_storage) & set(r.lost_on_kafka))
            when = [self._published_at(x) for x in r.lost_in_storage]
            lines.append(f"readings lost in storage: {len(r.lost_in_storage)} ({also} of them not "
                         f"on Kafka either); published after: {attribute(when, faults)}; e.g. "
                         f"{examples(r.lost_in_storage)}")
        for name, items in (("records on Kafka that are no accepted reading",
                             r.not_accepted_on_kafka),
                            ("points that are no accepted reading", r.not_accepted_in_storage),
                            ("alert events missing", a.missing), ("alert events extra", a.extra),
                            ("alert events with other evidence (same id and status; a "
                             "record's content depends on how vitals.readings and "
                             "vitals.status interleave)", a.differing),
                            ("alert events missing in storage", a.stored_missing),
                            ("alert events extra in storage", a.stored_extra),
                            ("pages missed", p.missed), ("pages for no alert", p.unexpected)):
            if items:
                lines.append(f"{name}: {len(items)}: {examples(items)}")
        if p.doubled:
            later = [t for _, times in p.doubled for t in sorted(times)[1:]]
            lines.append(f"pages doubled: {len(later)}; the later copy after: "
                         f"{attribute(later, faults)}; e.g. {examples(p.doubled)}")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """JSON-able: the spec, the faults, the counts and the findings."""
        return {"spec": asdict(self.spec), "started_at": self.started_at,
                "wall_s": round(self.wall_s, 1), "faults": [asdict(f) for f in self.faults],
                "fault_counts": self.fault_counts(),
                "unplanned": [asdict(u) for u in self.unplanned],
                "published": self.published, "traffic_messages": self.traffic_messages,
                "accepted": self.readings.accepted, "on_kafka": self.readings.on_kafka,
                "kafka_records": self.readings.kafka_records, "stored": self.readings.stored,
                "rewritten_points": self.readings.rewritten_points,
                "sharing_a_point": self.readings.sharing_a_point,
                "out_of_order": len(self.readings.out_of_order),
                "alert_events_expected": self.alerts.expected,
                "publish_order_effect": self._order_effect(),
                "pages_expected": self.pages.triggers_expected + self.pages.resolves_expected,
                "outage_answers": self.outage_answers, "caught_up": self.caught_up,
                "findings": self.findings()}


def _copies(item: tuple[ReadingId, list[int]]) -> str:
    rid, received = item
    patient, device, kind, seq, ts = rid
    return f"{patient}/{device} {kind} seq {seq} ts {ts} received at {received}"
