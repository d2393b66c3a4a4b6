"""MQTT acknowledgements that wait for Kafka.

A message's PUBACK goes out only once every record produced from it is acknowledged by Kafka,
so a crash in between makes the broker redeliver instead of losing it. PUBACKs leave in the
order the messages arrived (MQTT 5 section 4.6, as in 3.1.1), whatever order Kafka's partitions
answer in.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Ticket:
    """The records one MQTT message became; `done()` is called once per delivered record."""

    __slots__ = ("_acks", "at", "mid", "qos", "remaining")

    def __init__(self, acks: InOrderAcks, mid: int, qos: int, remaining: int,
                 at: float | None = None) -> None:
        self._acks = acks
        self.mid = mid
        self.qos = qos
        self.remaining = remaining
        self.at = at  # when the message was received (Unix seconds), if known

    def done(self) -> None:
        self._acks._record_done(self)


class InOrderAcks:
    def __init__(self, send_ack: Callable[[int, int], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._send_ack = send_ack
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: deque[Ticket] = deque()
        self.last_acked: float | None = None  # when a message was last handed over (Unix s)

    def __len__(self) -> int:
        """Messages received but not yet acknowledged."""
        return len(self._queue)

    def waiting(self) -> tuple[int, float | None]:
        """Messages not yet acknowledged, and when the oldest of them was received."""
        with self._lock:
            return len(self._queue), self._queue[0].at if self._queue else None

    def open(self, mid: int, qos: int, records: int, at: float | None = None) -> Ticket:
        """A message received at `at` (Unix seconds) that became `records` records."""
        ticket = Ticket(self, mid, qos, records, at)
        with self._lock:
            self._queue.append(ticket)
            if records == 0:
                self._flush()
        return ticket

    def _record_done(self, ticket: Ticket) -> None:
        with self._lock:
            ticket.remaining -= 1
            if ticket.remaining == 0 and self._queue and self._queue[0] is ticket:
                self._flush()

    def _flush(self) -> None:
        q = self._queue
        done = False
        while q and q[0].remaining == 0:
            t = q.popleft()
            done = True
            if t.qos > 0:
                self._send_ack(t.mid, t.qos)
        if done:  # a message is through: ingest's progress (vitals.progress)
            self.last_acked = self._clock()

    def reconnected(self) -> None:
        """After a reconnect the broker redelivers every unacknowledged message, and packet ids
        of the old connection may be reused, so pending tickets must not send PUBACKs any more.
        They stay queued, so that a redelivered copy (a duplicate by then) is acknowledged only
        after the records of its first delivery are on Kafka."""
        with self._lock:
            for t in self._queue:
                t.qos = 0
