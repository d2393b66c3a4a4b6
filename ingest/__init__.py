"""Stage: MQTT -> validation and normalisation -> Kafka (`vitals ingest`).

- `parse`: `Parser`, pure: a message becomes readings or rejections with a reason, never raises;
- `dedup`: `DuplicateFilter`, readings already forwarded;
- `mqtt_source`, `sink` (`KafkaSink`), `acks`: the edges, MQTT acks only after Kafka has the
  records; `mqtt_source` subscribes through an MQTT 5 shared subscription, so that several
  instances split the traffic, each with a persistent session of its own;
- `service`: `run(settings, stop, on_ready)`; `counts`: what it did, as Prometheus metrics;
- `credentials`: per-device Mosquitto accounts and ACLs (`vitals credentials`).
"""
