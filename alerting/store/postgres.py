"""The alerting state in PostgreSQL, which two or more alerting instances may share. It
implements `alerting.store.Store` with the semantics of `alerting.store.sqlite.SqliteStore`:
the same calls, the same rows (JSON columns decoded), the same orders.

Transactions are explicit (the connection is in autocommit mode, `tx` says BEGIN and COMMIT),
and each begins by taking one advisory lock (`postgres_schema.LOCK_KEY`): the write
transactions of instances sharing the database run one after another, as SQLite's BEGIN
IMMEDIATE makes them. A connection the server dropped (restarted, terminated) is replaced at the
start of the next outermost transaction or read, once. Every failure is a `StoreError` of one
line naming the database, its password never shown. Its calls block: the service makes them on
the store thread, as SqliteStore's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import pq, sql
from psycopg.abc import Query
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from alerting.lifecycle import Incident
from alerting.store import Lane, Owner, Row
from alerting.store.postgres_schema import ALERT_COLUMNS, LOCK_KEY, create
from alerting.store.state_dir import StoreError
from vitals.settings import redact

Connection = psycopg.Connection[dict[str, Any]]
Params = tuple[Any, ...]


def _decoded(row: dict[str, Any] | None, column: str) -> dict[str, Any] | None:
    """A row with one JSON column decoded."""
    return None if row is None else row | {column: json.loads(row[column])}


def _decoded_all(rows: list[dict[str, Any]], column: str) -> list[Row]:
    """Rows with one JSON column decoded."""
    return [row | {column: json.loads(row[column])} for row in rows]


def _incident(row: dict[str, Any] | None) -> Incident | None:
    return Incident(**json.loads(row["data"])) if row else None


def _passwords(url: str) -> list[str]:
    """The password of `url` as written and as libpq reads it, to keep out of messages."""
    found: list[str] = []
    with suppress(ValueError):
        if (written := urlsplit(url).password) is not None:
            found += [written, unquote(written)]
    with suppress(psycopg.Error, ValueError):
        found.append(str(conninfo_to_dict(url).get("password") or ""))
    return sorted({p for p in found if p}, key=len, reverse=True)


class PostgresStore:
    """`alerting.store.Store` in a PostgreSQL database, shareable by several instances."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        """Connect and create the tables if missing; `StoreError` in one line if the database
        cannot be used (refused, wrong URL, authentication). `timeout_s` bounds connecting and
        the wait for another instance's transaction."""
        self.url = url
        self.timeout_s = timeout_s
        self._depth = 0
        self._closed = False
        self._conn: Connection | None = None
        try:
            self._conn = self._connect()
            create(self._conn)
        except (psycopg.Error, OSError, ValueError) as exc:
            self.close()
            raise StoreError(self._problem(exc)) from None

    def location(self) -> str:
        """The database's URL, its password redacted."""
        return redact(self.url)

    def close(self) -> None:
        """Close the connection, for good: it is not reopened."""
        self._closed = True
        self._drop()

    # the connection
    def _connect(self) -> Connection:
        conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                               connect_timeout=max(2, round(self.timeout_s)),
                               application_name="vitals-alerting")
        # Waiting for another instance's transaction longer than this is an error, as SQLite's
        # busy timeout makes it: a stuck peer must not hang this one silently.
        conn.execute("SELECT set_config('lock_timeout', %s, false)",
                     (f"{round(self.timeout_s * 1000)}ms",))
        return conn

    def _lost(self) -> bool:
        return self._conn is None or self._conn.closed

    def _drop(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error, OSError):
                self._conn.close()
            self._conn = None

    def _reconnect(self) -> Connection:
        if self._closed:
            raise psycopg.InterfaceError("the store was closed")
        self._drop()
        self._conn = self._connect()
        return self._conn

    def _problem(self, exc: BaseException) -> str:
        """One line naming the database and what is wrong, without its password."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        for password in _passwords(self.url):
            text = text.replace(password, "***")
        return f"alerting state ({self.location()}): {text}"

    def _run(self, query: Query, params: Params = (), *,
             read: bool = False) -> psycopg.Cursor[dict[str, Any]]:
        """One statement. Outside a transaction a connection known lost is replaced first,
        and a read that finds it dropped is made once more on a new one."""
        try:
            fresh = self._lost() and not self._depth
            conn = self._reconnect() if fresh else self._conn
            assert conn is not None
            try:
                return conn.execute(query, params)
            except (psycopg.Error, OSError):
                # not a write: it may have been done before the connection went
                if fresh or not read or self._depth or not self._lost():
                    raise
            return self._reconnect().execute(query, params)
        except (psycopg.Error, OSError) as exc:
            raise StoreError(self._problem(exc)) from None

    def _begin(self) -> None:
        """BEGIN and the store's lock; a connection found dropped is replaced, once."""
        def start(conn: Connection) -> None:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))

        try:
            fresh = self._lost()
            conn = self._reconnect() if fresh else self._conn
            assert conn is not None
            try:
                start(conn)
            except (psycopg.Error, OSError):
                if fresh or not self._lost():
                    raise
                start(self._reconnect())
        except (psycopg.Error, OSError) as exc:
            self._rollback()  # BEGIN done, the lock not taken (lock_timeout)
            raise StoreError(self._problem(exc)) from None

    def _rollback(self) -> None:
        # A dropped connection has nothing to roll back: the server did it.
        if not self._lost() and self._conn is not None and (
                self._conn.info.transaction_status != pq.TransactionStatus.IDLE):
            with suppress(psycopg.Error, OSError):
                self._conn.execute("ROLLBACK")

    def _commit(self) -> None:
        assert self._conn is not None
        if self._conn.info.transaction_status == pq.TransactionStatus.INERROR:
            # PostgreSQL answers COMMIT of a failed transaction with a silent rollback
            self._rollback()
            raise StoreError(self._problem(RuntimeError(
                "a statement failed in the transaction: rolled back")))
        try:
            self._conn.execute("COMMIT")
        except (psycopg.Error, OSError) as exc:
            raise StoreError(self._problem(exc)) from None

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction (BEGIN, the store's lock ... COMMIT); nested uses join the outer."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        else:
            self._commit()
        finally:
            self._depth = 0

    def _one(self, query: Query, params: Params = ()) -> dict[str, Any] | None:
        return self._run(query, params, read=True).fetchone()

    def _all(self, query: Query, params: Params = ()) -> list[dict[str, Any]]:
        return self._run(query, params, read=True).fetchall()

    # alerts
    def alert(self, alert_id: str) -> Row | None:
        """The alert as recorded (its event decoded), or None."""
        return _decoded(self._one(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id=%s",
                                  (alert_id,)), "event")

    def insert_alert(self, event: dict[str, Any], disposition: str, incident_id: str | None,
                     now: int) -> None:
        """Record an alert event and what became of it."""
        self._run(
            "INSERT INTO alerts (alert_id, patient_id, rule, severity, status, disposition,"
            " incident_id, received_at, event) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (event["alert_id"], event["patient_id"], event["rule"], event["severity"],
             event["status"], disposition, incident_id, now, json.dumps(event)))

    def resolve_alert(self, alert_id: str, now: int, by: str | None) -> None:
        """Mark one firing alert resolved."""
        self._run("UPDATE alerts SET status='resolved', resolved_at=%s, resolved_by=%s "
                  "WHERE status='firing' AND alert_id=%s", (now, by, alert_id))

    def resolve_incident_alerts(self, incident_id: str, now: int, by: str | None) -> None:
        """Mark every firing alert of an incident resolved."""
        self._run("UPDATE alerts SET status='resolved', resolved_at=%s, resolved_by=%s "
                  "WHERE status='firing' AND incident_id=%s", (now, by, incident_id))

    def alerts_of(self, incident_id: str, firing_only: bool = False) -> list[Row]:
        """An incident's alerts (events decoded), oldest first."""
        query = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE incident_id=%s"
        if firing_only:
            query += " AND status='firing'"
        rows = self._all(query + " ORDER BY received_at, seq", (incident_id,))
        return _decoded_all(rows, "event")

    def open_alerts(self) -> list[Row]:
        """Firing alerts, and alerts of incidents not yet resolved (held resolves included)."""
        columns = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))
        rows = self._all(
            f"SELECT {columns} FROM alerts a LEFT JOIN incidents i ON a.incident_id = i.id "
            "WHERE a.status='firing' OR (i.state IS NOT NULL AND i.state != 'resolved') "
            "ORDER BY a.seq")
        return _decoded_all(rows, "event")

    # incidents
    def save_incident(self, incident: Incident) -> None:
        """Insert or replace an incident; either way it becomes the newest saved."""
        self._run("INSERT INTO incidents (id, patient_id, state, data) VALUES (%s,%s,%s,%s) "
                  "ON CONFLICT (id) DO UPDATE SET patient_id=EXCLUDED.patient_id, "
                  "state=EXCLUDED.state, data=EXCLUDED.data, saved=EXCLUDED.saved",
                  (incident.id, incident.patient_id, incident.state,
                   json.dumps(dataclasses.asdict(incident))))

    def incident(self, incident_id: str) -> Incident | None:
        """One incident, or None."""
        return _incident(self._one("SELECT data FROM incidents WHERE id=%s", (incident_id,)))

    def open_incident_of(self, patient_id: str) -> Incident | None:
        """The patient's incident saved last among those not resolved, if any."""
        return _incident(self._one(
            "SELECT data FROM incidents WHERE patient_id=%s AND state != 'resolved' "
            "ORDER BY saved DESC LIMIT 1", (patient_id,)))

    def open_incidents(self) -> list[Incident]:
        """Every incident that is not resolved, in the order they were last saved."""
        rows = self._all("SELECT data FROM incidents WHERE state != 'resolved' ORDER BY saved")
        return [Incident(**json.loads(row["data"])) for row in rows]

    # outbox
    def add_intent(self, incident: Incident | Owner, channel: str, target: str, action: str,
                   step: int | None, request: dict[str, Any], now: int) -> int:
        """Put a notification intent in the outbox; returns its id."""
        row = self._run(
            "INSERT INTO outbox (incident_id, patient_id, channel, target, action, step, request,"
            " created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
            (incident.id, incident.patient_id, channel, target, action, step,
             json.dumps(request), now)).fetchone()
        return int(row["id"]) if row else 0

    def pending_count(self) -> int:
        """How many intents are not sent yet."""
        row = self._one("SELECT COUNT(*) AS n FROM outbox WHERE status='pending'")
        return int(row["n"]) if row else 0

    def pending_heads(self) -> list[Row]:
        """The oldest intent not sent yet of each (incident, channel, target) lane."""
        rows = self._all(
            "SELECT * FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox WHERE status='pending'"
            " GROUP BY incident_id, channel, target) ORDER BY id")
        return _decoded_all(rows, "request")

    def next_pending(self, lane: Lane) -> Row | None:
        """A lane's oldest intent not sent yet (its request decoded)."""
        return _decoded(self._one(
            "SELECT * FROM outbox WHERE status='pending' AND incident_id=%s AND channel=%s "
            "AND target=%s ORDER BY id LIMIT 1", lane), "request")

    def finish_intent(self, intent_id: int, status: str, attempts: int, now: int,
                      response_status: int | None, body: str) -> None:
        """Mark an intent sent or failed, with the receiver's answer."""
        self._run("UPDATE outbox SET status=%s, attempts=%s, sent_at=%s, response_status=%s, "
                  "response_body=%s WHERE id=%s",
                  (status, attempts, now, response_status, body[:2000], intent_id))

    def paged_targets(self, incident_id: str) -> list[Row]:
        """Each (channel, target) paged and not failed, with its last trigger's request.

        Pages still being sent count: these are the ones to acknowledge and resolve."""
        rows = self._all(
            "SELECT channel, target, request FROM outbox WHERE id IN (SELECT MAX(id) FROM outbox"
            " WHERE incident_id=%s AND action='trigger' AND status != 'failed'"
            " GROUP BY channel, target) ORDER BY id", (incident_id,))
        return _decoded_all(rows, "request")

    def delivery_errors(self, incident_id: str) -> list[dict[str, Any]]:
        """An incident's intents that failed, or are not delivered yet after retries
        (pending with attempts recorded): channel, target, action, status, response."""
        return self._all("SELECT channel, target, action, status, response_status, "
                         "response_body FROM outbox WHERE incident_id=%s AND "
                         "(status='failed' OR (status='pending' AND attempts > 0)) ORDER BY id",
                         (incident_id,))

    # silences
    def add_silence(self, patient_id: str | None, rule: str | None, starts_at: int,
                    ends_at: int, reason: str, by: str, now: int) -> int:
        """Record a silence; returns its id."""
        row = self._run(
            "INSERT INTO silences (patient_id, rule, starts_at, ends_at, reason, created_by,"
            " created_at) VALUES (%s,%s,%s,%s,%s,%s,%s) RETURNING id",
            (patient_id, rule, starts_at, ends_at, reason, by, now)).fetchone()
        return int(row["id"]) if row else 0

    def silence(self, silence_id: int) -> Row | None:
        """A silence that was not removed, or None."""
        return self._one("SELECT * FROM silences WHERE id=%s AND deleted_at IS NULL",
                         (silence_id,))

    def delete_silence(self, silence_id: int, by: str, now: int) -> None:
        """Mark a silence removed."""
        self._run("UPDATE silences SET deleted_at=%s, deleted_by=%s WHERE id=%s",
                  (now, by, silence_id))

    def active_silences(self, now: int) -> list[dict[str, Any]]:
        """Silences in force at `now`, oldest first."""
        return self._all("SELECT * FROM silences WHERE deleted_at IS NULL AND starts_at<=%s "
                         "AND ends_at>%s ORDER BY id", (now, now))

    def matching_silence(self, patient_id: str, rule: str, now: int) -> Row | None:
        """The first active silence covering this patient's rule, if any."""
        return self._one(
            "SELECT * FROM silences WHERE deleted_at IS NULL AND starts_at<=%s AND ends_at>%s "
            "AND (patient_id IS NULL OR patient_id=%s) AND (rule IS NULL OR rule=%s) "
            "ORDER BY id LIMIT 1", (now, now, patient_id, rule))

    # audit
    def audit(self, at: int, event: str, **fields: Any) -> None:
        """Append an audit row (fields among AUDIT_FIELDS)."""
        columns = ["at", "event", *fields]
        self._run(sql.SQL("INSERT INTO audit ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns))),
            (at, event, *fields.values()))

    def audit_rows(self, patient: str | None = None, since: int | None = None,
                   limit: int = 10_000) -> list[dict[str, Any]]:
        """Audit rows, oldest first, of one patient and/or from `since` (epoch ms)."""
        query, args = "SELECT * FROM audit WHERE 1=1", []
        if patient:
            query += " AND patient_id=%s"
            args.append(patient)
        if since is not None:
            query += " AND at>=%s"
            args.append(since)
        return self._all(query + " ORDER BY id LIMIT %s", (*args, limit))

    # trends
    def add_trend(self, patient_id: str, ts: int, point: str, keep_from: int) -> None:
        """Keep one point (JSON) and forget the patient's points before `keep_from`."""
        self._run("INSERT INTO trends (patient_id, ts, point) VALUES (%s,%s,%s) "
                  "ON CONFLICT (patient_id, ts) DO UPDATE SET point=EXCLUDED.point",
                  (patient_id, ts, point))
        self._run("DELETE FROM trends WHERE patient_id=%s AND ts<%s", (patient_id, keep_from))

    def trends(self, patient_id: str) -> list[dict[str, Any]]:
        """A patient's points, oldest first."""
        rows = self._all("SELECT point FROM trends WHERE patient_id=%s ORDER BY ts",
                         (patient_id,))
        return [json.loads(row["point"]) for row in rows]

    # reports
    def add_report(self, patient_id: str, device_id: str, ts: int, kind: str, report: str,
                   keep_from: int) -> None:
        """Keep one report (JSON) and forget the patient's reports before `keep_from`."""
        self._run("INSERT INTO reports (patient_id, device_id, ts, kind, report) "
                  "VALUES (%s,%s,%s,%s,%s) ON CONFLICT (patient_id, ts, device_id, kind) "
                  "DO UPDATE SET report=EXCLUDED.report",
                  (patient_id, device_id, ts, kind, report))
        self._run("DELETE FROM reports WHERE patient_id=%s AND ts<%s", (patient_id, keep_from))

    def latest_reports(self, limit: int) -> list[dict[str, Any]]:
        """The newest reports of all patients, newest first."""
        rows = self._all("SELECT report FROM reports "
                         "ORDER BY ts DESC, patient_id, device_id, kind LIMIT %s", (limit,))
        return [json.loads(row["report"]) for row in rows]

    def reports(self, patient_id: str, since: int, until: int) -> list[dict[str, Any]]:
        """A patient's reports from `since` to `until`, newest first."""
        rows = self._all("SELECT report FROM reports WHERE patient_id=%s AND ts>=%s AND ts<=%s "
                         "ORDER BY ts DESC, device_id, kind", (patient_id, since, until))
        return [json.loads(row["report"]) for row in rows]

    def watch_state(self) -> str | None:
        """The canary watch's state (JSON) as last saved, or None."""
        row = self._one("SELECT state FROM watch WHERE id=1")
        return None if row is None else str(row["state"])

    def save_watch_state(self, state: str) -> None:
        """Replace the canary watch's state (JSON)."""
        self._run("INSERT INTO watch (id, state) VALUES (1, %s) "
                  "ON CONFLICT (id) DO UPDATE SET state=EXCLUDED.state", (state,))
