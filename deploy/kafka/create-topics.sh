#!/bin/sh
# Create vitals' Kafka topics before any service starts, with explicit partition counts and
# the settings each needs. The services declare the same topics themselves (vitals/topics.py),
# but only with Kafka's defaults; this step also sets retention and, for the rules workers'
# state changelog, compaction. In compose it is the one-shot `kafka-topics` service; by hand:
#
#   KAFKA_BOOTSTRAP=broker:9093 VITALS_KAFKA_PARTITIONS=8 KAFKA_CA_FILE=ca.crt \
#   KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD=... deploy/kafka/create-topics.sh
#
# How it reaches Kafka: KAFKA_COMMAND_CONFIG, a client .properties file of your own; otherwise
# one written here (to a temporary file, removed at exit): SASL_SSL when KAFKA_SASL_PASSWORD is
# set (KAFKA_SASL_USERNAME, KAFKA_SASL_MECHANISM, default SCRAM-SHA-512), SSL when only
# KAFKA_CA_FILE is, trusting KAFKA_CA_FILE (PEM; without it, the JVM's CAs). With none of them
# it speaks plaintext, for a broker without a TLS listener (tests).
#
# Safe to run again: existing topics keep their data and get the settings below again. A topic
# whose partition count differs from VITALS_KAFKA_PARTITIONS stops the script (exit 1): the
# rules workers keep each patient's state in the changelog partition that the patient id
# hashes to, so changing the count moves patients away from their state (deploy/README.md).
set -eu

BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9093}"
PARTITIONS="${VITALS_KAFKA_PARTITIONS:-8}"
REPLICATION="${KAFKA_REPLICATION_FACTOR:-1}"
# How long the keyed topics keep records (Kafka is not the system of record: InfluxDB and the
# alerting database are). It bounds how long a stopped consumer can catch up.
RETENTION_MS=$(( ${KAFKA_RETENTION_HOURS:-168} * 3600000 ))
# Dead letters are read by people, so they stay longer.
REJECTED_RETENTION_MS=$(( ${KAFKA_REJECTED_RETENTION_HOURS:-720} * 3600000 ))
BIN="${KAFKA_BIN:-/opt/kafka/bin}"

CLIENT_CONFIG="${KAFKA_COMMAND_CONFIG:-}"
if [ -z "$CLIENT_CONFIG" ] && { [ -n "${KAFKA_SASL_PASSWORD:-}" ] || [ -n "${KAFKA_CA_FILE:-}" ]; }; then
    CLIENT_CONFIG=$(umask 077 && mktemp "${TMPDIR:-/tmp}/create-topics.XXXXXX")
    trap 'rm -f "$CLIENT_CONFIG"' EXIT
    {
        if [ -n "${KAFKA_SASL_PASSWORD:-}" ]; then
            echo "security.protocol=SASL_SSL"
            echo "sasl.mechanism=${KAFKA_SASL_MECHANISM:-SCRAM-SHA-512}"
            case ${KAFKA_SASL_MECHANISM:-SCRAM-SHA-512} in
                PLAIN) module=org.apache.kafka.common.security.plain.PlainLoginModule ;;
                *) module=org.apache.kafka.common.security.scram.ScramLoginModule ;;
            esac
            printf 'sasl.jaas.config=%s required username="%s" password="%s";\n' \
                "$module" "${KAFKA_SASL_USERNAME:-admin}" "$KAFKA_SASL_PASSWORD"
        else
            echo "security.protocol=SSL"
        fi
        if [ -n "${KAFKA_CA_FILE:-}" ]; then
            echo "ssl.truststore.type=PEM"
            echo "ssl.truststore.location=$KAFKA_CA_FILE"
        fi
    } >"$CLIENT_CONFIG"
fi

kafka() {  # tool args...: one of Kafka's tools, with the client config when there is one
    tool=$1
    shift
    if [ -n "$CLIENT_CONFIG" ]; then
        "$BIN/$tool" --bootstrap-server "$BOOTSTRAP" --command-config "$CLIENT_CONFIG" "$@"
    else
        "$BIN/$tool" --bootstrap-server "$BOOTSTRAP" "$@"
    fi
}

# The rules workers' Faust table (stream_rules/faust_app.py: {APP_ID}-{TABLE}-changelog). Every
# batch rewrites each patient's state (~15 KiB), so the changelog must be compacted, in small
# segments: only the newest state per patient is kept, and a worker that takes over a
# partition restores a few MiB, not days of rewrites.
CHANGELOG="vitals-rules-patient-state-changelog"
CHANGELOG_CONFIG="cleanup.policy=compact,segment.bytes=16777216,segment.ms=600000,min.cleanable.dirty.ratio=0.1"
KEYED_CONFIG="cleanup.policy=delete,retention.ms=$RETENTION_MS"

failed=0

topic() {  # name partitions config(k=v,k=v)
    name=$1 n=$2 config=$3
    # --config once per key=value
    set -- kafka kafka-topics.sh --create --if-not-exists \
        --topic "$name" --partitions "$n" --replication-factor "$REPLICATION"
    old_ifs=$IFS
    IFS=,
    for kv in $config; do
        set -- "$@" --config "$kv"
    done
    IFS=$old_ifs
    "$@"
    # an existing topic keeps its settings on --create: set them again
    kafka kafka-configs.sh --entity-type topics \
        --entity-name "$name" --alter --add-config "$config" >/dev/null
    have=$(kafka kafka-topics.sh --describe --topic "$name" \
        | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
    if [ "$have" != "$n" ]; then
        echo "create-topics: $name has ${have:-no} partitions, not $n" >&2
        failed=1
    else
        echo "create-topics: $name: $n partitions, $config"
    fi
}

topic vitals.readings "$PARTITIONS" "$KEYED_CONFIG"
topic vitals.status "$PARTITIONS" "$KEYED_CONFIG"
topic vitals.trends "$PARTITIONS" "$KEYED_CONFIG"
topic vitals.alerts "$PARTITIONS" "$KEYED_CONFIG"
# what patients entered in the app, copied by ingest for the nurse page (README, topics)
topic vitals.reports "$PARTITIONS" "$KEYED_CONFIG"
topic vitals.rejected 1 "cleanup.policy=delete,retention.ms=$REJECTED_RETENTION_MS"
# the canary's copies (CONTRACT section 7): read at once by alerting, kept one day
topic vitals.canary 1 "cleanup.policy=delete,retention.ms=86400000"
topic "$CHANGELOG" "$PARTITIONS" "$CHANGELOG_CONFIG"

if [ "$failed" -ne 0 ]; then
    echo "create-topics: partition counts differ from VITALS_KAFKA_PARTITIONS=$PARTITIONS;" \
         "see deploy/README.md, 'Partitions'" >&2
    exit 1
fi
