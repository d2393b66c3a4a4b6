"""The demo's live console view (rich): the patients with their latest sustained vitals and
page state, the pages as PagerDuty receives them, and where to acknowledge."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from harness.pagerduty import Event
from simulators.plan import DAY, Simulation, iso
from vitals.records import TrendPoint

STYLE = {"trigger": "bold red", "acknowledge": "yellow", "resolve": "green"}
STATE = {"trigger": "PAGED", "acknowledge": "acked", "resolve": "resolved"}


@dataclass
class Pages:
    """PagerDuty events as they arrive (the stand-in's callback), per incident and patient."""

    log: deque[tuple[float, Event, str]] = field(default_factory=lambda: deque(maxlen=9))
    patient_of: dict[str, str] = field(default_factory=dict)  # dedup key -> patient
    state: dict[str, str] = field(default_factory=dict)  # patient -> last action
    summary: dict[str, str] = field(default_factory=dict)  # patient -> last trigger summary
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATE, 0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, e: Event) -> None:
        with self.lock:
            if e.action == "trigger":
                self.patient_of[e.dedup_key] = str(e.body["payload"]["source"])
            patient = self.patient_of.get(e.dedup_key, "?")
            self.counts[e.action] = self.counts.get(e.action, 0) + 1
            self.state[patient] = e.action
            if e.action == "trigger":
                self.summary[patient] = e.summary
            self.log.append((e.received, e, patient))


def page_line(e: Event, pages: Pages) -> Text:
    """One PagerDuty event as a log line (when the console is not a terminal)."""
    what = e.summary if e.action == "trigger" else (
        f"{pages.patient_of.get(e.dedup_key, '?')} ({e.dedup_key})")
    return Text.assemble(time.strftime("%H:%M:%S ", time.localtime(e.received)),
                         (f"{e.action.upper():<12}", STYLE.get(e.action, "")), what)


def _num(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render(sim: Simulation, published_until: int, readings: int, judged_until: int,
           latest: dict[str, TrendPoint], pages: Pages, nurse_url: str, token: str,
           auto_ack: float | None, phase: str,
           canary: tuple[int, float | None] = (0, None)) -> Group:
    span = sim.end - sim.start
    done = max(0, published_until - sim.start) / span if span else 1.0
    behind = (published_until - judged_until) / 3_600_000 if judged_until else None
    head = Text.assemble(
        ("vitals demo  ", "bold"), (f"{phase}  ", "cyan"),
        f"simulated {iso(published_until)[:16] if published_until else '-'}  ",
        f"({done:.0%} of {span / DAY:g} days)  {readings:,} readings published  ",
        f"rules judged to {iso(judged_until)[11:16] if judged_until else '-'}"
        + (f" ({behind:.1f} h behind)" if behind is not None and behind > 0.5 else ""))
    table = Table(expand=True, pad_edge=False, box=None)
    for col, justify in (("patient", "left"), ("product", "left"), ("day", "right"),
                         ("temp °C", "right"), ("HR", "right"), ("SpO2 %", "right"),
                         ("NEWS2*", "right"), ("page", "left"), ("last page", "left")):
        table.add_column(col, justify=justify, no_wrap=col != "last page")  # type: ignore[arg-type]
    with pages.lock:
        state, summary = dict(pages.state), dict(pages.summary)
        log, counts = list(pages.log), dict(pages.counts)
    for p in sim.patients:
        t = latest.get(p.id)
        day = ((published_until - p.day0) / DAY) if published_until else None
        act = state.get(p.id)
        table.add_row(p.id, p.product or "-", _num(day, 1),
                      _num(t.temp if t else None, 1), _num(t.hr if t else None),
                      _num(t.spo2 if t else None), _num(t.news2 if t else None),
                      Text(STATE.get(act or "", "-"), style=STYLE.get(act or "", "dim")),
                      Text(summary.get(p.id, ""), overflow="ellipsis", no_wrap=True))
    feed = Table(expand=True, box=None, show_header=False, pad_edge=False)
    feed.add_column(no_wrap=True, min_width=8)
    feed.add_column(no_wrap=True, min_width=11)
    feed.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
    for received, e, patient in reversed(log):
        feed.add_row(time.strftime("%H:%M:%S", time.localtime(received)),
                     Text(e.action.upper(), style=STYLE.get(e.action, "")),
                     e.summary if e.action == "trigger" else f"{patient} ({e.dedup_key})")
    ack = (f"the simulated nurse acknowledges each page after {auto_ack:g} s"
           if auto_ack is not None else "nobody acknowledges: it is up to you")
    rounds, last_s = canary
    foot = Text.assemble(
        ("Nurse page: ", "bold"), (nurse_url, "underline"), f"  (token {token})\n",
        ("Canary: ", "bold"),
        f"{rounds} round trips (MQTT -> ingest -> rules)"
        + (f", the last in {last_s:.1f} s" if last_s is not None else "")
        + "; a synthetic patient, never paged to a nurse\n",
        f"PagerDuty stand-in: {counts.get('trigger', 0)} triggers, "
        f"{counts.get('acknowledge', 0)} acknowledges, {counts.get('resolve', 0)} resolves; "
        f"{ack}.  *NEWS2 of what a wearable measures.  Ctrl-C stops cleanly.")
    return Group(head, Panel(table, title="patients", title_align="left"),
                 Panel(feed, title="pages (PagerDuty Events v2, newest first)",
                       title_align="left"), foot)
