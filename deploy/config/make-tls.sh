#!/usr/bin/env bash
# Creates a private CA and a server certificate for bertd (and, with
# --client NAME, client certificates for mutual TLS), with the openssl CLI.
#
#   deploy/config/make-tls.sh OUT_DIR SERVER_DNS_NAME [EXTRA_SAN...] [--client NAME]...
#   e.g. deploy/config/make-tls.sh /etc/bertd/tls bertd.example.internal IP:10.0.0.5 --client agent-1
#
# Writes ca.crt/ca.key, server.crt/server.key and NAME.crt/NAME.key (CN=NAME:
# with --tls-client-ca, bertd lets a certificate act only as the agent id NAME,
# so NAME is the agent's --id). Keys are
# mode 0600. An existing CA in OUT_DIR is reused, so it can issue more certs.
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 OUT_DIR SERVER_DNS_NAME [DNS:name|IP:addr...] [--client NAME]..." >&2
  exit 2
fi
out=$1 server=$2
shift 2
sans=("DNS:${server}") clients=()
while (($#)); do
  case $1 in
    --client) clients+=("$2"); shift 2 ;;
    DNS:*|IP:*) sans+=("$1"); shift ;;
    *) echo "$0: unexpected argument '$1' (expected DNS:name, IP:addr or --client NAME)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
umask 077
cd "$out"

if [[ ! -f ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=bertd CA" \
    -keyout ca.key -out ca.crt 2>/dev/null
fi

issue() {  # issue NAME SUBJECT_CN EXTENSIONS
  local name=$1 cn=$2 ext=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=${cn}" -keyout "${name}.key" -out "${name}.csr" 2>/dev/null
  openssl x509 -req -in "${name}.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile <(printf '%s\n' "$ext") -out "${name}.crt" 2>/dev/null
  rm -f "${name}.csr"
}

san=$(IFS=,; echo "${sans[*]}")
issue server "$server" "subjectAltName=${san}
extendedKeyUsage=serverAuth
keyUsage=digitalSignature,keyEncipherment"
for client in "${clients[@]}"; do
  issue "$client" "$client" "extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment"
done
chmod 0644 ca.crt server.crt
echo "wrote $(pwd): ca.crt server.crt server.key${clients[*]:+ and client certs for ${clients[*]}}"
