"""Which alerting instance leads: the one that reads alert events from Kafka, runs the
escalation clock and sends the outbox. Every instance serves the API.

With SQLite there is one instance (`Sole`, the state directory's lock sees to it). With
PostgreSQL two or more instances share the database and take turns through a lease (`Lease`),
one row in the table `alerting_leader`: the leader renews it every quarter of its length; a
standby takes it once it has expired. Expiry is judged by the database's clock, and a leader
judges its own lease by its monotonic clock from the moment it *asked* for the renewal, less a
margin, so that it stops leading before any other instance can start: two leaders never send
at once, even if the clocks of the machines disagree.

A leader that is killed stops renewing: a standby leads within one lease and a quarter
(`VITALS_ALERTING_LEASE_S`, 10 s by default, so within 12.5 s). A leader that stops cleanly
gives the lease up, and a standby leads within a quarter of a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Protocol

import psycopg

from vitals.settings import redact

log = logging.getLogger(__name__)

# `term` counts leaderships: it changes whenever the lease changes hands (or lapsed), so the
# log says which term sent what.
SCHEMA = """
CREATE TABLE IF NOT EXISTS alerting_leader (
  id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, term BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL)
"""
# Take the lease if it is free, lapsed, or ours; renew it if ours. Returns the term when ours.
ACQUIRE = """
INSERT INTO alerting_leader AS l (id, holder, term, expires_at)
VALUES (1, %(holder)s, 1, now() + make_interval(secs => %(lease_s)s))
ON CONFLICT (id) DO UPDATE SET
  holder = EXCLUDED.holder,
  term = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.term
              ELSE l.term + 1 END,
  expires_at = EXCLUDED.expires_at
WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
RETURNING term
"""
RELEASE = "UPDATE alerting_leader SET expires_at = now() WHERE holder = %(holder)s"
HOLDER = "SELECT holder, expires_at FROM alerting_leader WHERE id = 1"
SCHEMA_LOCK = 7_013_431_001  # pg_advisory_xact_lock key: two instances create the table once


class Leadership(Protocol):
    """Whether this instance leads now, and the job that keeps it so."""

    def leading(self) -> bool:
        """True while this instance may consume, escalate and send."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Keep (or seek) the leadership until `stop`; give it up then."""
        ...


class Sole:
    """The only instance (SQLite): always the leader."""

    def leading(self) -> bool:
        """Always."""
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Nothing to keep."""
        await stop.wait()


def holder_id() -> str:
    """This process, recognisable in the table and the log: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease in PostgreSQL, on a connection of its own (not the store's: renewing must
    not wait behind a long store transaction)."""

    def __init__(self, url: str, lease_s: float, holder: str | None = None) -> None:
        self.url = url
        self.lease_s = lease_s
        self.holder = holder or holder_id()
        self.term = 0
        self._valid_until = 0.0  # monotonic; this instance leads until then
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._complained = False  # about the database: once per outage, not per try
        self._told_holder = False  # who holds it, once per standby period

    def leading(self) -> bool:
        """True until the lease this instance holds might have expired for the others."""
        return time.monotonic() < self._valid_until

    async def run(self, stop: asyncio.Event) -> None:
        """Renew or seek the lease every quarter of its length until `stop`; then release."""
        every = self.lease_s / 4
        try:
            while not stop.is_set():
                await self.attempt()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
        finally:
            await self.release()

    async def attempt(self) -> bool:
        """One try to take or renew the lease; True if this instance leads after it."""
        asked_at = time.monotonic()
        was = self.leading()
        try:
            conn = await self._connection()
            async with asyncio.timeout(self.lease_s / 4):
                cursor = await conn.execute(ACQUIRE, {"holder": self.holder,
                                                      "lease_s": self.lease_s})
                row = await cursor.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self._drop()
            if not self._complained:
                log.warning("alerting lease (%s): %s; retrying", redact(self.url),
                            str(exc).strip().splitlines()[0] if str(exc).strip() else
                            type(exc).__name__)
                self._complained = True
            if was and not self.leading():
                log.warning("alerting: lost the lease (could not renew it): standing by")
            return self.leading()
        self._complained = False
        if row is None:  # another instance holds it
            if was:
                log.warning("alerting: the lease went to another instance: standing by")
            self._valid_until = 0.0
            if not self._told_holder:
                await self._log_holder(conn)
                self._told_holder = True
            return False
        # The database's lease runs from a moment after `asked_at`: leading until
        # `asked_at + lease` less a margin for clock rates ends before it does.
        self._valid_until = asked_at + self.lease_s * 0.9
        term = int(row[0])  # type: ignore[call-overload]
        self._told_holder = False
        if term != self.term or not was:
            log.info("alerting: leading (term %d, holder %s)", term, self.holder)
        self.term = term
        return True

    async def release(self) -> None:
        """Give the lease up (a clean stop): a standby leads at its next try."""
        was = self.leading()
        self._valid_until = 0.0
        if was and self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await self._conn.execute(RELEASE, {"holder": self.holder})
                log.info("alerting: gave the lease up")
        await self._drop()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(2, int(self.lease_s / 4)))
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                await conn.execute(SCHEMA)
            self._conn = conn
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _log_holder(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        with contextlib.suppress(psycopg.Error):
            row = await (await conn.execute(HOLDER)).fetchone()
            if row is not None:
                log.info("alerting: standing by; the lease is held by %s until %s", row[0],
                         row[1])
