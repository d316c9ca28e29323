#!/bin/sh
# mkcerts.sh DIR -- test certificates for the TLS delivery tests, made with
# the openssl command (EC P-256: fast, no prompts, nothing read from
# openssl.cnf beyond its defaults). Writes, in DIR (created if needed):
#
#   ca.pem ca.key             the test CA
#   server.pem server.key     signed by ca: CN localhost, SAN IP:127.0.0.1,
#                             IP:::1, DNS:localhost; serverAuth
#   client.pem client.key     signed by ca: CN spoolcap-test-client; clientAuth
#   ca2.pem ca2.key           a second CA that has signed nothing of the above
#   client2.pem client2.key   signed by ca2 (a client certificate ca rejects)
#   wrongname.pem wrongname.key  signed by ca, for DNS:wrong.example only (a
#                             server certificate that fails host name checks)
#   cadir/                    ca.pem under its subject hash (<hash>.0), for
#                             CApath-style options (--forward-ca-dir)
#
# Valid from now for 10 years (CAs) and 825 days (leaves). Keys are
# unencrypted and readable by the owner only. Exit status 0, or 1 with
# openssl's message on stderr. Takes well under a second.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || { echo "mkcerts.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$1"
cd "$1"
umask 077
log=mkcerts.log
: >"$log"
failed() { cat "$log" >&2; echo "mkcerts.sh: failed in $(pwd) (openssl said the above)" >&2; }
trap '[ $? -eq 0 ] || failed' EXIT

# Extensions written to files: -addext and -copy_extensions differ across
# OpenSSL 1.1 and 3.x; -extfile with x509 -req works on both. The key
# identifiers keep strict verifiers (Python 3.13's VERIFY_X509_STRICT) happy.
cat >ca.ext <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
# leaf_ext FILE USAGE [SAN]: the extensions of a leaf certificate
leaf_ext() {
	printf '%s\n' "basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature" \
		"extendedKeyUsage = $2" "subjectKeyIdentifier = hash" \
		"authorityKeyIdentifier = keyid, issuer" >"$1"
	[ -z "${3-}" ] || echo "subjectAltName = $3" >>"$1"
}
leaf_ext server.ext serverAuth "IP:127.0.0.1, IP:::1, DNS:localhost"
leaf_ext client.ext clientAuth
leaf_ext wrongname.ext serverAuth "DNS:wrong.example"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>>"$log"; }
serial() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^/0x7/'; }

# ca NAME CN: a self-signed CA (signed through x509 -req so the same
# extension file syntax serves every OpenSSL version).
ca() {
	key "$1"
	openssl req -new -key "$1.key" -subj "/O=spoolcap tests/CN=$2" -out "$1.csr" 2>>"$log"
	openssl x509 -req -in "$1.csr" -signkey "$1.key" -days 3650 -set_serial "$(serial)" \
		-extfile ca.ext -out "$1.pem" 2>>"$log"
}
# leaf NAME CN EXT CA: a certificate signed by CA.
leaf() {
	key "$1"
	openssl req -new -key "$1.key" -subj "/O=spoolcap tests/CN=$2" -out "$1.csr" 2>>"$log"
	openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -days 825 \
		-set_serial "$(serial)" -extfile "$3" -out "$1.pem" 2>>"$log"
}

ca ca "spoolcap test CA"
ca ca2 "spoolcap unrelated test CA"
leaf server localhost server.ext ca
leaf client spoolcap-test-client client.ext ca
leaf client2 spoolcap-rogue-client client.ext ca2
leaf wrongname wrong.example wrongname.ext ca
mkdir -p cadir
cp ca.pem "cadir/$(openssl x509 -hash -noout -in ca.pem).0"
rm -f ./*.csr ./*.ext "$log"
chmod 644 ./*.pem cadir/*
