"""Topic declaration on a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource

from harness import servers
from vitals.kafka import declare_topics
from vitals.topics import Topic


def test_topics_get_their_partitions_and_a_changelog_is_compacted(kafka: servers.Server
                                                                   ) -> None:
    bootstrap = f"127.0.0.1:{kafka.port}"
    found = declare_topics(bootstrap, (Topic("t.readings"), Topic("t.rejected",
                                       single_partition=True), Topic("t.changelog",
                                       compacted=True)), 3, wait_s=10)
    assert found == {"t.readings": 3, "t.rejected": 1, "t.changelog": 3}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    configs = {r.name: f.result() for r, f in admin.describe_configs(
        [ConfigResource("topic", "t.changelog"), ConfigResource("topic", "t.readings")]).items()}
    assert configs["t.changelog"]["cleanup.policy"].value == "compact"
    policy = configs["t.readings"].get("cleanup.policy")
    assert policy is None or policy.value != "compact"
    # declaring again leaves existing topics alone
    assert declare_topics(bootstrap, (Topic("t.readings"),), 5, wait_s=10) == {"t.readings": 3}
