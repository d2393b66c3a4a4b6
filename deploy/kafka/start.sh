#!/bin/bash
# The Kafka broker's entrypoint in compose (apache/kafka 3.9, KRaft, one node): SASL/SCRAM over
# TLS for every client, then the image's own start (/etc/kafka/docker/run).
#
# SCRAM accounts live in the KRaft metadata, so they must exist before any client connects:
# on the first start (an empty data volume) the storage is formatted here with both accounts
# (`kafka-storage.sh format --add-scram`); the image's own format step then finds it formatted.
#   admin   the broker itself (inter-broker listener), its healthcheck, the kafka-topics step
#   vitals  the four vitals services (VITALS_KAFKA_URL)
# A volume formatted earlier keeps the accounts it has: change a password with kafka-configs.sh
# (deploy/README.md, "Kafka: TLS and SCRAM").
#
# It also writes, into the broker's config directory (mode 0600):
#   vitals-jaas.conf          the broker's own SCRAM login (KAFKA_OPTS points at it)
#   vitals-client.properties  SASL_SSL as admin, trusting ca.crt: for the healthcheck and for
#                             `docker compose exec kafka /opt/kafka/bin/kafka-*.sh
#                              --bootstrap-server kafka:9093 --command-config ...`
set -euo pipefail

# ROOT is empty in the image; tests run the script against a stand-in tree
ROOT="${START_ROOT:-}"
CONFIG_DIR="$ROOT/opt/kafka/config"
SECRETS="$ROOT/etc/kafka/secrets"
DATA="${KAFKA_LOG_DIRS:-/var/lib/kafka/data}"

for name in SCRAM_ADMIN_PASSWORD SCRAM_VITALS_PASSWORD; do
    value="${!name:-}"
    # They go into a URL (VITALS_KAFKA_URL), a JAAS file and --add-scram's [name=,password=]
    # syntax unescaped: a character with a meaning in any of them would silently break it.
    if [[ -z "$value" || "$value" == *[!A-Za-z0-9._~-]* ]]; then
        echo "kafka-start: $name must be set and use only A-Z a-z 0-9 . _ ~ - " \
             "(make one with: openssl rand -hex 24)" >&2
        exit 2
    fi
done
if [[ ! -r "$SECRETS/ca.crt" || ! -r "$SECRETS/kafka.p12" || ! -r "$SECRETS/kafka.p12.password" ]]; then
    echo "kafka-start: $SECRETS needs ca.crt, kafka.p12 and kafka.p12.password readable by" \
         "uid $(id -u) (deploy/kafka/make-certs.sh; KAFKA_CERTS_DIR)" >&2
    exit 2
fi

umask 077
cat >"$CONFIG_DIR/vitals-jaas.conf" <<JAAS
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required
  username="admin" password="$SCRAM_ADMIN_PASSWORD";
};
JAAS
cat >"$CONFIG_DIR/vitals-client.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$SCRAM_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/secrets/ca.crt
PROPS
export KAFKA_OPTS="${KAFKA_OPTS:+$KAFKA_OPTS }-Djava.security.auth.login.config=$CONFIG_DIR/vitals-jaas.conf"

if [[ ! -f "$DATA/meta.properties" ]]; then
    echo "kafka-start: first start: formatting $DATA with the SCRAM accounts admin and vitals"
    # the image's configure renders server.properties from the KAFKA_* variables
    "$ROOT/etc/kafka/docker/configure"
    "$ROOT/opt/kafka/bin/kafka-storage.sh" format --cluster-id "$CLUSTER_ID" \
        -c "$CONFIG_DIR/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$SCRAM_ADMIN_PASSWORD]" \
        --add-scram "SCRAM-SHA-512=[name=vitals,password=$SCRAM_VITALS_PASSWORD]"
fi

exec "$ROOT/etc/kafka/docker/run"
