#!/bin/sh
# PID 1 of the PostgreSQL VM: mounts, data disk, secrets, network, then initdb (first boot), passwords and supervision.
. /sbin/init-lib.sh

PG_BIN=/usr/lib/postgresql/15/bin
PGROOT=/data/postgresql
PGDATA=$PGROOT/15
SOCKETS=/run/postgresql

init_common sql 192.168.100.2

as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups env HOME=/var/lib/postgresql LANG=C.UTF-8 "$@"; }
psql_admin() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKETS" -d postgres "$@"; }

first_boot() {
  [ -f "$PGDATA/PG_VERSION" ] && return 0
  log "no cluster in $PGDATA: running initdb"
  mkdir -p "$PGDATA"
  chown -R postgres:postgres "$PGROOT"
  chmod 700 "$PGDATA"
  as_pg "$PG_BIN/initdb" -D "$PGDATA" --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
    || fatal "initdb failed in $PGDATA (not empty? it is never wiped)"
  echo "include_if_exists = 'sovereign.conf'" >> "$PGDATA/postgresql.conf"
  sync # initdb syncs its own files, not this line: a VM killed later must not find it lost (or as NUL bytes)
}

# Rewritten every boot, so a change of network or exposure is followed. Loopback, the guest LAN's /24 (the
# other VMs) and the hypervisor's forwards (HOST_PEER) may connect, with scram-sha-256; any address only when
# the owner exposed 5432 on the device's LAN (crosvm's DNAT keeps the client's own address).
write_config() {
  anywhere=""
  exposed 5432 && anywhere="host all all 0.0.0.0/0 scram-sha-256"
  cat > "$PGDATA/sovereign.conf" <<EOF
listen_addresses = '*'
password_encryption = 'scram-sha-256'
unix_socket_directories = '$SOCKETS'
EOF
  cat > "$PGDATA/pg_hba.conf" <<EOF
local all all peer
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
host all all $GUEST_SUBNET scram-sha-256
host all all $HOST_PEER/32 scram-sha-256
$anywhere
EOF
  chown postgres:postgres "$PGDATA/sovereign.conf" "$PGDATA/pg_hba.conf"
  chmod 600 "$PGDATA/sovereign.conf" "$PGDATA/pg_hba.conf"
  # On disk before PostgreSQL starts: a VM stopped hard (the hypervisor killed) must not leave them empty.
  sync
}

start_pg() {
  mkdir -p "$SOCKETS" && chown postgres:postgres "$SOCKETS"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/postgresql.log" -w -t 120 start
}

# psql lines setting the postgres role's password from the environment variable $1.
superuser_sql() {
  printf '\\getenv pw %s\n' "$1"
  echo "ALTER ROLE postgres PASSWORD :'pw';"
}

# psql lines creating login role $1 with a database of its own (when missing) and its password from variable $2.
app_role_sql() {
  printf '\\set role %s\n\\getenv pw %s\n' "$1" "$2"
  cat <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'role') \gexec
SQL
}

# Every password in one psql session (each psql start costs seconds under TCG). Passwords reach psql through its
# environment and \getenv, and SQL through :'pw' (a quoted literal): never a command line, never spliced into
# SQL text by the shell. App roles exist only when their password was given.
set_passwords() {
  pg_pw=$(secret POSTGRES_PASSWORD) || { pg_pw=""; log "WARNING: POSTGRES_PASSWORD not given: the postgres role has no password (only local peer login works)"; }
  forgejo_pw=$(secret POSTGRES_FORGEJO_PASSWORD) || { forgejo_pw=""; log "POSTGRES_FORGEJO_PASSWORD not given: no forgejo role or database"; }
  vault_pw=$(secret POSTGRES_VAULTWARDEN_PASSWORD) || { vault_pw=""; log "POSTGRES_VAULTWARDEN_PASSWORD not given: no vaultwarden role or database"; }
  [ -n "$pg_pw$forgejo_pw$vault_pw" ] || return 0
  {
    [ -z "$pg_pw" ] || superuser_sql SOV_PG_PW
    [ -z "$forgejo_pw" ] || app_role_sql forgejo SOV_FORGEJO_PW
    [ -z "$vault_pw" ] || app_role_sql vaultwarden SOV_VAULT_PW
  } | SOV_PG_PW="$pg_pw" SOV_FORGEJO_PW="$forgejo_pw" SOV_VAULT_PW="$vault_pw" psql_admin || fatal "could not set the database passwords"
  [ -z "$forgejo_pw" ] || log "role and database forgejo ready"
  [ -z "$vault_pw" ] || log "role and database vaultwarden ready"
  pg_pw=""; forgejo_pw=""; vault_pw=""
}

shutdown() {
  log "stopping PostgreSQL"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop
  power_off
}
trap shutdown TERM INT

first_boot
write_config
start_pg || { tail -n 20 "$PGROOT/postgresql.log"; fatal "PostgreSQL did not start"; }
set_passwords
forget_secrets
echo "PostgreSQL started"
echo "=== INIT COMPLETE ==="

# Supervision: pg_isready every 30 s, restart when it stops answering. `wait` keeps the TERM trap prompt.
while :; do
  sleep 30 & wait $!
  as_pg "$PG_BIN/pg_isready" -q -h "$SOCKETS" && continue
  log "PostgreSQL is not answering: restarting"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/postgresql.log" -m fast -w -t 120 restart || log "restart failed; retrying in 30 s"
done
