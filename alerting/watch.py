"""The canary watch (CONTRACT section 7): is the whole pipeline still turning a fever into a
page? Pure: times come in as arguments (epoch ms, wall clock: this is live monitoring).

A canary reading's round trip is complete when its `canary` event reaches alerting. The
pipeline is late when the newest canary whose round trip completed was published more than
`late_ms` ago (or, before any, when the watch began that long ago): a stage that stalls and one
that has fallen minutes behind are both late, since patients' pages are late in both. Each
stage's "last seen" is when it last passed a canary (ingest: from `vitals.canary`; rules: the
event's `judged_at`; alerting: when it last read anything from Kafka), so the operators' page
can say where the canaries stopped.

The state is one msgspec struct, saved in the store with every change, so that a restart keeps
the late clock and can resolve a page an earlier run sent."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from vitals.records import AlertEvent

STAGES = ("ingest", "rules", "alerting")
Due = Literal["page", "resolve"]


class OpenPage(msgspec.Struct):
    """The operators' page while it is open: its id (PagerDuty dedup_key, one per episode),
    since when no round trip completed, and each (channel, target, address) it went to."""

    id: str
    since: int
    paged_at: int
    deliveries: list[tuple[str, str, str]] = []


class WatchState(msgspec.Struct):
    """What the watch knows; `started_at` starts the late clock until a first round trip."""

    started_at: int
    last_published: int | None = None  # the newest canary whose round trip completed
    last_received: int | None = None  # when alerting received its event
    last_latency_ms: int | None = None  # its round trip, publish -> alerting
    round_trips: int = 0
    seen: dict[str, int] = {}  # stage -> when it last passed a canary
    page: OpenPage | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(WatchState).decode


def hm(ms: int) -> str:
    """Epoch ms as the wall-clock minute in UTC, as the nurse page writes times."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%H:%M UTC")


class Watch:
    """The canary's round trips, the stages' last-seen times, and the operators' page.

    `watching_since` is when this run of alerting began: after a restart the late clock
    starts no earlier, so that alerting coming back after a while does not page the operators
    about a gap it could not watch before the first canary could reach it (its own absence is
    the dead-man's switch's to report). A page an earlier run opened stays open until a
    round trip is fresh again."""

    def __init__(self, late_ms: int, state: WatchState, watching_since: int | None = None
                 ) -> None:
        self.late_ms = late_ms
        self.state = state
        self.watching_since = state.started_at if watching_since is None else watching_since

    @classmethod
    def restore(cls, late_ms: int, saved: str | None, now: int) -> Watch:
        """The watch as saved (a state that cannot be read starts afresh at `now`)."""
        if saved:
            try:
                return cls(late_ms, _decode(saved), watching_since=now)
            except msgspec.DecodeError:
                pass
        return cls(late_ms, WatchState(started_at=now))

    def dump(self) -> str:
        """The state, to save."""
        return _encode(self.state).decode()

    # what happens
    def round_trip(self, event: AlertEvent, received_at: int) -> None:
        """A canary event reached alerting: one round trip complete."""
        evidence = event.evidence
        published = event.start
        self._saw("ingest", evidence.get("ingest_at"))
        self._saw("rules", evidence.get("judged_at"))
        self._saw("alerting", received_at)
        state = self.state
        state.round_trips += 1
        if state.last_published is None or published > state.last_published:
            state.last_published = published
            state.last_received = received_at
            state.last_latency_ms = received_at - published

    def ingest_passed(self, at: int) -> None:
        """Ingest forwarded a canary reading at `at` (its copy on `vitals.canary`)."""
        self._saw("ingest", at)

    def alerting_read(self, at: int) -> None:
        """Alerting read a batch from Kafka at `at`."""
        self._saw("alerting", at)

    def _saw(self, stage: str, at: object) -> None:
        if isinstance(at, int) and not isinstance(at, bool) and at > self.state.seen.get(stage, 0):
            self.state.seen[stage] = at

    # what it means
    @property
    def since(self) -> int:
        """Since when no round trip is known to have completed (publish time)."""
        return self.state.last_published or self.state.started_at

    def on_time(self, now: int) -> bool:
        """A canary published in the last `late_ms` has come back: the dead-man's switch may
        be pinged, and an open page resolved."""
        published = self.state.last_published
        return published is not None and now - published <= self.late_ms

    def late(self, now: int) -> bool:
        """No canary published in the last `late_ms` has come back, and this run has watched
        for at least that long."""
        return (not self.on_time(now)
                and now - max(self.since, self.watching_since) > self.late_ms)

    def due(self, now: int) -> Due | None:
        """What the operators' page needs now: opening, resolving, or nothing."""
        if self.state.page is None:
            return "page" if self.late(now) else None
        return "resolve" if self.on_time(now) else None

    def opened(self, page: OpenPage) -> None:
        self.state.page = page

    def closed(self) -> OpenPage | None:
        page, self.state.page = self.state.page, None
        return page

    # in words
    def last_seen(self) -> str:
        """"ingest 14:05, rules 14:02, alerting 14:06" (a stage never seen: "never")."""
        seen = self.state.seen
        return ", ".join(f"{stage} {hm(seen[stage]) if stage in seen else 'never'}"
                         for stage in STAGES)

    def summary(self) -> str:
        """The operators' page: what is known, in one sentence a person can act on."""
        if self.state.last_published is None:
            head = f"no canary round trip since alerting began watching at {hm(self.since)}"
        else:
            head = f"no canary round trip since {hm(self.since)}"
        return (f"Monitoring pipeline delayed: {head}; last seen: {self.last_seen()}. "
                "Patients' pages may be late: check patients by phone.")

    def banner(self, now: int) -> str | None:
        """The nurse page's banner while round trips are late (or a page about it is open and
        none is back yet), else None."""
        if self.on_time(now) or not (self.late(now) or self.state.page):
            return None
        return (f"Monitoring delayed since {hm(self.since)}: pages may be late; "
                "check patients by phone.")

    def status(self, now: int) -> dict[str, object]:
        """The watch as JSON (GET /pipeline)."""
        state = self.state
        return {"late": self.late(now), "since": self.since, "late_after_s": self.late_ms / 1000,
                "last_published": state.last_published, "last_received": state.last_received,
                "last_latency_ms": state.last_latency_ms, "round_trips": state.round_trips,
                "last_seen": dict(state.seen), "banner": self.banner(now),
                "operators_paged": state.page.id if state.page else None}
