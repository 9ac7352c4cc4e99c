# Shared guest-init functions (POSIX sh), installed as /sbin/init-lib.sh and sourced by each service's init.sh (PID 1).
# Nothing here formats a disk or falls back to tmpfs for /data: without its data disk a VM must not start.

log() { echo "[init] $*"; }

# PID 1 must never just exit (the kernel panics): sync, unmount /data, power off.
power_off() {
  sync
  stop_tailscale
  umount /data 2>/dev/null
  echo o > /proc/sysrq-trigger
  while :; do sleep 3600; done
}

fatal() {
  echo "FATAL: $*"
  power_off
}

# Value of `name=value` on the kernel command line (sovereign.* parameters; never secrets).
cmdline_arg() {
  set -f
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) set +f; echo "${word#*=}"; return 0 ;; esac
  done
  set +f
  return 1
}

mount_basics() {
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev 2>/dev/null # the kernel may have mounted it already
  # Ctrl-Alt-Del (sovereign's clean stop) must reach init as SIGINT, not reboot at once (the kernel default).
  echo 0 > /proc/sys/kernel/ctrl-alt-del
  mkdir -p /dev/pts /dev/shm
  mount -t devpts devpts /dev/pts
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/sovereign && chmod 700 /run/sovereign
  [ -c /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
  echo "sovereign-$SERVICE" > /proc/sys/kernel/hostname
}

# First of the given block devices to appear within $2 seconds (disks are probed asynchronously).
wait_disk() {
  candidates="$1"; tries=$(( $2 * 5 ))
  while [ "$tries" -gt 0 ]; do
    for dev in $candidates; do [ -b "$dev" ] && { echo "$dev"; return 0; }; done
    sleep 0.2; tries=$((tries - 1))
  done
  return 1
}

# The second disk (nvme1n1 under qemu, vdb under crosvm) at /data, or a loud failure and power-off.
mount_data() {
  candidates="$(cmdline_arg sovereign.data) /dev/nvme1n1 /dev/vdb"
  dev=$(wait_disk "$candidates" 15) || fatal "data disk not found (tried:$candidates); is data.img attached as the second disk?"
  mkdir -p /data
  mount -t ext4 -o noatime "$dev" /data || fatal "data disk $dev could not be mounted as ext4 (not formatted by sovereign? see data-disk)"
  log "data disk $dev mounted at /data"
}

# The third disk holds KEY=VALUE lines padded with NUL bytes. It is copied (NULs dropped) to a 0600 file on
# tmpfs and read with `secret KEY`; it is never sourced or evaluated.
read_secrets() {
  candidates="$(cmdline_arg sovereign.secrets) /dev/nvme2n1 /dev/vdc"
  if dev=$(wait_disk "$candidates" 2); then
    (umask 077; tr -d '\000' < "$dev" > /run/sovereign/secrets) || fatal "secrets disk $dev could not be read"
    log "secrets read from $dev"
  else
    : > /run/sovereign/secrets
    log "no secrets disk attached"
  fi
}

# Prints the value of KEY (exactly, no quoting rules); fails when KEY is absent or empty.
secret() {
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in "$1="?*) printf '%s' "${line#*=}"; return 0 ;; esac
  done < /run/sovereign/secrets
  return 1
}

forget_secrets() { rm -f /run/sovereign/secrets; }

# Drivers the kernel has as modules (Debian's cloud kernel: virtio_pci, virtio_net, …), put in the rootfs by
# sovereign from the kernel's own package, loaded in the order its load-order file gives. Kernels with the
# drivers built in ship none: then there is nothing to do.
load_modules() {
  dir=/lib/modules/sovereign
  [ -s "$dir/load-order" ] || return 0
  command -v insmod >/dev/null 2>&1 || { log "WARNING: no insmod in the image (add kmod or busybox): kernel modules not loaded"; return 0; }
  loaded=""
  while IFS= read -r ko; do
    [ -n "$ko" ] || continue
    name=${ko%.ko}
    if insmod "$dir/$ko" 2>/dev/null; then loaded="$loaded $name"
    # Already loaded is fine; anything else is worth a line.
    elif ! grep -q "^$name " /proc/modules 2>/dev/null; then log "WARNING: could not load $ko"; fi
  done < "$dir/load-order"
  [ -z "$loaded" ] || log "modules:$loaded"
}

# Name of the interface with MAC $1 (waits up to 5 s for it: NIC drivers probe asynchronously); with no MAC,
# the first interface that is not loopback or a tunnel.
find_iface() {
  tries=25
  while [ "$tries" -gt 0 ]; do
    for path in /sys/class/net/*; do
      name=${path##*/}
      case "$name" in lo|sit*|tunl*|dummy*) continue ;; esac
      if [ -z "$1" ] || [ "$(cat "$path/address" 2>/dev/null)" = "$1" ]; then echo "$name"; return 0; fi
    done
    sleep 0.2; tries=$((tries - 1))
  done
  return 1
}

# Static network from the kernel command line (lib/vm/network.ts writes it):
#   sovereign.ip (+ sovereign.mac): this VM's address on the device's guest LAN /24, shared by all its VMs;
#   sovereign.uplink + sovereign.upmac (qemu): a second NIC, this VM's own user-mode uplink;
#   sovereign.gw: the default route (the bridge's .1 on crosvm, the uplink's gateway on qemu);
#   sovereign.dns: the resolvers, comma-separated (device `dns`: 8.8.8.8 on crosvm, slirp's 10.0.2.3 on qemu).
# Sets GUEST_IP, GUEST_SUBNET (the LAN: the other VMs) and HOST_PEER (the address connections forwarded by
# the hypervisor come from: qemu's uplink gateway, or the bridge's .1), and EXPOSED (ports the owner exposed).
setup_network() {
  GUEST_IP=$(cmdline_arg sovereign.ip) || GUEST_IP="$1"
  GUEST_SUBNET="${GUEST_IP%.*}.0/24"
  GW=$(cmdline_arg sovereign.gw) || GW="${GUEST_IP%.*}.1"
  HOST_PEER=$GW
  EXPOSED=$(cmdline_arg sovereign.expose) || EXPOSED=""
  ip link set lo up
  if ! iface=$(find_iface "$(cmdline_arg sovereign.mac)"); then
    log "WARNING: no network interface found; the service is reachable only inside the VM"; return 0
  fi
  ip addr add "$GUEST_IP/24" dev "$iface"
  ip link set "$iface" up
  via="$iface"
  if uplink=$(cmdline_arg sovereign.uplink); then
    if up=$(find_iface "$(cmdline_arg sovereign.upmac)"); then
      ip addr add "$uplink/24" dev "$up"
      ip link set "$up" up
      via="$up"
      log "uplink: $up $uplink/24"
    else
      log "WARNING: uplink NIC $(cmdline_arg sovereign.upmac) not found: no outbound access, no forwarded ports"
    fi
  fi
  ip route add default via "$GW" dev "$via"
  # sovereign.dns: one address or several, comma-separated; one nameserver line each.
  if dns=$(cmdline_arg sovereign.dns); then
    ifs=$IFS; IFS=,
    for ns in $dns; do echo "nameserver $ns"; done > /etc/resolv.conf
    IFS=$ifs
    log "resolvers: $dns"
  fi
  log "network: $iface $GUEST_IP/24, default via $GW dev $via"
}

# True when the owner exposed guest port $1 on the device's LAN (config `expose`).
exposed() {
  case ",$EXPOSED," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}

# Waits for PostgreSQL at $1:$2 for up to $3 seconds; FATAL when it never answers (the app would only crash-loop).
wait_for_postgres() {
  left=$3
  until pg_isready -q -h "$1" -p "$2" -t 2; do
    left=$((left - 3))
    [ "$left" -gt 0 ] || fatal "PostgreSQL at $1:$2 did not answer within $3 s (is the sql VM running and ready?)"
    sleep 1
  done
  log "PostgreSQL at $1:$2 is ready"
}

# True once something listens on TCP port $1, waiting up to $2 seconds.
wait_port() {
  left=$(( $2 * 2 ))
  while [ "$left" -gt 0 ]; do
    [ -n "$(ss -Hltn "sport = :$1")" ] && return 0
    sleep 0.5; left=$((left - 1))
  done
  return 1
}

# A self-signed certificate for $2 in $1, made once and kept on the data disk (no ACME client in the VM).
tls_cert() {
  [ -s "$1/cert.pem" ] && [ -s "$1/key.pem" ] && return 0
  mkdir -p "$1"
  case "$2" in *[!0-9.]*) san="DNS:$2" ;; *) san="IP:$2" ;; esac
  (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$2" -addext "subjectAltName=$san" \
    -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null) || fatal "could not create a TLS certificate in $1"
  log "created a self-signed certificate for $2"
}

# Tailscale, when the image has it (services.<name>.upstream.TAILSCALE_IMAGE; README "Tailscale"): tailscaled in
# userspace-networking mode (no TUN needed; tailnet connections reach the service on this VM's ports), its state in
# $1 on the data disk, so the VM keeps one identity across boots, rebuilds and redeploys. It logs in, as
# sovereign-$SERVICE, only when that state holds no login, and only after tailscaled has read it (checking before
# re-registered the original's VMs as -1, -2, …). The auth key reaches tailscale through a 0600 file on tmpfs,
# never argv. Call it before forget_secrets.
start_tailscale() {
  command -v tailscaled >/dev/null 2>&1 || return 0
  ts_sock=/run/tailscale/tailscaled.sock
  mkdir -p "$1" /run/tailscale && chmod 700 "$1"
  tailscaled --state="$1/tailscaled.state" --statedir="$1" --socket="$ts_sock" --tun=userspace-networking >> "$1/tailscaled.log" 2>&1 &
  TS_PID=$!
  ts_state=""
  tries=60
  while [ "$tries" -gt 0 ]; do
    ts_state=$(tailscale --socket="$ts_sock" status --json 2>/dev/null | sed -n 's/^ *"BackendState": *"\([A-Za-z]*\)".*/\1/p' | head -n 1)
    case "$ts_state" in ''|NoState) ;; *) break ;; esac
    sleep 0.5; tries=$((tries - 1))
  done
  case "$ts_state" in
    ''|NoState) log "WARNING: tailscaled did not report its state within 30 s (see $1/tailscaled.log): no Tailscale this boot"; return 0 ;;
    NeedsLogin) ;;
    *) log "Tailscale: this VM is already known to the tailnet ($ts_state): no new login"; return 0 ;;
  esac
  ts_key=$(secret TAILSCALE_AUTHKEY) || fatal "Tailscale needs a login and TAILSCALE_AUTHKEY is not among this VM's secrets (add it to .env and services.$SERVICE.secrets)"
  (umask 077; printf '%s' "$ts_key" > /run/sovereign/tailscale-authkey)
  ts_key=""
  if timeout 45 tailscale --socket="$ts_sock" up --auth-key=file:/run/sovereign/tailscale-authkey --hostname="sovereign-$SERVICE"; then
    log "Tailscale: logged in as sovereign-$SERVICE"
  else
    log "WARNING: Tailscale login failed (see $1/tailscaled.log); the service is still reachable on the device"
  fi
  rm -f /run/sovereign/tailscale-authkey
}

# tailscaled keeps its log and state open on /data: it stops (and saves its state) before power_off unmounts /data.
stop_tailscale() {
  [ -n "${TS_PID:-}" ] || return 0
  kill "$TS_PID" 2>/dev/null && wait "$TS_PID" 2>/dev/null
  TS_PID=""
}

# Runs "$@" in the background as user $1 and restarts it whenever it exits; never returns.
supervise() {
  user=$1; shift
  while :; do
    wait "$APP_PID"
    log "$1 exited ($?); restarting in 5 s"
    sleep 5
    setpriv --reuid="$user" --regid="$user" --init-groups "$@" &
    APP_PID=$!
  done
}

init_common() {
  SERVICE="$1"
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  mount_basics
  mount_data
  read_secrets
  load_modules
  setup_network "$2"
}
