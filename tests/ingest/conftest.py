"""Fixtures of the ingest tests: a Kafka whose connection can be cut."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import servers
from harness.relay import TcpRelay
from vitals.settings import Settings


@pytest.fixture
def cut_kafka(tmp_path: Path, settings: Settings) -> Iterator[tuple[Settings, TcpRelay]]:
    """Settings whose Kafka is a tansu reached only through a relay that can be cut."""
    relay_port = servers.free_port()
    with servers.tansu(tmp_path / "tansu-cut", advertised_port=relay_port) as broker:
        relay = TcpRelay(broker.port, relay_port)
        yield settings.model_copy(update={"kafka_url": f"kafka://127.0.0.1:{relay_port}"}), relay
        relay.close()
