"""SQLite state under VITALS_STATE_DIR (WAL): alerts, incidents, the outbox of notification
intents, silences, the audit log, and recent trend points for the nurse page.

One connection, used only from the service's event-loop thread. Every state change and the
intents it causes are written in one transaction, before anything is sent.
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
  alert_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, rule TEXT NOT NULL,
  severity TEXT NOT NULL, status TEXT NOT NULL, disposition TEXT NOT NULL,
  incident_id TEXT, received_at INTEGER NOT NULL, resolved_at INTEGER, resolved_by TEXT,
  event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_patient ON alerts(patient_id, status);
CREATE INDEX IF NOT EXISTS alerts_incident ON alerts(incident_id);
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents(state, patient_id);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id TEXT NOT NULL, patient_id TEXT NOT NULL,
  channel TEXT NOT NULL, target TEXT NOT NULL, action TEXT NOT NULL, step INTEGER,
  request TEXT NOT NULL, created_at INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0, sent_at INTEGER, response_status INTEGER,
  response_body TEXT);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(status);
CREATE TABLE IF NOT EXISTS silences (
  id INTEGER PRIMARY KEY AUTOINCREMENT, patient_id TEXT, rule TEXT, starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL, deleted_at INTEGER, deleted_by TEXT);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, event TEXT NOT NULL,
  patient_id TEXT, incident_id TEXT, alert_id TEXT, actor TEXT, channel TEXT, target TEXT,
  status TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient_id, at);
CREATE TABLE IF NOT EXISTS trends (
  patient_id TEXT NOT NULL, ts INTEGER NOT NULL, point TEXT NOT NULL,
  PRIMARY KEY (patient_id, ts));
"""

AUDIT_FIELDS = ("id", "at", "event", "patient_id", "incident_id", "alert_id", "actor",
                "channel", "target", "status", "detail")


class Store:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "alerting.sqlite3"
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in `tx`).
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives a power cut, which is what "durably recorded" promises Kafka.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        if self._depth:  # nested: part of the outer transaction
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
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    # alerts
    def alert(self, alert_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM alerts WHERE alert_id=?", (alert_id,)).fetchone()

    def insert_alert(self, ev: dict[str, Any], disposition: str, incident_id: str | None,
                     now: int) -> None:
        self.db.execute(
            "INSERT INTO alerts (alert_id, patient_id, rule, severity, status, disposition,"
            " incident_id, received_at, event) VALUES (?,?,?,?,?,?,?,?,?)",
            (ev["alert_id"], ev["patient_id"], ev["rule"], ev["severity"], ev["status"],
             disposition, incident_id, now, json.dumps(ev)))

    def resolve_alerts(self, where: str, args: tuple[Any, ...], now: int, by: str | None
                       ) -> None:
        self.db.execute(f"UPDATE alerts SET status='resolved', resolved_at=?, resolved_by=? "
                        f"WHERE status='firing' AND {where}", (now, by, *args))

    def alerts_of(self, incident_id: str, firing_only: bool = False) -> list[sqlite3.Row]:
        q = "SELECT * FROM alerts WHERE incident_id=?"
        if firing_only:
            q += " AND status='firing'"
        return self.db.execute(q + " ORDER BY received_at", (incident_id,)).fetchall()

    def open_alerts(self) -> list[sqlite3.Row]:
        """Firing alerts, and alerts of incidents not yet resolved (held resolves included)."""
        return self.db.execute(
            "SELECT a.* FROM alerts a LEFT JOIN incidents i ON a.incident_id = i.id "
            "WHERE a.status='firing' OR (i.state IS NOT NULL AND i.state != 'resolved')"
        ).fetchall()

    # incidents
    def save_incident(self, inc: Incident) -> None:
        self.db.execute("INSERT OR REPLACE INTO incidents (id, patient_id, state, data) "
                        "VALUES (?,?,?,?)", (inc.id, inc.patient_id, inc.state,
                                             json.dumps(dataclasses.asdict(inc))))

    def incident(self, iid: str) -> Incident | None:
        row = self.db.execute("SELECT data FROM incidents WHERE id=?", (iid,)).fetchone()
        return Incident(**json.loads(row["data"])) if row else None

    def open_incident_of(self, patient_id: str) -> Incident | None:
        row = self.db.execute("SELECT data FROM incidents WHERE patient_id=? AND "
                              "state != 'resolved' ORDER BY rowid DESC LIMIT 1",
                              (patient_id,)).fetchone()
        return Incident(**json.loads(row["data"])) if row else None

    def open_incidents(self) -> list[Incident]:
        rows = self.db.execute("SELECT data FROM incidents WHERE state != 'resolved'")
        return [Incident(**json.loads(r["data"])) for r in rows]

    # outbox
    def add_intent(self, inc: Incident, channel: str, target: str, action: str,
                   step: int | None, request: dict[str, Any], now: int) -> int:
        cur = self.db.execute(
            "INSERT INTO outbox (incident_id, patient_id, channel, target, action, step, request,"
            " created_at) VALUES (?,?,?,?,?,?,?,?)",
            (inc.id, inc.patient_id, channel, target, action, step, json.dumps(request), now))
        return int(cur.lastrowid or 0)

    def pending(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM outbox WHERE status='pending' ORDER BY id"
                               ).fetchall()

    def finish_intent(self, iid: int, status: str, attempts: int, now: int,
                      response_status: int | None, body: str) -> None:
        self.db.execute("UPDATE outbox SET status=?, attempts=?, sent_at=?, response_status=?, "
                        "response_body=? WHERE id=?",
                        (status, attempts, now, response_status, body[:2000], iid))

    def paged_targets(self, incident_id: str) -> list[sqlite3.Row]:
        """Distinct (channel, target) paged (or still being paged), with the last trigger's
        request: they are the ones to acknowledge and resolve."""
        return self.db.execute(
            "SELECT channel, target, request FROM outbox WHERE id IN (SELECT MAX(id) FROM outbox"
            " WHERE incident_id=? AND action='trigger' AND status != 'failed'"
            " GROUP BY channel, target)",
            (incident_id,)).fetchall()

    def delivery_errors(self, incident_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT channel, target, action, response_status, response_body "
                               "FROM outbox WHERE incident_id=? AND status='failed'",
                               (incident_id,)).fetchall()
        return [dict(r) for r in rows]

    # audit
    def audit(self, at: int, event: str, **kw: Any) -> None:
        cols = ["at", "event", *kw]
        self.db.execute(f"INSERT INTO audit ({', '.join(cols)}) VALUES "
                        f"({', '.join('?' * len(cols))})", (at, event, *kw.values()))

    def audit_rows(self, patient: str | None = None, since: int | None = None,
                   limit: int = 10_000) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM audit WHERE 1=1", []
        if patient:
            q += " AND patient_id=?"
            args.append(patient)
        if since is not None:
            q += " AND at>=?"
            args.append(since)
        rows = self.db.execute(q + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [dict(r) for r in rows]

    # trends
    def add_trend(self, patient_id: str, ts: int, point: str, keep_from: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO trends VALUES (?,?,?)", (patient_id, ts, point))
        self.db.execute("DELETE FROM trends WHERE patient_id=? AND ts<?", (patient_id, keep_from))

    def trends(self, patient_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT point FROM trends WHERE patient_id=? ORDER BY ts",
                               (patient_id,)).fetchall()
        return [json.loads(r["point"]) for r in rows]
