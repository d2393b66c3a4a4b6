#!/bin/sh
# A private certificate authority and the Kafka broker's TLS keystore, for KAFKA_CERTS_DIR:
#
#   deploy/kafka/make-certs.sh DIR [NAMES_OR_IPS ...]     (default names: kafka localhost 127.0.0.1)
#
# DIR/ca.crt              the CA certificate: every Kafka client trusts it (VITALS_KAFKA_CA_FILE)
# DIR/ca.key              the CA's key: keep it off the broker, it signs the next certificate
# DIR/kafka.p12           the broker's key and certificate (PKCS12), 825 days; the first name
#                         is the one the clients connect to (in compose: kafka)
# DIR/kafka.p12.password  the keystore's password (random; the image reads it from this file)
#
# On the broker host, kafka.p12 and kafka.p12.password belong to uid 1000 (the apache/kafka
# image's appuser), mode 0600. Run it again to renew the broker's certificate: an existing
# ca.key is reused, so the clients keep trusting the broker. deploy/README.md, "Kafka: TLS and
# SCRAM", has the steps.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 DIR [NAMES_OR_IPS ...]" >&2
    exit 2
fi
dir=$1
shift
if [ $# -eq 0 ]; then
    set -- kafka localhost 127.0.0.1
fi
mkdir -p "$dir"
umask 077

. "$(dirname "$0")/../certlib.sh"
make_ca "$dir" "vitals Kafka CA"
sign "$dir/.kafka.key" "$dir/.kafka.crt" "$dir" serverAuth,clientAuth "$@"
# A new keystore password each time: it protects the file at rest, and sits beside it.
openssl rand -hex 24 >"$dir/kafka.p12.password"
openssl pkcs12 -export -name kafka -inkey "$dir/.kafka.key" -in "$dir/.kafka.crt" \
    -certfile "$dir/ca.crt" -out "$dir/kafka.p12" -passout "file:$dir/kafka.p12.password"
rm -f "$dir/.kafka.key" "$dir/.kafka.crt"
chmod 0644 "$dir/ca.crt"
echo "make-certs: $dir/kafka.p12 for $san, valid 825 days (password: $dir/kafka.p12.password)"
