"""The alerting database's tables (SQLite), and the migration of a database made by an earlier
version: what it lacks is added at open, nothing is dropped or rewritten."""

from __future__ import annotations

import sqlite3

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
  status TEXT, detail TEXT, source TEXT);
CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient_id, at);
CREATE TABLE IF NOT EXISTS watch (
  id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trends (
  patient_id TEXT NOT NULL, ts INTEGER NOT NULL, point TEXT NOT NULL,
  PRIMARY KEY (patient_id, ts));
CREATE TABLE IF NOT EXISTS reports (
  patient_id TEXT NOT NULL, device_id TEXT NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL,
  report TEXT NOT NULL, PRIMARY KEY (patient_id, ts, device_id, kind));
CREATE INDEX IF NOT EXISTS reports_ts ON reports(ts);
"""
# Columns added after a table was first shipped: (table, column, declaration). A database made
# by an earlier version gets them at open (ALTER TABLE ADD COLUMN; its old rows hold NULL).
ADDED_COLUMNS = (
    ("audit", "source", "TEXT"),  # an API request's source address (it was in `target`)
)


def migrate(db: sqlite3.Connection) -> None:
    """Bring a database made by an earlier version up to SCHEMA: the columns it lacks."""
    for table, column, declaration in ADDED_COLUMNS:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def create(db: sqlite3.Connection) -> None:
    """The tables, created if missing, and a database made by an earlier version migrated."""
    db.executescript(SCHEMA)
    migrate(db)
