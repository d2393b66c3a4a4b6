#!/bin/sh
# A private certificate authority and the broker's TLS certificate, for MQTT_CERTS_DIR:
#
#   deploy/mosquitto/make-certs.sh DIR HOSTNAME [MORE_NAMES_OR_IPS ...]
#
# DIR/ca.crt     the CA certificate: goes on every device and to ingest (SSL_CERT_FILE)
# DIR/ca.key     the CA's key: keep it off the broker (offline), it signs the next certificate
# DIR/server.crt the broker's certificate for HOSTNAME (and the other names), 825 days
# DIR/server.key its key; on the broker host: chown 1883:1883, mode 0600
#
# Run it again to renew the server certificate: an existing ca.key is reused, so devices keep
# trusting the broker. A certificate from a public CA works as well (deploy/README.md).
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 DIR HOSTNAME [MORE_NAMES_OR_IPS ...]" >&2
    exit 2
fi
dir=$1
shift
mkdir -p "$dir"
umask 077

. "$(dirname "$0")/../certlib.sh"
make_ca "$dir" "vitals MQTT CA"
sign "$dir/server.key" "$dir/server.crt" "$dir" serverAuth "$@"
chmod 0644 "$dir/ca.crt" "$dir/server.crt"
echo "make-certs: $dir/server.crt for $san, valid 825 days"
