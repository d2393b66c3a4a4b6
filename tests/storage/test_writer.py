"""The writer's retry, backoff and bisection logic, behind the `WriteTarget` interface: a
scripted target stands in for the server here; the tests next to this one use real servers."""

from __future__ import annotations

import logging
import threading
from itertools import islice

import pytest

from storage.target import Refused, Unavailable, WriteTarget
from storage.writer import Backoff, Stopped, Writer


class ScriptedTarget(WriteTarget):
    """Fails the first `down` requests as unavailable; refuses any request containing a line
    with "BAD"; records the lines of every accepted request."""

    name = "scripted target"

    def __init__(self, down: int = 0) -> None:
        self.down = down
        self.requests = 0
        self.written: list[str] = []

    def write(self, body: bytes) -> None:
        self.requests += 1
        if self.requests <= self.down:
            raise Unavailable("connection refused")
        lines = body.decode().split("\n")
        bad = [x for x in lines if "BAD" in x]
        if bad:
            raise Refused(400, f"unable to parse '{bad[0]}': invalid field format")
        self.written.extend(lines)


def quick() -> Backoff:
    return Backoff(0.001, 0.004)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert list(islice(Backoff(0.5, 30).delays(), 9)) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_an_outage_is_retried_and_logged_once_when_it_starts_and_once_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    target = ScriptedTarget(down=6)
    caplog.set_level(logging.DEBUG, "storage.writer")
    assert Writer(target, threading.Event(), quick()).write(["a", "b"]) == []
    assert target.written == ["a", "b"] and target.requests == 7
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "storage.writer" and r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "scripted target is unavailable (connection refused); waiting" in warnings[0]
    assert "scripted target is back after" in warnings[1]


def test_a_refused_batch_is_split_until_each_bad_line_is_alone() -> None:
    lines = [f"readings,patient=P{i:03d} hr=80 {i}" for i in range(100)]
    lines[13] = "readings,patient=BAD1 hr=80 13"
    lines[77] = "readings,patient=BAD2 hr=80 77"
    target = ScriptedTarget()
    refused = Writer(target, threading.Event(), quick()).write(lines)
    assert [i for i, _ in refused] == [13, 77]
    assert "unable to parse 'readings,patient=BAD1" in refused[0][1]
    assert refused[0][1].startswith("HTTP 400: ")
    assert sorted(set(target.written)) == sorted(x for x in lines if "BAD" not in x)
    assert target.requests < 40  # about 2 log2(100) per bad line, not one per line


def test_a_single_refused_line_and_an_empty_batch() -> None:
    target = ScriptedTarget()
    w = Writer(target, threading.Event(), quick())
    assert w.write([]) == [] and target.requests == 0
    assert w.write(["BAD"]) == [(0, "HTTP 400: unable to parse 'BAD': invalid field format")]


def test_stopping_during_an_outage_gives_up_without_claiming_a_write() -> None:
    stop = threading.Event()
    target = ScriptedTarget(down=10**9)
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    with pytest.raises(Stopped):
        Writer(target, stop, Backoff(0.05, 0.05)).write(["a"])
    assert target.written == []


def test_retry_after_from_the_server_is_honoured() -> None:
    class Busy(WriteTarget):
        name = "busy"
        calls = 0

        def write(self, body: bytes) -> None:
            self.calls += 1
            if self.calls == 1:
                raise Unavailable("HTTP 429: too many requests", retry_after_s=0.3)

    waits: list[float] = []

    class Recording(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            return False

    Writer(Busy(), Recording(), Backoff(0.01, 1)).write(["a"])
    assert waits == [0.3]
