#!/bin/sh
# STAND-IN for Forgejo's binary (/app/gitea/gitea in codeberg.org/forgejo/forgejo), for tests and benchmarks on a machine that
# cannot fetch the real one. It does what vm/forge/init.sh asks of the binary, with the guest's own tools:
#   --version              prints a version line (the Dockerfile runs it at build time)
#   generate secret NAME   prints a random secret (init.sh keeps it on the data disk)
#   web --config APP_INI   logs in to PostgreSQL as app.ini's [database] says (as Forgejo does, with retries; the
#                          password reaches psql through the environment, never argv), then serves HTTPS on app.ini's
#                          HTTP_ADDR:HTTP_PORT with its CERT_FILE/KEY_FILE (openssl s_server: 200 for every path).
set -eu
case "${1:-}" in
  --version) echo "Forgejo version 11.0.15 (stand-in for the benchmark)"; exit 0 ;;
  generate) [ "${2:-}" = secret ] && [ -n "${3:-}" ] || { echo "stand-in forgejo: usage: generate secret NAME" >&2; exit 2; }
    openssl rand -hex 32; exit 0 ;;
  web) [ "${2:-}" = --config ] && [ -r "${3:-}" ] || { echo "stand-in forgejo: usage: web --config APP_INI" >&2; exit 2; }
    conf=$3 ;;
  *) echo "stand-in forgejo: unsupported command: $*" >&2; exit 2 ;;
esac

ini() { sed -n "s/^$1 = //p" "$conf" | head -n 1; }
host=$(ini HOST)
PGPASSWORD=$(ini PASSWD | sed 's/^`//; s/`$//')
export PGPASSWORD
tries=0
until out=$(psql -h "${host%:*}" -p "${host##*:}" -U "$(ini USER)" -d "$(ini NAME)" -tAc 'SELECT 1' 2>&1) && [ "$out" = 1 ]; do
  tries=$((tries + 1))
  [ "$tries" -lt "$(ini DB_RETRIES)" ] || { echo "stand-in forgejo: cannot log in to PostgreSQL at $host: $out" >&2; exit 1; }
  sleep 2
done
unset PGPASSWORD
echo "stand-in forgejo: logged in to PostgreSQL at $host as $(ini USER); serving https on port $(ini HTTP_PORT)"
exec openssl s_server -quiet -www -accept "$(ini HTTP_ADDR):$(ini HTTP_PORT)" -cert "$(ini CERT_FILE)" -key "$(ini KEY_FILE)" </dev/null
