# Shared by deploy/mosquitto/make-certs.sh and deploy/kafka/make-certs.sh (sourced, not run):
# a private CA, made once and then reused, and a leaf certificate it signs.

# make_ca DIR CA_NAME: DIR/ca.key and DIR/ca.crt, unless ca.key is already there.
make_ca() {
    if [ ! -f "$1/ca.key" ]; then
        openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes \
            -keyout "$1/ca.key" -out "$1/ca.crt" -subj "/CN=$2" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        echo "make-certs: new CA in $1/ca.crt (its key: $1/ca.key)"
    fi
}

# sign KEY CRT DIR EXTENDED_KEY_USAGE NAME [NAMES_OR_IPS ...]: a new key and an 825-day
# certificate for the names (the first is the CN), signed by DIR's CA; sets $san.
sign() {
    key=$1 crt=$2 ca_dir=$3 eku=$4
    shift 4
    san=""
    for name in "$@"; do
        case $name in
            *[!0-9.]*) san="$san,DNS:$name" ;;
            *) san="$san,IP:$name" ;;
        esac
    done
    san=${san#,}
    ext="$crt.ext"
    cat >"$ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
    openssl req -newkey rsa:3072 -nodes -keyout "$key" -out "$crt.csr" -subj "/CN=$1" \
        2>/dev/null
    openssl x509 -req -in "$crt.csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" \
        -CAcreateserial -days 825 -sha256 -extfile "$ext" -out "$crt" 2>/dev/null
    rm -f "$ext" "$crt.csr"
}
