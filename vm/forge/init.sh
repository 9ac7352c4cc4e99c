#!/bin/sh
# PID 1 of the Forgejo VM: mounts, data disk, secrets, network, app.ini from the secrets, then forgejo web on 443.
. /sbin/init-lib.sh

init_common forge 192.168.100.3

DB_HOST=$(cmdline_arg sovereign.db) || DB_HOST=192.168.100.2
DOMAIN=$(cmdline_arg sovereign.domain) || DOMAIN=$GUEST_IP
HOME_DIR=/data/forgejo
CONF=$HOME_DIR/custom/conf/app.ini

db_pw=$(secret POSTGRES_FORGEJO_PASSWORD) || fatal "POSTGRES_FORGEJO_PASSWORD is not among this VM's secrets (add it to .env and services.forge.secrets)"
# app.ini quotes a value with backticks; a password holding one cannot be written safely.
case "$db_pw" in *'`'*) fatal "POSTGRES_FORGEJO_PASSWORD contains a backtick, which app.ini cannot quote" ;; esac

mkdir -p "$HOME_DIR/custom/conf" "$HOME_DIR/data" "$HOME_DIR/repositories" "$HOME_DIR/log"

# Secret key and internal token: from the secrets when given, else generated once and kept on the data disk.
# The JWT signing secrets (OAuth2, LFS) are always made here at first boot, never at build time: the image holds none.
keep_secret() {
  if value=$(secret "$1"); then (umask 077; printf '%s' "$value" > "$2")
  elif [ ! -s "$2" ]; then (umask 077; forgejo generate secret "$3" > "$2") || fatal "could not generate $3"
  fi
}
keep_secret FORGEJO_SECRET_KEY "$HOME_DIR/secret_key" SECRET_KEY
keep_secret FORGEJO_INTERNAL_TOKEN "$HOME_DIR/internal_token" INTERNAL_TOKEN
keep_secret FORGEJO_JWT_SECRET "$HOME_DIR/jwt_secret" JWT_SECRET
keep_secret FORGEJO_LFS_JWT_SECRET "$HOME_DIR/lfs_jwt_secret" JWT_SECRET
tls_cert "$HOME_DIR/tls" "$DOMAIN"

# Written every boot from config and secrets (values are inserted as data, never evaluated).
write_app_ini() {
  cat <<INI
APP_NAME = Forgejo
RUN_USER = git
RUN_MODE = prod
WORK_PATH = $HOME_DIR

[server]
PROTOCOL = https
DOMAIN = $DOMAIN
ROOT_URL = https://$DOMAIN/
HTTP_ADDR = 0.0.0.0
HTTP_PORT = 443
CERT_FILE = $HOME_DIR/tls/cert.pem
KEY_FILE = $HOME_DIR/tls/key.pem
DISABLE_SSH = true
START_SSH_SERVER = false
APP_DATA_PATH = $HOME_DIR/data
LFS_JWT_SECRET_URI = file:$HOME_DIR/lfs_jwt_secret

[database]
DB_TYPE = postgres
HOST = $DB_HOST:5432
NAME = forgejo
USER = forgejo
PASSWD = \`$db_pw\`
SSL_MODE = disable
DB_RETRIES = 30

[oauth2]
JWT_SECRET_URI = file:$HOME_DIR/jwt_secret

[repository]
ROOT = $HOME_DIR/repositories

[security]
; no web installer: the config is complete. No admin is made from a secret (a password would have to pass
; through a command line): the first account registered becomes the admin, so register before exposing the port.
INSTALL_LOCK = true
SECRET_KEY_URI = file:$HOME_DIR/secret_key
INTERNAL_TOKEN_URI = file:$HOME_DIR/internal_token

[log]
MODE = console
LEVEL = Info
ROOT_PATH = $HOME_DIR/log
INI
}
(umask 077; write_app_ini > "$CONF")
chown git:git "$HOME_DIR" "$HOME_DIR"/* "$HOME_DIR/custom/conf" "$CONF" "$HOME_DIR"/tls/*
start_tailscale /data/tailscale
forget_secrets

echo 443 > /proc/sys/net/ipv4/ip_unprivileged_port_start
wait_for_postgres "$DB_HOST" 5432 120

export HOME="$HOME_DIR" USER=git GITEA_WORK_DIR="$HOME_DIR"
setpriv --reuid=git --regid=git --init-groups forgejo web --config "$CONF" &
APP_PID=$!
wait_port 443 120 || fatal "Forgejo did not listen on 443 within 120 s"
echo "Forgejo started on https://$DOMAIN/"
echo "=== INIT COMPLETE ==="

trap 'kill "$APP_PID" 2>/dev/null; wait "$APP_PID"; power_off' TERM INT
supervise git forgejo web --config "$CONF"
