"""Kafka security from VITALS_KAFKA_URL: `kafkas://` really is TLS (ingest and the store reach a
real tansu through a TLS listener and trust its CA), and SASL credentials are only ever sent
over TLS. tansu speaks plaintext and no SASL, so TLS ends in a relay in front of it
(harness/relay.py) and the SASL settings are checked as the client configuration they become."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import servers
from harness.relay import TcpRelay
from tests.support import publish, read_topic, start_ingest, write_patients
from vitals import topics
from vitals.kafka import KafkaConnection, declare_topics, reader_config
from vitals.settings import ConfigError, load_settings, redact

MAKE_CERTS = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "make-certs.sh"


@pytest.fixture
def tls_kafka(tmp_path: Path) -> Iterator[tuple[TcpRelay, Path]]:
    """tansu behind a TLS listener for `localhost` whose certificate a private CA signed."""
    certs = tmp_path / "certs"
    # tansu advertises 127.0.0.1 after the first request: the certificate names both
    subprocess.run(["sh", str(MAKE_CERTS), str(certs), "localhost", "127.0.0.1"], check=True,
                   capture_output=True)
    relay_port = servers.free_port()
    with servers.tansu(tmp_path / "tansu", advertised_port=relay_port) as broker:
        # clients reach tansu only through the relay: it advertises the relay's port
        relay = TcpRelay(broker.port, relay_port,
                         tls_cert=(certs / "server.crt", certs / "server.key"))
        yield relay, certs / "ca.crt"
        relay.close()


def test_kafkas_is_tls_end_to_end(tls_kafka: tuple[TcpRelay, Path], mosquitto: servers.Server,
                                  tmp_path: Path) -> None:
    relay, ca = tls_kafka
    settings = load_settings(
        _env_file=None, mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
        kafka_url=f"kafkas://localhost:{relay.port}", kafka_ca_file=ca, kafka_partitions=4,
        patients=write_patients(tmp_path / "patients.yaml", ["P001"]),
        state_dir=tmp_path / "state", ingest_metrics_addr=f"127.0.0.1:{servers.free_port()}",
        ingest_client_id=f"ingest-{time.monotonic_ns()}")
    assert settings.kafka == KafkaConnection(f"localhost:{relay.port}", tls=True, ca_file=ca)
    ingest = start_ingest(settings)
    publish(mosquitto.port, [("vitals/v1/P001/ox-1", {"ts": int(time.time() * 1000) - 1000,
                                                      "kind": "oximetry", "spo2": 97})])
    got = read_topic(settings.kafka, topics.READINGS.name, expect=1)
    counts = ingest.stop()
    assert [v["spo2"] for _, v in got] == [97.0] and counts.accepted == 1
    assert relay.tls_handshakes > 0


def test_plaintext_to_a_tls_listener_does_not_connect(tls_kafka: tuple[TcpRelay, Path]
                                                      ) -> None:
    relay, _ca = tls_kafka
    with pytest.raises(ConnectionError):
        declare_topics(f"localhost:{relay.port}", (topics.READINGS,), 1, wait_s=3)


def test_tls_without_trusting_the_ca_does_not_connect(tls_kafka: tuple[TcpRelay, Path]) -> None:
    relay, _ca = tls_kafka
    with pytest.raises(ConnectionError):
        declare_topics(KafkaConnection(f"localhost:{relay.port}", tls=True), (topics.READINGS,),
                       1, wait_s=3)


def test_an_account_in_the_url_is_sasl_over_tls() -> None:
    settings = load_settings(_env_file=None, kafka_url="kafkas://vitals:s3cret@k1:9093,k2:9093",
                             kafka_sasl_mechanism="SCRAM-SHA-256")
    config = reader_config(settings.kafka, "t")
    assert config["bootstrap.servers"] == "k1:9093,k2:9093"
    assert (config["security.protocol"], config["sasl.mechanism"], config["sasl.username"],
            config["sasl.password"]) == ("SASL_SSL", "SCRAM-SHA-256", "vitals", "s3cret")
    assert "s3cret" not in repr(settings.kafka)
    assert KafkaConnection("k:9093", tls=True).client_config()["security.protocol"] == "SSL"
    assert "security.protocol" not in KafkaConnection("k:9092").client_config()


def test_a_password_in_the_url_is_percent_decoded() -> None:
    """RFC 3986 userinfo: a password with '@', ':', '/' or '%' is written %-encoded."""
    settings = load_settings(_env_file=None,
                             kafka_url="kafkas://vit%40als:p%40ss%3Aw%2Fo%25rd@k1:9093")
    config = reader_config(settings.kafka, "t")
    assert (config["sasl.username"], config["sasl.password"]) == ("vit@als", "p@ss:w/o%rd")
    assert "p%40ss" not in redact("kafkas://vit%40als:p%40ss%3Aw%2Fo%25rd@k1:9093")


@pytest.mark.parametrize(("url", "says"), [
    ("kafka://vitals:s3cret@k1:9092", "SASL passwords go over TLS only"),
    ("kafka://k1:9092,kafkas://k2:9093", "mixes kafka:// and kafkas://"),
    ("kafkas://a:x@k1:9093,kafkas://b:y@k2:9093", "different accounts"),
])
def test_unsafe_kafka_urls_stop_at_start(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None, kafka_url=url)
    assert says in str(exc.value) and "VITALS_KAFKA_URL" in str(exc.value)
    assert "s3cret" not in str(exc.value)
