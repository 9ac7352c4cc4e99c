#!/bin/sh
# STAND-IN for Vaultwarden's server (/vaultwarden in the vaultwarden/server image; its web vault is /web-vault), for
# tests and benchmarks on a machine that cannot fetch the real one. It does what vm/vault/init.sh asks of the
# server, configured as the real one is, through its environment only, with the guest's own tools:
#   --version   prints a version line (the Dockerfile runs it at build time)
#   (no args)   fails, as the real server does, when WEB_VAULT_ENABLED and WEB_VAULT_FOLDER has no index.html or
#               DATA_FOLDER is not writable (it makes its RSA key there once, as the real one does); logs in to
#               PostgreSQL as DATABASE_URL says (percent-decoded as libpq does, retried DB_CONNECTION_RETRIES times;
#               the password reaches psql through the environment, never argv) and creates the table its
#               migrations start with (so the role must own its database's schema), then serves HTTPS on
#               ROCKET_ADDRESS:ROCKET_PORT with ROCKET_TLS's certs and key (openssl s_server: 200 for every path).
set -eu
case "${1:-}" in
  --version) echo "Vaultwarden 1.34.3 (stand-in for tests and benchmarks)"; exit 0 ;;
  '') ;;
  *) echo "stand-in vaultwarden: unsupported arguments: $*" >&2; exit 2 ;;
esac
fail() { echo "stand-in vaultwarden: $*" >&2; exit 1; }

if [ "${WEB_VAULT_ENABLED:-true}" = true ]; then
  [ -r "${WEB_VAULT_FOLDER:-web-vault/}/index.html" ] || fail "web vault is not found at '${WEB_VAULT_FOLDER:-web-vault/}'"
fi
data=${DATA_FOLDER:-data}
[ -s "$data/rsa_key.pem" ] || (umask 077; openssl genrsa -out "$data/rsa_key.pem" 2048 2>/dev/null) || fail "cannot write the RSA key in DATA_FOLDER $data"

# postgresql://USER:PASSWORD@HOST:PORT/NAME; user and password percent-decoded (awk reads them from its environment).
url=${DATABASE_URL:?stand-in vaultwarden: no DATABASE_URL}
case "$url" in postgresql://*|postgres://*) url=${url#*://} ;; *) fail "DATABASE_URL is not a postgresql:// URL" ;; esac
decode() { ENC=$1 awk 'BEGIN { s = ENVIRON["ENC"]; h = "0123456789abcdef"; out = ""
  while ((i = index(s, "%")) > 0) {
    out = out substr(s, 1, i - 1) sprintf("%c", (index(h, tolower(substr(s, i + 1, 1))) - 1) * 16 + index(h, tolower(substr(s, i + 2, 1))) - 1)
    s = substr(s, i + 3)
  }
  printf "%s", out s }'; }
userinfo=${url%@*}; at=${url##*@}
hostport=${at%%/*}; db=${at#*/}; db=${db%%\?*}
user=$(decode "${userinfo%%:*}")
PGPASSWORD=$(decode "${userinfo#*:}")
# No NOTICE (the table exists after the first boot) among the output compared below.
export PGPASSWORD PGOPTIONS='-c client_min_messages=warning'
tries=0
migrations='CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)'
until out=$(psql -h "${hostport%:*}" -p "${hostport##*:}" -U "$user" -d "$db" -v ON_ERROR_STOP=1 -qtA -c "$migrations" -c 'SELECT 1' 2>&1) && [ "$out" = 1 ]; do
  tries=$((tries + 1))
  [ "$tries" -lt "${DB_CONNECTION_RETRIES:-15}" ] || fail "cannot log in to PostgreSQL at $hostport as $user: $out"
  sleep 1
done
unset PGPASSWORD

tls=${ROCKET_TLS:?stand-in vaultwarden: no ROCKET_TLS}
cert=$(printf '%s' "$tls" | sed -n 's/.*certs *= *"\([^"]*\)".*/\1/p')
key=$(printf '%s' "$tls" | sed -n 's/.*key *= *"\([^"]*\)".*/\1/p')
echo "stand-in vaultwarden: logged in to PostgreSQL at $hostport as $user (migrations table ready); serving https on port ${ROCKET_PORT:-8000} for ${DOMAIN:-?}"
exec openssl s_server -quiet -www -accept "${ROCKET_ADDRESS:-0.0.0.0}:${ROCKET_PORT:-8000}" -cert "$cert" -key "$key" </dev/null
