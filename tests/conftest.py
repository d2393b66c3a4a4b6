"""Fixtures that start real servers (Mosquitto, tansu, PostgreSQL) on free loopback ports, and
stop them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import servers
from tests.support import write_patients
from vitals import topics
from vitals.kafka import declare_topics
from vitals.settings import Settings, load_settings

PATIENTS = ["P001", "P002", "P003"]
PARTITIONS = 4

# The files that take a minute or more (measured), longest first. `make test` hands whole files
# to the workers (`--dist loadfile`) in collection order (`--no-loadscope-reorder`: xdist would
# otherwise start with the files of many tests, so that these few-test files came last and one
# of them ran alone at the end). Longest first leaves the short files to fill the gaps.
LONGEST_FIRST = [
    "tests/test_chaos.py",
    "tests/stream_rules/test_worker_restarts.py",
    "tests/stream_rules/test_worker.py",
    "tests/deploy/test_dockerfile.py",
    "tests/evaluation/test_cli.py",
    "tests/demo/test_demo.py",
    "tests/test_canary_end_to_end.py",
    "tests/test_end_to_end.py",
    "tests/alerting/test_failover.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest files first (a stable sort: the rest keeps its order)."""
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[servers.Server]:
    with servers.mosquitto(tmp_path / "mosquitto") as s:
        yield s


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[servers.Server]:
    """A tansu broker with the ingest topics declared (explicit partitions, as in production)."""
    with servers.tansu(tmp_path / "tansu") as s:
        declare_topics(f"127.0.0.1:{s.port}", topics.INGEST_TOPICS, PARTITIONS, wait_s=10)
        yield s


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Postgres]:
    """One PostgreSQL cluster for the whole run; each test takes a database of its own."""
    server = servers.postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: servers.Postgres) -> Iterator[str]:
    """The URL of a new database for this test alone, dropped after it."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = servers.create_database(postgres_server.url, name)
    yield url
    servers.drop_database(postgres_server.url, name)


@pytest.fixture
def patients_file(tmp_path: Path) -> Path:
    return write_patients(tmp_path / "patients.yaml", PATIENTS)


@pytest.fixture
def settings(mosquitto: servers.Server, kafka: servers.Server, patients_file: Path,
             tmp_path: Path) -> Settings:
    """Settings pointing at this test's servers; no `.env` is read."""
    return load_settings(
        _env_file=None,
        mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
        kafka_url=f"kafka://127.0.0.1:{kafka.port}",
        patients=patients_file,
        state_dir=tmp_path / "state",
        ingest_metrics_addr=f"127.0.0.1:{servers.free_port()}",
        kafka_partitions=PARTITIONS,
    )
