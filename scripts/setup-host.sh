#!/usr/bin/env bash
# Installs the system tools sovereign drives (Debian/Ubuntu), and starts a docker daemon if none answers.
# Usage: scripts/setup-host.sh [--no-daemon]   (as root, or as a user who may sudo)
set -euo pipefail
packages=(
  docker.io podman               # image builds (docker, or podman as the alternative builder)
  e2fsprogs                      # mkfs.ext4 -d and debugfs: rootfs and data disks without root or mount
  debootstrap                    # base images without any registry
  qemu-system-x86 qemu-utils     # the local device's hypervisor (TCG when KVM does not work)
  openssh-client openssh-server rsync  # ssh devices (the server only for the tests' device host)
  adb                            # Android devices
  busybox-static                 # tiny test images
  mksh                           # Android's shell: the supervisor and boot.sh are tested under it
  systemd                        # systemd-analyze verify checks the autostart unit for ssh boxes (not started)
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
if [ "${1:-}" != "--no-daemon" ] && ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && systemctl start docker 2>/dev/null; then :; else
    echo "starting dockerd (log: /var/log/sovereign-dockerd.log)"
    nohup dockerd --storage-driver=overlay2 >/var/log/sovereign-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 50); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start: see /var/log/sovereign-dockerd.log" >&2; exit 1; }
fi
echo "host ready"
