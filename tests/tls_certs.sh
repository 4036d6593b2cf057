#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes throwaway TLS material for the HTTPS tests in DIR, at test time (no key is ever
# committed): a private CA, a server certificate it signs for 127.0.0.1 and localhost, and a
# second, unrelated CA that signed nothing the server shows.
#
#   tls_certs.sh DIR    writes DIR/ca.pem, DIR/server.pem, DIR/server.key, DIR/other-ca.pem
#
# EC P-256 keys: quick to make, and what any TLS stack of the last decade accepts.
set -euo pipefail

d=${1:?usage: tls_certs.sh DIR}
command -v openssl >/dev/null || { echo "tls_certs.sh: openssl not found (make deps)" >&2; exit 1; }
mkdir -p "$d"
cd "$d"
umask 077

ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

ca() { # ca NAME SUBJECT: a self-signed CA certificate NAME.pem with its key NAME.key
	openssl req -x509 "${ec[@]}" -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

ca ca "PowerLogger test CA"
ca other-ca "PowerLogger unrelated test CA"

openssl req -new "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
cat >server.ext <<EOF
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile server.ext -out server.pem 2>/dev/null
# The CAs' keys are not needed any more; the server's key stays for the server.
rm -f ca.key other-ca.key ca.srl server.csr server.ext
chmod 644 ca.pem other-ca.pem server.pem
openssl verify -CAfile ca.pem server.pem >/dev/null
