"""The alerting state in SQLite under VITALS_STATE_DIR (WAL, synchronous=FULL): alerts,
incidents, the outbox of notification intents, silences, the audit log, and recent trend points
for the nurse page. It implements `alerting.store.Store`.

Its calls block (a commit waits until the disk has the data), so the service makes them all on
one thread (`alerting.store.thread.StoreThread`), which opens the connection too. Every state
change and the intents it causes are written in one transaction, before anything is sent.

The tables and their migration are in `schema.py`; the state directory's files (modes, the
instance lock, problems in one line) in `state_dir.py`.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alerting.lifecycle import Incident
from alerting.store import Lane, Owner, Row
from alerting.store.schema import create
from alerting.store.state_dir import (
    FILE_MODE,
    FILE_NAME,
    StoreError,
    private_dir,
    private_file,
    private_umask,
    problem,
)


def _decoded(row: sqlite3.Row | None, column: str) -> dict[str, Any] | None:
    """A row as a dict, with one JSON column decoded."""
    if row is None:
        return None
    out = dict(row)
    out[column] = json.loads(out[column])
    return out


def _incident(row: sqlite3.Row | None) -> Incident | None:
    return Incident(**json.loads(row["data"])) if row else None


class SqliteStore:
    """`alerting.store.Store` in one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, state_dir: Path, timeout_s: float = 5.0) -> None:
        """Open (or create) the database; `StoreError` in one line if it cannot be used
        (corrupt, locked, disk full, unreadable)."""
        self.path = state_dir / FILE_NAME
        self._depth = 0
        try:
            private_dir(state_dir)
            # Created 0600 before SQLite opens it: SQLite gives -wal and -shm the same mode.
            private_file(self.path)
            for suffix in ("-wal", "-shm"):  # left by a version before this one
                side = self.path.with_name(self.path.name + suffix)
                if side.exists() and side.stat().st_mode & 0o077:
                    side.chmod(FILE_MODE)
            with private_umask():
                # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in `tx`).
                # check_same_thread=False: the service uses it on its store thread only, but a
                # test may read it from its own thread while nothing else runs.
                self.db = sqlite3.connect(self.path, isolation_level=None,
                                          check_same_thread=False, timeout=timeout_s)
                self.db.row_factory = sqlite3.Row
                self.db.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit survives a power cut, which "durably recorded" promises Kafka.
                self.db.execute("PRAGMA synchronous=FULL")
                create(self.db)  # the tables, and what an older database lacks
        except sqlite3.Error as exc:
            raise StoreError(problem(self.path, exc)) from None
        except OSError as exc:
            raise StoreError(f"alerting state ({exc.filename or self.path}): "
                             f"{exc.strerror or exc}") from None

    def location(self) -> str:
        """The database file."""
        return str(self.path)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction (BEGIN IMMEDIATE ... COMMIT); nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            # SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR): a
            # ROLLBACK then would fail and hide the error that says what happened.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    # alerts
    def alert(self, alert_id: str) -> Row | None:
        """The alert as recorded (its event decoded), or None."""
        return _decoded(self.db.execute("SELECT * FROM alerts WHERE alert_id=?",
                                        (alert_id,)).fetchone(), "event")

    def insert_alert(self, event: dict[str, Any], disposition: str, incident_id: str | None,
                     now: int) -> None:
        """Record an alert event and what became of it."""
        self.db.execute(
            "INSERT INTO alerts (alert_id, patient_id, rule, severity, status, disposition,"
            " incident_id, received_at, event) VALUES (?,?,?,?,?,?,?,?,?)",
            (event["alert_id"], event["patient_id"], event["rule"], event["severity"],
             event["status"], disposition, incident_id, now, json.dumps(event)))

    def resolve_alert(self, alert_id: str, now: int, by: str | None) -> None:
        """Mark one firing alert resolved."""
        self.db.execute("UPDATE alerts SET status='resolved', resolved_at=?, resolved_by=? "
                        "WHERE status='firing' AND alert_id=?", (now, by, alert_id))

    def resolve_incident_alerts(self, incident_id: str, now: int, by: str | None) -> None:
        """Mark every firing alert of an incident resolved."""
        self.db.execute("UPDATE alerts SET status='resolved', resolved_at=?, resolved_by=? "
                        "WHERE status='firing' AND incident_id=?", (now, by, incident_id))

    def alerts_of(self, incident_id: str, firing_only: bool = False) -> list[Row]:
        """An incident's alerts (events decoded), oldest first."""
        query = "SELECT * FROM alerts WHERE incident_id=?"
        if firing_only:
            query += " AND status='firing'"
        rows = self.db.execute(query + " ORDER BY received_at", (incident_id,)).fetchall()
        return [_decoded(row, "event") for row in rows]  # type: ignore[misc]

    def open_alerts(self) -> list[Row]:
        """Firing alerts, and alerts of incidents not yet resolved (held resolves included)."""
        rows = self.db.execute(
            "SELECT a.* FROM alerts a LEFT JOIN incidents i ON a.incident_id = i.id "
            "WHERE a.status='firing' OR (i.state IS NOT NULL AND i.state != 'resolved')"
        ).fetchall()
        return [_decoded(row, "event") for row in rows]  # type: ignore[misc]

    # incidents
    def save_incident(self, incident: Incident) -> None:
        """Insert or replace an incident."""
        self.db.execute("INSERT OR REPLACE INTO incidents (id, patient_id, state, data) "
                        "VALUES (?,?,?,?)",
                        (incident.id, incident.patient_id, incident.state,
                         json.dumps(dataclasses.asdict(incident))))

    def incident(self, incident_id: str) -> Incident | None:
        """One incident, or None."""
        return _incident(self.db.execute("SELECT data FROM incidents WHERE id=?",
                                         (incident_id,)).fetchone())

    def open_incident_of(self, patient_id: str) -> Incident | None:
        """The patient's newest incident that is not resolved, if any."""
        return _incident(self.db.execute(
            "SELECT data FROM incidents WHERE patient_id=? AND state != 'resolved' "
            "ORDER BY rowid DESC LIMIT 1", (patient_id,)).fetchone())

    def open_incidents(self) -> list[Incident]:
        """Every incident that is not resolved."""
        rows = self.db.execute("SELECT data FROM incidents WHERE state != 'resolved'")
        return [Incident(**json.loads(row["data"])) for row in rows]

    # outbox
    def add_intent(self, incident: Incident | Owner, channel: str, target: str, action: str,
                   step: int | None, request: dict[str, Any], now: int) -> int:
        """Put a notification intent in the outbox; returns its id."""
        cursor = self.db.execute(
            "INSERT INTO outbox (incident_id, patient_id, channel, target, action, step, request,"
            " created_at) VALUES (?,?,?,?,?,?,?,?)",
            (incident.id, incident.patient_id, channel, target, action, step,
             json.dumps(request), now))
        return int(cursor.lastrowid or 0)

    def pending_count(self) -> int:
        """How many intents are not sent yet."""
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE status='pending'"
                                   ).fetchone()[0])

    def pending_heads(self) -> list[Row]:
        """The oldest intent not sent yet of each (incident, channel, target) lane."""
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox WHERE status='pending'"
            " GROUP BY incident_id, channel, target) ORDER BY id").fetchall()
        return [_decoded(row, "request") for row in rows]  # type: ignore[misc]

    def next_pending(self, lane: Lane) -> Row | None:
        """A lane's oldest intent not sent yet (its request decoded)."""
        return _decoded(self.db.execute(
            "SELECT * FROM outbox WHERE status='pending' AND incident_id=? AND channel=? "
            "AND target=? ORDER BY id LIMIT 1", lane).fetchone(), "request")

    def finish_intent(self, intent_id: int, status: str, attempts: int, now: int,
                      response_status: int | None, body: str) -> None:
        """Mark an intent sent or failed, with the receiver's answer."""
        self.db.execute("UPDATE outbox SET status=?, attempts=?, sent_at=?, response_status=?, "
                        "response_body=? WHERE id=?",
                        (status, attempts, now, response_status, body[:2000], intent_id))

    def paged_targets(self, incident_id: str) -> list[Row]:
        """Each (channel, target) paged and not failed, with its last trigger's request.

        Pages still being sent count: these are the ones to acknowledge and resolve."""
        rows = self.db.execute(
            "SELECT channel, target, request FROM outbox WHERE id IN (SELECT MAX(id) FROM outbox"
            " WHERE incident_id=? AND action='trigger' AND status != 'failed'"
            " GROUP BY channel, target)", (incident_id,)).fetchall()
        return [_decoded(row, "request") for row in rows]  # type: ignore[misc]

    def delivery_errors(self, incident_id: str) -> list[dict[str, Any]]:
        """An incident's intents that failed, or are not delivered yet after retries
        (pending with attempts recorded): channel, target, action, status, response."""
        rows = self.db.execute("SELECT channel, target, action, status, response_status, "
                               "response_body FROM outbox WHERE incident_id=? AND "
                               "(status='failed' OR (status='pending' AND attempts > 0)) "
                               "ORDER BY id", (incident_id,)).fetchall()
        return [dict(row) for row in rows]

    # silences
    def add_silence(self, patient_id: str | None, rule: str | None, starts_at: int,
                    ends_at: int, reason: str, by: str, now: int) -> int:
        """Record a silence; returns its id."""
        cursor = self.db.execute(
            "INSERT INTO silences (patient_id, rule, starts_at, ends_at, reason, created_by,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (patient_id, rule, starts_at, ends_at, reason, by, now))
        return int(cursor.lastrowid or 0)

    def silence(self, silence_id: int) -> Row | None:
        """A silence that was not removed, or None."""
        row = self.db.execute("SELECT * FROM silences WHERE id=? AND deleted_at IS NULL",
                              (silence_id,)).fetchone()
        return dict(row) if row else None

    def delete_silence(self, silence_id: int, by: str, now: int) -> None:
        """Mark a silence removed."""
        self.db.execute("UPDATE silences SET deleted_at=?, deleted_by=? WHERE id=?",
                        (now, by, silence_id))

    def active_silences(self, now: int) -> list[dict[str, Any]]:
        """Silences in force at `now`, oldest first."""
        rows = self.db.execute("SELECT * FROM silences WHERE deleted_at IS NULL AND starts_at<=? "
                               "AND ends_at>? ORDER BY id", (now, now)).fetchall()
        return [dict(row) for row in rows]

    def matching_silence(self, patient_id: str, rule: str, now: int) -> Row | None:
        """The first active silence covering this patient's rule, if any."""
        row = self.db.execute(
            "SELECT * FROM silences WHERE deleted_at IS NULL AND starts_at<=? AND ends_at>? "
            "AND (patient_id IS NULL OR patient_id=?) AND (rule IS NULL OR rule=?) "
            "ORDER BY id LIMIT 1", (now, now, patient_id, rule)).fetchone()
        return dict(row) if row else None

    # audit
    def audit(self, at: int, event: str, **fields: Any) -> None:
        """Append an audit row (fields among AUDIT_FIELDS)."""
        columns = ["at", "event", *fields]
        self.db.execute(f"INSERT INTO audit ({', '.join(columns)}) VALUES "
                        f"({', '.join('?' * len(columns))})", (at, event, *fields.values()))

    def audit_rows(self, patient: str | None = None, since: int | None = None,
                   limit: int = 10_000) -> list[dict[str, Any]]:
        """Audit rows, oldest first, of one patient and/or from `since` (epoch ms)."""
        query, args = "SELECT * FROM audit WHERE 1=1", []
        if patient:
            query += " AND patient_id=?"
            args.append(patient)
        if since is not None:
            query += " AND at>=?"
            args.append(since)
        rows = self.db.execute(query + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [dict(row) for row in rows]

    # trends
    def add_trend(self, patient_id: str, ts: int, point: str, keep_from: int) -> None:
        """Keep one point (JSON) and forget the patient's points before `keep_from`."""
        self.db.execute("INSERT OR REPLACE INTO trends VALUES (?,?,?)", (patient_id, ts, point))
        self.db.execute("DELETE FROM trends WHERE patient_id=? AND ts<?", (patient_id, keep_from))

    def trends(self, patient_id: str) -> list[dict[str, Any]]:
        """A patient's points, oldest first."""
        rows = self.db.execute("SELECT point FROM trends WHERE patient_id=? ORDER BY ts",
                               (patient_id,)).fetchall()
        return [json.loads(row["point"]) for row in rows]

    # reports
    def add_report(self, patient_id: str, device_id: str, ts: int, kind: str, report: str,
                   keep_from: int) -> None:
        """Keep one report (JSON) and forget the patient's reports before `keep_from`."""
        self.db.execute("INSERT OR REPLACE INTO reports VALUES (?,?,?,?,?)",
                        (patient_id, device_id, ts, kind, report))
        self.db.execute("DELETE FROM reports WHERE patient_id=? AND ts<?",
                        (patient_id, keep_from))

    def latest_reports(self, limit: int) -> list[dict[str, Any]]:
        """The newest reports of all patients, newest first."""
        rows = self.db.execute("SELECT report FROM reports "
                               "ORDER BY ts DESC, patient_id, device_id, kind LIMIT ?",
                               (limit,)).fetchall()
        return [json.loads(row["report"]) for row in rows]

    def reports(self, patient_id: str, since: int, until: int) -> list[dict[str, Any]]:
        """A patient's reports from `since` to `until`, newest first."""
        rows = self.db.execute(
            "SELECT report FROM reports WHERE patient_id=? AND ts>=? AND ts<=? "
            "ORDER BY ts DESC, device_id, kind", (patient_id, since, until)).fetchall()
        return [json.loads(row["report"]) for row in rows]

    def watch_state(self) -> str | None:
        """The canary watch's state (JSON) as last saved, or None."""
        row = self.db.execute("SELECT state FROM watch WHERE id=1").fetchone()
        return None if row is None else str(row["state"])

    def save_watch_state(self, state: str) -> None:
        """Replace the canary watch's state (JSON)."""
        self.db.execute("INSERT OR REPLACE INTO watch (id, state) VALUES (1, ?)", (state,))
