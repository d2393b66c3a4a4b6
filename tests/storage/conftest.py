"""Fixtures for the storage tests: a real VictoriaMetrics (it accepts influxdb-client writes on
/api/v2/write), the store topics declared on the test's tansu, and settings pointing at both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import servers
from tests.conftest import PARTITIONS
from vitals import topics
from vitals.kafka import declare_topics
from vitals.settings import Settings, load_settings


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[servers.Server]:
    with servers.victoria_metrics(tmp_path / "vm") as s:
        yield s


@pytest.fixture
def store_settings(kafka: servers.Server, vm: servers.Server, tmp_path: Path) -> Settings:
    bootstrap = f"127.0.0.1:{kafka.port}"
    declare_topics(bootstrap, (*topics.STORE_TOPICS, topics.REJECTED), PARTITIONS, wait_s=10)
    return load_settings(_env_file=None, kafka_url=f"kafka://{bootstrap}",
                         influx_url=f"http://127.0.0.1:{vm.port}", kafka_partitions=PARTITIONS,
                         state_dir=tmp_path / "state",
                         store_metrics_addr=f"127.0.0.1:{servers.free_port()}")
