"""The device states the page shows, from what the broker delivers: judged by ingest's parser,
newest reading first, bounded in memory."""

from __future__ import annotations

import json

from patient_app.devices import MAX_DEVICES, DeviceBoard
from vitals.patients import Patient, PatientRegistry

NOW = 1_795_000_000_000
REGISTRY = PatientRegistry([Patient(id="P001", infusion="2026-11-18", team="haem-a"),
                            Patient(id="P002", infusion="2026-11-18", team="haem-a")])


def feed(board: DeviceBoard, topic: str, doc: dict, at: int = NOW) -> None:
    board.feed(topic, json.dumps(doc).encode(), at)


def test_a_store_and_forward_batch_counts_by_its_newest_reading() -> None:
    board = DeviceBoard(REGISTRY)
    feed(board, "vitals/v1/P001/ox-1", {"readings": [
        {"ts": NOW - 3_600_000, "kind": "oximetry", "spo2": 97, "battery": 60},
        {"ts": NOW - 600_000, "kind": "oximetry", "spo2": 96, "battery": 58},
        {"ts": NOW - 1_800_000, "kind": "oximetry", "spo2": 95, "battery": 59}]})
    [d] = board.views("P001")
    assert (d["type"], d["last_reading"], d["battery"]) == ("oximeter", NOW - 600_000, 58)
    # an older upload afterwards does not turn the clock back
    feed(board, "vitals/v1/P001/ox-1", {"ts": NOW - 7_200_000, "kind": "oximetry", "hr": 80,
                                        "battery": 70})
    assert board.views("P001")[0]["last_reading"] == NOW - 600_000
    assert board.views("P001")[0]["battery"] == 58


def test_a_clock_slightly_ahead_is_never_later_than_the_receipt() -> None:
    board = DeviceBoard(REGISTRY)
    feed(board, "vitals/v1/P001/th-1", {"ts": NOW + 120_000, "kind": "temperature",
                                        "temp": 37.0})
    assert board.views("P001")[0]["last_reading"] == NOW


def test_what_ingest_refuses_the_app_itself_and_other_patients_are_not_shown() -> None:
    board = DeviceBoard(REGISTRY)
    feed(board, "vitals/v1/P001/th-1", {"ts": NOW, "kind": "temperature", "temp": 99})
    feed(board, "vitals/v1/P001/th-2", {"ts": NOW, "kind": "temperature"})
    board.feed("vitals/v1/P001/th-3", b"\xff not json", NOW)
    feed(board, "vitals/v1/P001/app", {"ts": NOW, "kind": "symptoms", "by": "patient",
                                       "symptoms": []})
    feed(board, "vitals/v1/CANARY/canary", {"ts": NOW, "kind": "temperature", "temp": 39})
    feed(board, "vitals/v1/P009/th-9", {"ts": NOW, "kind": "temperature", "temp": 37})
    feed(board, "vitals/v1/P002/th-1", {"ts": NOW, "kind": "temperature", "temp": 37})
    assert board.views("P001") == []
    assert [d["device"] for d in board.views("P002")] == ["th-1"]
    assert board.views("P009") == []


def test_a_status_says_offline_and_battery() -> None:
    board = DeviceBoard(REGISTRY)
    feed(board, "vitals/v1/P001/ox-1/status", {"ts": NOW, "state": "offline", "battery": 12},
         at=NOW + 5)
    [d] = board.views("P001")
    assert (d["type"], d["state"], d["state_at"], d["battery"], d["last_reading"]) == (
        "device", "offline", NOW + 5, 12, None)


def test_memory_is_bounded_per_patient() -> None:
    board = DeviceBoard(REGISTRY)
    for i in range(MAX_DEVICES + 5):
        feed(board, f"vitals/v1/P001/d-{i:02d}", {"ts": NOW + i, "kind": "temperature",
                                                  "temp": 37}, at=NOW + i)
    names = [d["device"] for d in board.views("P001")]
    assert len(names) == MAX_DEVICES
    assert names[0] == "d-05" and names[-1] == f"d-{MAX_DEVICES + 4:02d}"  # the oldest went
