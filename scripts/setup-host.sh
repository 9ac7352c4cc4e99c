#!/usr/bin/env bash
# Installs the system tools sovereign drives (Debian/Ubuntu), and starts a docker daemon if none answers.
# Usage: scripts/setup-host.sh [--no-daemon]   (as root, or as a user who may sudo)
set -euo pipefail
packages=(
  docker.io podman               # image builds (docker, or podman as the alternative builder)
  e2fsprogs                      # mkfs.ext4 -d and debugfs: rootfs and data disks without root or mount
  mmdebstrap uidmap debootstrap  # base images without any registry (mmdebstrap also as an ordinary user; debootstrap as fallback)
  qemu-user-static binfmt-support arch-test  # base images for another architecture (an arm64 phone on an x86 host)
  qemu-system-x86 qemu-utils     # the local device's hypervisor (TCG when KVM does not work)
  qemu-system-arm                # qemu-system-aarch64: an aarch64 qemu device (and the arm64 boot test)
  openssh-client openssh-server rsync  # ssh devices (the server only for the tests' device host)
  adb                            # Android devices
  busybox-static                 # tiny test images
  mksh                           # Android's shell: the supervisor and boot.sh are tested under it
  systemd                        # systemd-analyze verify checks the autostart unit for ssh boxes (not started)
  gcc libc6-dev                   # compiles the tests' stand-in crosvm (its control socket; crosvm is not in Debian)
  postgresql-client              # psql: sql:test logs in and runs a query on the local device
  iproute2 iptables              # network namespaces; the crosvm network test runs its rules in one
  docker-registry                # the tests' stand-in for upstream registries (codeberg.org, Docker Hub), on loopback
  curl ca-certificates           # curl also runs test's web UI checks (busybox wget when a device lacks it)
)
# As root it just runs (a minimal Debian has no sudo); as another user it asks sudo for root.
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup-host.sh: run as root (no sudo here: su -c '$0 $*')" >&2; exit 1; }
  exec sudo "$0" "$@"
fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The base image as an ordinary user (mmdebstrap --mode=unshare) needs unprivileged user namespaces: Debian's
# kernel.unprivileged_userns_clone (only some kernels have it) and user.max_user_namespaces must allow them.
userns=()
[ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null)" != 0 ] || userns+=(kernel.unprivileged_userns_clone=1)
[ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null)" != 0 ] || userns+=(user.max_user_namespaces=15000)
if [ ${#userns[@]} -gt 0 ]; then
  echo "allowing unprivileged user namespaces: ${userns[*]} (kept in /etc/sysctl.d/60-sovereign-userns.conf)"
  printf '%s\n' "${userns[@]}" >/etc/sysctl.d/60-sovereign-userns.conf
  sysctl -q -w "${userns[@]}"
fi
# ...and 65536 subordinate ids for the user who ran this through sudo (Debian's useradd gives new users theirs;
# older accounts may lack them), in a range after every range already taken.
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  start=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print (m > 100000 ? m : 100000) }')
  range="$start-$((start + 65535))"
  grep -qs "^$SUDO_USER:" /etc/subuid || { echo "subordinate uids $range for $SUDO_USER"; usermod --add-subuids "$range" "$SUDO_USER"; }
  grep -qs "^$SUDO_USER:" /etc/subgid || { echo "subordinate gids $range for $SUDO_USER"; usermod --add-subgids "$range" "$SUDO_USER"; }
fi
# Foreign-architecture binaries run through binfmt_misc: a fresh container or VM may not have it mounted, and
# the qemu-aarch64 entry may be installed but not registered. Both steps are no-ops once done.
if [ "$(uname -m)" != aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
  grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || { echo "setup-host.sh: qemu-aarch64 binfmt is not enabled" >&2; exit 1; }
fi
if [ "${1:-}" != "--no-daemon" ] && ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && systemctl start docker 2>/dev/null; then :; else
    echo "starting dockerd (log: /var/log/sovereign-dockerd.log)"
    nohup dockerd --storage-driver=overlay2 >/var/log/sovereign-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 50); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start: see /var/log/sovereign-dockerd.log" >&2; exit 1; }
fi
echo "host ready"
