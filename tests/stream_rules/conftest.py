"""The `workers` fixture: `vitals rules` processes on this test's broker, stopped after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import servers
from tests.stream_rules.workers import Workers


@pytest.fixture
def workers(kafka: servers.Server, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(kafka, tmp_path)
    yield w
    w.stop_all()
