#!/usr/bin/env bash
# Creates a small certificate authority and host certificates for criu4j's TLS transport.
#
#   scripts/certs.sh init DIR                 CA key and certificate: DIR/ca-key.pem, DIR/ca.pem
#   scripts/certs.sh issue DIR NAME [SAN...]  host key and certificate signed by the CA:
#                                             DIR/NAME-key.pem (PKCS#8), DIR/NAME.pem
#
# Every host certificate is good for both ends of a connection (extended key usages serverAuth
# and clientAuth), so one certificate per host serves its agent and its migrate command. SANs
# are host names or IP addresses (for example: node-a.example.org 10.0.0.7 ::1); without any,
# the certificate names NAME itself. A client checks that the host in the tls:// address it
# connects to is one of the server certificate's SANs.
#
# Both commands are idempotent: init keeps an existing CA, and issue keeps an existing
# certificate that the CA signed and that is still valid. Keys are EC P-256, created with mode
# 600 in a directory with mode 700. Only openssl is needed; nothing touches the network.
#
# Environment (optional):
#   CERTS_DAYS         validity of host certificates in days (default 825)
#   CERTS_CA_DAYS      validity of the CA certificate in days (default 3650)
#   CERTS_CA_NAME      common name of the CA (default "criu4j CA")
#   CERTS_NOT_BEFORE   explicit validity start of a host certificate, YYYYMMDDHHMMSSZ
#   CERTS_NOT_AFTER    explicit validity end of a host certificate, YYYYMMDDHHMMSSZ
#                      (both together; for tests that need certificates that expired)
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "certs.sh: $*" >&2
  exit 1
}

command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"

[[ $# -ge 2 ]] || usage
command=$1
dir=$2
shift 2

ca_cert="$dir/ca.pem"
ca_key="$dir/ca-key.pem"

init() {
  umask 077
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [[ -s $ca_cert && -s $ca_key ]]; then
    echo "CA exists: $ca_cert"
    return
  fi
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca_key.tmp" 2>/dev/null
  openssl req -new -x509 -sha256 -key "$ca_key.tmp" -subj "/CN=${CERTS_CA_NAME:-criu4j CA}" \
    -days "${CERTS_CA_DAYS:-3650}" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$ca_cert.tmp"
  mv "$ca_key.tmp" "$ca_key"
  chmod 644 "$ca_cert.tmp"
  mv "$ca_cert.tmp" "$ca_cert"
  echo "created CA: $ca_cert (key $ca_key)"
}

is_ip() {
  [[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $1 == *:* ]]
}

issue() {
  [[ $# -ge 1 ]] || usage
  local name=$1
  shift
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] \
    || die "certificate name '$name' must be letters, digits, '.', '_' and '-'"
  [[ -s $ca_cert && -s $ca_key ]] || die "no CA in $dir: run 'certs.sh init $dir' first"
  local cert="$dir/$name.pem" key="$dir/$name-key.pem"
  if [[ -s $cert && -s $key && -z ${CERTS_NOT_AFTER:-} ]] \
      && openssl verify -CAfile "$ca_cert" "$cert" >/dev/null 2>&1; then
    echo "certificate exists: $cert"
    return
  fi

  local sans=() san
  [[ $# -gt 0 ]] || set -- "$name"
  for san in "$@"; do
    if is_ip "$san"; then sans+=("IP:$san"); else sans+=("DNS:$san"); fi
  done

  umask 077
  local work
  work=$(mktemp -d "$dir/.issue.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  mkdir "$work/new"
  : >"$work/index.txt"
  cat >"$work/ca.cnf" <<EOF
[ ca ]
default_ca = local_ca
[ local_ca ]
database = $work/index.txt
new_certs_dir = $work/new
certificate = $ca_cert
private_key = $ca_key
default_md = sha256
default_days = ${CERTS_DAYS:-825}
policy = any_name
unique_subject = no
copy_extensions = none
rand_serial = yes
[ any_name ]
commonName = supplied
[ host ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $(IFS=,; echo "${sans[*]}")
EOF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key.pem" 2>/dev/null
  openssl req -new -key "$work/key.pem" -subj "/CN=$name" -out "$work/csr.pem"
  local dates=()
  if [[ -n ${CERTS_NOT_BEFORE:-} || -n ${CERTS_NOT_AFTER:-} ]]; then
    [[ -n ${CERTS_NOT_BEFORE:-} && -n ${CERTS_NOT_AFTER:-} ]] \
      || die "set both CERTS_NOT_BEFORE and CERTS_NOT_AFTER, or neither"
    dates=(-startdate "$CERTS_NOT_BEFORE" -enddate "$CERTS_NOT_AFTER")
  fi
  openssl ca -batch -notext -config "$work/ca.cnf" -extensions host "${dates[@]}" \
    -in "$work/csr.pem" -out "$work/cert.pem" 2>"$work/ca.log" \
    || { cat "$work/ca.log" >&2; die "signing $name failed"; }
  chmod 644 "$work/cert.pem"
  mv "$work/key.pem" "$key"
  mv "$work/cert.pem" "$cert"
  echo "issued $cert (key $key) for ${sans[*]}"
}

case $command in
  init) [[ $# -eq 0 ]] || usage; init ;;
  issue) issue "$@" ;;
  *) usage ;;
esac
