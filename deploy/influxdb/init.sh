#!/usr/bin/env bash
# Provision InfluxDB 2 for vitals with the influx CLI (2.x): the organisation, the raw bucket
# (90 days), the long-term bucket of 5-minute means, the downsampling task, and two tokens: one
# that `vitals store` writes with, one that Grafana and `vitals export` read with.
#
# Safe to run again: what exists is kept (buckets, task updated from downsample.flux, tokens
# not re-created). Tokens are printed once, when created; InfluxDB 2.9+ stores only hashes.
#
#   INFLUX_HOST=http://influxdb:8086 INFLUX_ADMIN_PASSWORD=... deploy/influxdb/init.sh
#
# A fresh server is set up with INFLUX_ADMIN_USER / INFLUX_ADMIN_PASSWORD; on a server that is
# already set up, give an operator token in INFLUX_TOKEN (or use an active influx CLI config).
set -euo pipefail

export INFLUX_HOST="${INFLUX_HOST:-http://127.0.0.1:8086}"
ORG="${VITALS_INFLUX_ORG:-vitals}"
BUCKET="${VITALS_INFLUX_BUCKET:-vitals}"
LONG_BUCKET="${VITALS_INFLUX_LONG_BUCKET:-vitals_5m}"
RAW_RETENTION="${VITALS_RAW_RETENTION:-90d}"
# 0 keeps the 5-minute means forever; set the study's retention period here.
LONG_RETENTION="${VITALS_LONG_RETENTION:-0}"
HERE="$(cd "$(dirname "$0")" && pwd)"

command -v influx >/dev/null || { echo "init.sh: the influx CLI (2.x) is not installed" >&2; exit 1; }
influx ping >/dev/null || { echo "init.sh: InfluxDB at $INFLUX_HOST does not answer" >&2; exit 1; }

# 1. First start: admin user, organisation, raw bucket with its retention.
if curl -fsS "$INFLUX_HOST/api/v2/setup" | grep -q '"allowed": *true'; then
    : "${INFLUX_ADMIN_PASSWORD:?a fresh InfluxDB needs INFLUX_ADMIN_PASSWORD (and INFLUX_ADMIN_USER)}"
    influx setup --force --org "$ORG" --bucket "$BUCKET" --retention "$RAW_RETENTION" \
        --username "${INFLUX_ADMIN_USER:-admin}" --password "$INFLUX_ADMIN_PASSWORD"
    echo "set up InfluxDB: organisation $ORG, bucket $BUCKET ($RAW_RETENTION)"
fi
export INFLUX_ORG="$ORG"

bucket_id() {
    influx bucket list --name "$1" --hide-headers 2>/dev/null | awk 'NR == 1 {print $1}'
}

# 2. Buckets: raw (readings, trends, alerts as written) and long-term (5-minute means).
for spec in "$BUCKET:$RAW_RETENTION" "$LONG_BUCKET:$LONG_RETENTION"; do
    name="${spec%%:*}" retention="${spec#*:}"
    if [ -z "$(bucket_id "$name")" ]; then
        influx bucket create --name "$name" --retention "$retention" >/dev/null
        echo "created bucket $name (retention $retention)"
    else
        echo "bucket $name exists; its retention is left as it is"
    fi
done
raw_id="$(bucket_id "$BUCKET")"
long_id="$(bucket_id "$LONG_BUCKET")"

# 3. The downsampling task, with this deployment's bucket names.
task_file="$(mktemp)"
trap 'rm -f "$task_file"' EXIT
sed -e "s/^raw = \"vitals\"$/raw = \"$BUCKET\"/" \
    -e "s/^long = \"vitals_5m\"$/long = \"$LONG_BUCKET\"/" "$HERE/downsample.flux" >"$task_file"
task_id="$(influx task list --hide-headers | awk '$2 == "vitals-downsample-5m" {print $1; exit}')"
if [ -z "$task_id" ]; then
    influx task create --file "$task_file" >/dev/null
    echo "created task vitals-downsample-5m ($BUCKET -> $LONG_BUCKET, daily)"
else
    influx task update --id "$task_id" --file "$task_file" >/dev/null
    echo "updated task vitals-downsample-5m"
fi

# 4. Tokens: least privilege for each reader and writer.
has_token() {
    influx auth list --hide-headers | grep -q -- "$1"
}
if ! has_token "vitals-store"; then
    echo "VITALS_INFLUX_TOKEN for vitals store (write $BUCKET):"
    influx auth create --description "vitals-store" --write-bucket "$raw_id" \
        --hide-headers | awk '{print "  " $3}'
fi
if ! has_token "vitals-read"; then
    echo "token for Grafana (GRAFANA_INFLUX_TOKEN) and vitals export (read $BUCKET, $LONG_BUCKET):"
    influx auth create --description "vitals-read" --read-bucket "$raw_id" \
        --read-bucket "$long_id" --hide-headers | awk '{print "  " $3}'
fi
echo "InfluxDB ready at $INFLUX_HOST: VITALS_INFLUX_ORG=$ORG VITALS_INFLUX_BUCKET=$BUCKET"
