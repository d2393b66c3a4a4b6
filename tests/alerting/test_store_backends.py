"""Both stores, SQLite and PostgreSQL, held to the same expectations call for call: the same
rows, keys, types and orders. Then what only PostgreSQL has: two instances on one database
(their transactions serialize, they create the tables together), a server that restarts or drops
the connection, and its errors in one line without the password."""

from __future__ import annotations

import contextlib
import inspect
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from alerting import store as interface
from alerting.lifecycle import Incident
from alerting.store import AUDIT_FIELDS, Owner, Store
from alerting.store.postgres import PostgresStore
from alerting.store.sqlite import SqliteStore
from alerting.store.state_dir import StoreError
from harness import servers
from tests.alerting.support import event

ALERT_KEYS = {"alert_id", "patient_id", "rule", "severity", "status", "disposition",
              "incident_id", "received_at", "resolved_at", "resolved_by", "event"}
OUTBOX_KEYS = {"id", "incident_id", "patient_id", "channel", "target", "action", "step",
               "request", "created_at", "status", "attempts", "sent_at", "response_status",
               "response_body"}
SILENCE_KEYS = {"id", "patient_id", "rule", "starts_at", "ends_at", "reason", "created_by",
                "created_at", "deleted_at", "deleted_by"}
PATIENCE_S = 120  # bounds on waits for another thread or the server: generous, the box is busy


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each backend in turn (the PostgreSQL cluster starts only for its half)."""
    if request.param == "sqlite":
        opened: Store = SqliteStore(tmp_path / "state")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
    yield opened
    opened.close()


def alert_event(patient: str = "P001", start: int = 1_795_000_000_000, **kw: Any
                ) -> dict[str, Any]:
    return msgspec.to_builtins(event(patient, start=start, **kw))


def incident(incident_id: str, patient: str = "P001", state: str = "paged") -> Incident:
    return Incident(id=incident_id, patient_id=patient, team="ward", severity="error",
                    opened_at=1_000, state=state)


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition`, bounded generously; a failure names what did not happen."""
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {PATIENCE_S} s: {what}"
        time.sleep(0.02)


def test_alerts_are_recorded_resolved_and_listed(store: Store) -> None:
    late, early = alert_event(start=2_000), alert_event(start=1_000, rule="tachycardia")
    with store.tx():
        store.insert_alert(late, "paged", "I1", now=20)
        store.insert_alert(early, "paged", "I1", now=10)
        store.insert_alert(alert_event("P002"), "silenced", None, now=30)
    row = store.alert(late["alert_id"])
    assert row is not None and set(row) == ALERT_KEYS
    assert row["event"] == late and row["received_at"] == 20
    assert type(row["received_at"]) is int
    assert (row["status"], row["disposition"], row["resolved_at"]) == ("firing", "paged", None)
    assert store.alert("nope") is None
    # oldest received first
    assert [a["alert_id"] for a in store.alerts_of("I1")] == [early["alert_id"],
                                                               late["alert_id"]]
    store.resolve_alert(early["alert_id"], 40, "bob")
    store.resolve_alert(early["alert_id"], 50, "carol")  # resolved already: unchanged
    resolved = store.alert(early["alert_id"])
    assert resolved is not None
    assert (resolved["status"], resolved["resolved_at"], resolved["resolved_by"]) == (
        "resolved", 40, "bob")
    assert [a["alert_id"] for a in store.alerts_of("I1", firing_only=True)] == [
        late["alert_id"]]
    # firing ones, in the order received, whatever their incident
    assert [a["alert_id"] for a in store.open_alerts()] == [late["alert_id"],
                                                             alert_event("P002")["alert_id"]]
    store.save_incident(incident("I1"))  # open: its resolved alert counts as well
    assert len(store.open_alerts()) == 3
    store.resolve_incident_alerts("I1", 60, None)
    assert [a["resolved_at"] for a in store.alerts_of("I1")] == [40, 60]
    store.save_incident(incident("I1", state="resolved"))
    assert [a["patient_id"] for a in store.open_alerts()] == ["P002"]


def test_incidents_are_saved_replaced_and_found(store: Store) -> None:
    first = incident("I1")
    store.save_incident(first)
    assert store.incident("I1") == first
    assert store.incident("nope") is None
    first.state, first.acked_by, first.acked_at = "acknowledged", "bob", 5_000
    store.save_incident(first)
    assert store.incident("I1") == first
    store.save_incident(incident("I2", patient="P002"))
    assert [i.id for i in store.open_incidents()] == ["I1", "I2"]
    assert store.open_incident_of("P003") is None


def test_the_open_incident_of_a_patient_is_the_one_saved_last(store: Store) -> None:
    # SQLite's INSERT OR REPLACE deletes and inserts anew, with a new rowid: an incident saved
    # again becomes the newest. PostgreSQL's `saved` column does as SQLite's rowid does.
    store.save_incident(incident("I1"))
    store.save_incident(incident("I2"))
    assert store.open_incident_of("P001") == incident("I2")
    store.save_incident(incident("I1"))  # saved again: now the newest
    found = store.open_incident_of("P001")
    assert found is not None and found.id == "I1"
    assert [i.id for i in store.open_incidents()] == ["I2", "I1"]
    store.save_incident(incident("I1", state="resolved"))
    found = store.open_incident_of("P001")
    assert found is not None and found.id == "I2"


def test_the_outbox_sends_each_lane_in_order(store: Store) -> None:
    i1, i2 = incident("I1"), incident("I2", patient="P002")
    with store.tx():
        alice = store.add_intent(i1, "pagerduty", "key-alice", "trigger", 0, {"n": 1}, 10)
        bob = store.add_intent(i1, "pagerduty", "key-bob", "trigger", 1, {"n": 2}, 11)
        ack = store.add_intent(i1, "pagerduty", "key-alice", "acknowledge", None, {"n": 3}, 12)
        hook = store.add_intent(i2, "webhook", "registrar", "trigger", 0, {"n": 4}, 13)
        own = store.add_intent(Owner("vitals-watch"), "email", "ops", "trigger", None,
                               {"n": 5}, 14)
    assert [alice, bob, ack, hook, own] == sorted({alice, bob, ack, hook, own})
    assert all(type(i) is int for i in (alice, bob, ack, hook, own))
    assert store.pending_count() == 5
    heads = store.pending_heads()
    assert [h["id"] for h in heads] == [alice, bob, hook, own]
    assert set(heads[0]) == OUTBOX_KEYS
    assert heads[0]["request"] == {"n": 1} and heads[0]["step"] == 0
    assert (heads[0]["status"], heads[0]["attempts"], heads[0]["sent_at"]) == ("pending", 0,
                                                                               None)
    assert (heads[3]["incident_id"], heads[3]["patient_id"]) == ("vitals-watch", "vitals")
    lane = ("I1", "pagerduty", "key-alice")
    head = store.next_pending(lane)
    assert head is not None and head["id"] == alice and head["request"] == {"n": 1}
    store.finish_intent(alice, "sent", 1, 20, 202, "accepted")
    head = store.next_pending(lane)
    assert head is not None and (head["id"], head["action"]) == (ack, "acknowledge")
    assert store.next_pending(("I9", "pagerduty", "key-alice")) is None
    store.finish_intent(bob, "failed", 3, 21, 400, "x" * 3000)
    assert store.pending_count() == 3
    assert [h["id"] for h in store.pending_heads()] == [ack, hook, own]
    assert store.delivery_errors("I1") == [{"channel": "pagerduty", "target": "key-bob",
                                            "action": "trigger", "status": "failed",
                                            "response_status": 400,
                                            "response_body": "x" * 2000}]
    assert store.delivery_errors("I2") == []
    # paged and not failed, pages still being sent included; the last trigger's request
    assert store.paged_targets("I1") == [{"channel": "pagerduty", "target": "key-alice",
                                          "request": {"n": 1}}]
    again = store.add_intent(i1, "pagerduty", "key-alice", "trigger", 2, {"n": 6}, 30)
    store.add_intent(i1, "webhook", "registrar", "trigger", 2, {"n": 7}, 31)
    assert store.paged_targets("I1") == [
        {"channel": "pagerduty", "target": "key-alice", "request": {"n": 6}},
        {"channel": "webhook", "target": "registrar", "request": {"n": 7}}]
    assert again > own


def test_silences_are_added_matched_and_removed(store: Store) -> None:
    everyone = store.add_silence(None, None, 100, 200, "maintenance", "ops", 50)
    fever = store.add_silence("P001", "fever", 150, 300, "known fever", "bob", 60)
    other = store.add_silence("P002", None, 0, 1_000, "device swap", "bob", 70)
    assert [everyone, fever, other] == sorted({everyone, fever, other})
    row = store.silence(fever)
    assert row is not None and set(row) == SILENCE_KEYS
    assert (row["patient_id"], row["rule"], row["ends_at"], row["deleted_at"]) == (
        "P001", "fever", 300, None)
    assert store.silence(10_000) is None
    assert [s["id"] for s in store.active_silences(160)] == [everyone, fever, other]
    assert [s["id"] for s in store.active_silences(200)] == [fever, other]  # ends_at excluded
    assert [s["id"] for s in store.active_silences(99)] == [other]
    found = store.matching_silence("P001", "fever", 160)
    assert found is not None and found["id"] == everyone  # the first of those that match
    found = store.matching_silence("P001", "fever", 250)
    assert found is not None and found["id"] == fever
    assert store.matching_silence("P001", "tachycardia", 250) is None
    found = store.matching_silence("P002", "tachycardia", 250)
    assert found is not None and found["id"] == other
    store.delete_silence(fever, "carol", 260)
    assert store.silence(fever) is None
    assert store.matching_silence("P001", "fever", 270) is None
    assert [s["id"] for s in store.active_silences(270)] == [other]


def test_the_audit_log_is_filtered_by_patient_and_time(store: Store) -> None:
    with store.tx():
        store.audit(10, "received", patient_id="P001", alert_id="A1", incident_id="I1")
        store.audit(20, "read", actor="alice", channel="http", source="10.0.0.8",
                    detail="GET /alerts")
        store.audit(30, "acknowledged", patient_id="P001", actor="bob", status="ok")
        store.audit(40, "received", patient_id="P002")
    rows = store.audit_rows()
    assert [r["at"] for r in rows] == [10, 20, 30, 40]
    assert all(set(r) == set(AUDIT_FIELDS) for r in rows)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert (rows[1]["source"], rows[1]["target"], rows[1]["actor"]) == ("10.0.0.8", None,
                                                                       "alice")
    assert [r["at"] for r in store.audit_rows(patient="P001")] == [10, 30]
    assert [r["at"] for r in store.audit_rows(since=30)] == [30, 40]
    assert [r["at"] for r in store.audit_rows(patient="P001", since=20)] == [30]
    assert [r["at"] for r in store.audit_rows(limit=2)] == [10, 20]
    assert [r["at"] for r in store.audit_rows(patient="")] == [10, 20, 30, 40]  # no filter


def test_trends_keep_the_recent_points(store: Store) -> None:
    store.add_trend("P001", 100, '{"t": 100, "hr": 80}', keep_from=0)
    store.add_trend("P001", 300, '{"t": 300, "hr": 90}', keep_from=0)
    store.add_trend("P001", 200, '{"t": 200, "hr": 85}', keep_from=0)
    store.add_trend("P002", 50, '{"t": 50}', keep_from=0)
    assert [p["t"] for p in store.trends("P001")] == [100, 200, 300]
    store.add_trend("P001", 300, '{"t": 300, "hr": 95}', keep_from=200)  # replaced; 100 gone
    assert store.trends("P001") == [{"t": 200, "hr": 85}, {"t": 300, "hr": 95}]
    assert store.trends("P002") == [{"t": 50}]  # another patient's are kept
    assert store.trends("P003") == []


def test_reports_are_kept_a_while_and_read_newest_first(store: Store) -> None:
    for ts, kind in ((100, "symptoms"), (300, "neuro_check"), (200, "symptoms")):
        store.add_report("P001", "app", ts, kind, f'{{"ts": {ts}, "kind": "{kind}"}}', 0)
    store.add_report("P002", "app", 150, "symptoms", '{"ts": 150}', 0)
    assert [r["ts"] for r in store.reports("P001", 0, 1000)] == [300, 200, 100]
    assert [r["ts"] for r in store.reports("P001", 150, 250)] == [200]  # both ends included
    assert [r["ts"] for r in store.reports("P001", 200, 300)] == [300, 200]
    # the same report again replaces it; the patient's older ones are forgotten
    store.add_report("P001", "app", 300, "neuro_check", '{"ts": 300, "again": true}', 150)
    assert store.reports("P001", 0, 1000) == [{"ts": 300, "again": True}, {"ts": 200,
                                                                            "kind": "symptoms"}]
    assert store.reports("P002", 0, 1000) == [{"ts": 150}]  # another patient's are kept
    assert store.reports("P003", 0, 1000) == []
    assert [(r["ts"]) for r in store.latest_reports(2)] == [300, 200]  # of every patient
    assert [(r["ts"]) for r in store.latest_reports(5)] == [300, 200, 150]


def test_json_reads_back_as_written(store: Store) -> None:
    assert store.watch_state() is None
    state = '{"b": 1,  "a": [1.0, 2e3], "s": "38.4 °C \\u00e9"}'
    store.save_watch_state(state)
    assert store.watch_state() == state  # byte for byte
    store.save_watch_state("{}")
    assert store.watch_state() == "{}"
    odd = alert_event(evidence={"value": 38.40000000000001, "note": "é\u2028\u0000", "n": None})
    store.insert_alert(odd, "paged", "I1", now=1)
    row = store.alert(odd["alert_id"])
    assert row is not None and row["event"] == odd


def test_nested_transactions_join_the_outer_one_and_a_failure_leaves_nothing(
        store: Store) -> None:
    with contextlib.suppress(RuntimeError), store.tx():
        store.insert_alert(alert_event(), "paged", "I1", now=1)
        store.save_incident(incident("I1"))
        with store.tx():  # nested: part of the outer transaction
            store.add_intent(incident("I1"), "pagerduty", "key-alice", "trigger", 0, {}, 1)
            store.add_silence(None, None, 0, 10, "r", "bob", 1)
            store.audit(2, "page", patient_id="P001")
        store.add_trend("P001", 1, "{}", keep_from=0)
        store.save_watch_state("{}")
        raise RuntimeError("a stage failed")
    assert store.alert(alert_event()["alert_id"]) is None
    assert store.incident("I1") is None and store.open_incidents() == []
    assert (store.pending_count(), store.active_silences(5), store.audit_rows()) == (0, [], [])
    assert (store.trends("P001"), store.watch_state()) == ([], None)
    with store.tx():
        store.audit(3, "received", patient_id="P001")
        with store.tx():
            store.audit(4, "page", patient_id="P001")
    assert [row["event"] for row in store.audit_rows()] == ["received", "page"]


def test_a_statement_that_fails_fails_its_transaction(store: Store) -> None:
    store.insert_alert(alert_event(), "paged", "I1", now=1)
    with pytest.raises((sqlite3.Error, StoreError)), store.tx():
        store.audit(1, "received", patient_id="P001")
        store.insert_alert(alert_event(), "paged", "I1", now=2)  # the same alert again
    assert store.audit_rows() == []
    assert store.pending_count() == 0  # the store is still usable


def test_the_postgres_store_implements_the_whole_interface() -> None:
    wanted = {name: inspect.signature(value) for part in interface.Store.__mro__
              if part.__module__ == interface.__name__
              for name, value in vars(part).items() if callable(value) and name[0] != "_"}
    assert {"alert", "tx", "add_intent", "audit", "trends", "close"} <= set(wanted)
    for name, signature in wanted.items():
        assert list(inspect.signature(getattr(PostgresStore, name)).parameters) == list(
            signature.parameters), name


# PostgreSQL only


def backends(url: str, where: str) -> int:
    """How many of the store's connections to this database satisfy `where`."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
            f"application_name = 'vitals-alerting' AND {where}").fetchone()
    return int(row[0]) if row else 0


def terminate_stores(url: str) -> None:
    """End the stores' connections to this database, as the server would, and wait until
    they are gone."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid, 60000) FROM pg_stat_activity WHERE "
                     "datname = current_database() AND application_name = 'vitals-alerting'")


def test_a_transaction_of_one_instance_holds_back_the_others(postgres_url: str) -> None:
    first = PostgresStore(postgres_url, timeout_s=PATIENCE_S)
    second = PostgresStore(postgres_url, timeout_s=PATIENCE_S)
    seen: list[list[str]] = []
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with second.tx():
                seen.append([row["event"] for row in second.audit_rows()])
                second.audit(3, "second")
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    with first.tx():
        first.audit(1, "first")
        thread = threading.Thread(target=other)
        thread.start()
        until(lambda: backends(postgres_url, "wait_event = 'advisory'") == 1,
              "the second instance waits for the first one's transaction")
        first.audit(2, "first again")
    thread.join(PATIENCE_S)
    assert not thread.is_alive() and errors == []
    assert seen == [["first", "first again"]]  # it read only after the first had committed
    assert [row["event"] for row in first.audit_rows()] == ["first", "first again", "second"]
    first.close()
    second.close()


def test_instances_opening_a_new_database_together_create_the_tables_once(
        postgres_url: str) -> None:
    barrier = threading.Barrier(4)
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            barrier.wait(PATIENCE_S)
            opened.append(PostgresStore(postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE_S)
    assert errors == [] and len(opened) == 4
    opened[0].audit(1, "one")
    assert [row["event"] for row in opened[3].audit_rows()] == ["one"]
    for each in opened:
        each.close()


def test_a_restarted_server_is_survived_by_the_next_transaction_and_read(
        postgres_server: servers.Postgres, postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    with store.tx():
        store.audit(1, "before")
    postgres_server.restart()  # same port, same data
    with store.tx():
        store.audit(2, "after")
    postgres_server.restart()
    assert [row["event"] for row in store.audit_rows()] == ["before", "after"]  # a read too
    store.close()


def test_a_dropped_connection_fails_its_transaction_only(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    terminate_stores(postgres_url)
    assert store.pending_count() == 0  # a read outside a transaction reconnects
    with pytest.raises(StoreError) as raised, store.tx():
        store.audit(1, "lost")
        terminate_stores(postgres_url)
        store.audit(2, "lost too")
    assert "\n" not in str(raised.value)
    with store.tx():  # the next transaction has a new connection
        store.audit(3, "kept")
    assert [row["event"] for row in store.audit_rows()] == ["kept"]
    assert backends(postgres_url, "true") == 1
    store.close()


def test_a_failure_swallowed_inside_a_transaction_fails_its_commit(postgres_url: str) -> None:
    # PostgreSQL would answer COMMIT with a silent rollback: the store says so instead
    store = PostgresStore(postgres_url)
    store.insert_alert(alert_event(), "paged", None, now=1)
    with pytest.raises(StoreError, match="rolled back"), store.tx():
        store.audit(1, "received")
        with contextlib.suppress(StoreError):
            store.insert_alert(alert_event(), "paged", None, now=2)
    assert store.audit_rows() == []
    store.close()


@pytest.mark.parametrize("url", [
    "postgresql://postgres:s3cret-pw@127.0.0.1:{closed}/postgres",  # refused
    "postgresql://postgres:s3cret-pw@127.0.0.1:{port}/no_such_database",
    "postgresql://nobody_here:s3cret-pw@127.0.0.1:{port}/postgres",
    "postgresql://postgres:s3cret-pw@127.0.0.1:not-a-port/postgres",
    "postgresql://postgres:s3cret%2Dpw@127.0.0.1:{port}/postgres?sslmode=bogus",
])
def test_a_database_that_cannot_be_used_is_one_line_without_the_password(
        postgres_server: servers.Postgres, url: str) -> None:
    url = url.format(closed=servers.free_port(), port=postgres_server.port)
    with pytest.raises(StoreError) as raised:
        PostgresStore(url)
    said = str(raised.value)
    assert "\n" not in said and "s3cret" not in said, said
    assert said.startswith("alerting state (postgresql://")
    assert ":***@" in said


def test_the_location_hides_the_password(postgres_url: str) -> None:
    # trust authentication: the password is not even asked for
    store = PostgresStore(postgres_url.replace("postgres@", "postgres:s3cret@"))
    assert store.location() == postgres_url.replace("postgres@", "postgres:***@")
    store.close()
    with pytest.raises(StoreError, match="closed"):  # not reopened behind the caller's back
        store.audit_rows()


def test_a_crashed_server_keeps_what_was_committed_and_leaves_no_process(
        postgres_server: servers.Postgres, postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    with store.tx():
        store.audit(1, "committed")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        pids = [int(row[0]) for row in conn.execute("SELECT pid FROM pg_stat_activity")]
    assert postgres_server.proc is not None
    pids.append(postgres_server.proc.pid)
    postgres_server.kill()  # SIGKILL: no shutdown checkpoint, recovery at the next start

    def running(pid: int) -> bool:  # a zombie is not: the machine's init reaps it
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
        except OSError:
            return False

    assert [pid for pid in pids if running(pid)] == []
    postgres_server.start()
    assert [row["event"] for row in store.audit_rows()] == ["committed"]
    store.close()
