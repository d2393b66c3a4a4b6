"""The Kafka topics, declared explicitly: auto-created topics get whatever partition count the
broker likes, and Faust refuses topics whose partitions differ from its tables'."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A Kafka topic as the project declares it: name, keying, partitions, compaction."""
    name: str
    keyed_by_patient: bool = True
    # One partition for low-volume topics that people read in order.
    single_partition: bool = False
    # Compacted: only the latest record per key matters (a table's changelog, written often).
    compacted: bool = False


READINGS = Topic("vitals.readings")
STATUS = Topic("vitals.status")
REJECTED = Topic("vitals.rejected", keyed_by_patient=False, single_partition=True)
TRENDS = Topic("vitals.trends")
ALERTS = Topic("vitals.alerts")
# CONTRACT section 7: ingest copies each canary reading here (one partition, read by alerting),
# so that alerting knows when ingest last passed one even while the rules are stuck
CANARY = Topic("vitals.canary", keyed_by_patient=False, single_partition=True)
# What a patient or caregiver entered in the app (CONTRACT section 6: a report, or a manual
# temperature): ingest copies it here from `vitals.readings`, where it travels as the contract
# says, so that alerting can show it to the nurse without reading every wearable's reading.
REPORTS = Topic("vitals.reports")

INGEST_TOPICS = (READINGS, STATUS, REJECTED, CANARY, REPORTS)
# what `vitals store` consumes (it also produces to REJECTED: points InfluxDB refuses)
STORE_TOPICS = (READINGS, TRENDS, ALERTS)
