#!/bin/sh
# STAND-IN for Tailscale's static binaries (/usr/local/bin/tailscale and tailscaled in the tailscale/tailscale image),
# for tests on a machine that cannot fetch the real ones nor reach a tailnet. Installed under both names; it does
# what vm/common/init-lib.sh (start_tailscale) asks of them, keeping a login in the state file as tailscaled does:
#   tailscaled --state=F --socket=S …   records F beside S, creates F (a node with no login yet) if missing, runs on
#   tailscale --socket=S status --json  "BackendState": "Running" when F holds a login, else "NeedsLogin"
#   tailscale --socket=S up --auth-key=file:K --hostname=H   logs in with the key read from K, counting logins in F
#   tailscale version / tailscaled --version
set -eu
name=${0##*/}
sock=/var/run/tailscale/tailscaled.sock
for a in "$@"; do case $a in --socket=*) sock=${a#--socket=} ;; esac; done
if [ "$name" = tailscaled ]; then
  [ "${1:-}" = --version ] && { echo "1.92.3 (stand-in)"; exit 0; }
  state=
  for a in "$@"; do case $a in --state=*) state=${a#--state=} ;; esac; done
  [ -n "$state" ] || { echo "stand-in tailscaled: no --state" >&2; exit 2; }
  [ -s "$state" ] || printf 'node=stand-in\nlogins=0\n' > "$state"
  echo "$state" > "$sock"
  echo "stand-in tailscaled: state $state, socket $sock, args: $*"
  # One process holding the log open until it is stopped, as tailscaled.
  exec sleep 2147483647
fi
case " $* " in *" version "*) echo "1.92.3 (stand-in)"; exit 0 ;; esac
[ -s "$sock" ] || { echo "stand-in tailscale: tailscaled is not running ($sock)" >&2; exit 1; }
state=$(cat "$sock")
case " $* " in
  *" status "*)
    if grep -q '^login=' "$state"; then s=Running; else s=NeedsLogin; fi
    printf '{\n  "Version": "1.92.3 (stand-in)",\n  "BackendState": "%s",\n  "Self": {}\n}\n' "$s" ;;
  *" up "*)
    keyfile= host=
    for a in "$@"; do case $a in --auth-key=file:*) keyfile=${a#--auth-key=file:} ;; --auth-key=*) echo "stand-in tailscale: auth key given in argv" >&2; exit 2 ;; --hostname=*) host=${a#--hostname=} ;; esac; done
    [ -n "$keyfile" ] && [ -s "$keyfile" ] || { echo "stand-in tailscale: no auth key file" >&2; exit 1; }
    n=$(( $(sed -n 's/^logins=//p' "$state") + 1 ))
    sum=$(sha256sum < "$keyfile" | cut -c1-16)
    printf 'node=stand-in\nlogins=%s\nlogin=%s key-sha256=%s\n' "$n" "$host" "$sum" > "$state"
    echo "stand-in tailscale: login $n as $host (key sha256 $sum..., from a file; args: $*)" ;;
  *) echo "stand-in tailscale: unsupported: $*" >&2; exit 2 ;;
esac
