#!/bin/sh
# PID 1 of the Vaultwarden VM: mounts, data disk, secrets, network, then vaultwarden on 443 against the sql VM.
. /sbin/init-lib.sh

init_common vault 192.168.100.4

DB_HOST=$(cmdline_arg sovereign.db) || DB_HOST=192.168.100.2
DOMAIN=$(cmdline_arg sovereign.domain) || DOMAIN=$GUEST_IP
DATA=/data/vaultwarden

db_pw=$(secret POSTGRES_VAULTWARDEN_PASSWORD) || fatal "POSTGRES_VAULTWARDEN_PASSWORD is not among this VM's secrets (add it to .env and services.vault.secrets)"
# Every byte percent-encoded: any password is then a valid URL user-info part.
db_pw_url=$(printf '%s' "$db_pw" | od -An -v -tx1 | tr -d ' \n' | sed 's/../%&/g')

mkdir -p "$DATA"
tls_cert "$DATA/tls" "$DOMAIN"
chown -R vaultwarden:vaultwarden "$DATA"
# Before the exports below: tailscaled must not inherit the database URL or the admin token.
start_tailscale /data/tailscale

# Configuration reaches vaultwarden through its environment (never a command line). The web vault lives
# outside /data so the data disk cannot hide it.
export DATABASE_URL="postgresql://vaultwarden:$db_pw_url@$DB_HOST:5432/vaultwarden"
export DATA_FOLDER="$DATA" WEB_VAULT_FOLDER=/opt/vaultwarden/web-vault WEB_VAULT_ENABLED=true
export DOMAIN="https://$DOMAIN" ROCKET_ADDRESS=0.0.0.0 ROCKET_PORT=443
export ROCKET_TLS="{certs=\"$DATA/tls/cert.pem\",key=\"$DATA/tls/key.pem\"}"
export SIGNUPS_ALLOWED=false HOME="$DATA"
if admin=$(secret VAULTWARDEN_ADMIN_TOKEN); then export ADMIN_TOKEN="$admin"; fi
forget_secrets

echo 443 > /proc/sys/net/ipv4/ip_unprivileged_port_start
wait_for_postgres "$DB_HOST" 5432 120

cd /opt/vaultwarden || fatal "vaultwarden is not installed in /opt/vaultwarden"
setpriv --reuid=vaultwarden --regid=vaultwarden --init-groups /opt/vaultwarden/vaultwarden &
APP_PID=$!
wait_port 443 120 || fatal "Vaultwarden did not listen on 443 within 120 s"
echo "Vaultwarden started on $DOMAIN"
echo "=== INIT COMPLETE ==="

trap 'kill "$APP_PID" 2>/dev/null; wait "$APP_PID"; power_off' TERM INT
supervise vaultwarden /opt/vaultwarden/vaultwarden
