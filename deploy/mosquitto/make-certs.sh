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
cn=$1
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/CN=vitals MQTT CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    echo "make-certs: new CA in $dir/ca.crt (its key: $dir/ca.key)"
fi

san=""
for name in "$@"; do
    case $name in
        *[!0-9.]*) san="$san,DNS:$name" ;;
        *) san="$san,IP:$name" ;;
    esac
done
ext="$dir/.server.ext"
cat >"$ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=${san#,}
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl req -newkey rsa:3072 -nodes -keyout "$dir/server.key" -out "$dir/.server.csr" \
    -subj "/CN=$cn" 2>/dev/null
openssl x509 -req -in "$dir/.server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 825 -sha256 -extfile "$ext" -out "$dir/server.crt" 2>/dev/null
rm -f "$ext" "$dir/.server.csr"
chmod 0644 "$dir/ca.crt" "$dir/server.crt"
echo "make-certs: $dir/server.crt for ${san#,}, valid 825 days"
