#!/usr/bin/env bash
# Makes sure a Docker engine answers `docker info`, starting one if needed. Idempotent.
#
#   bash scripts/lib/docker-up.sh      -> exit 0 once `docker info` works
#
# On our machines (and CI) no engine runs and none is installed, so this installs Debian's docker.io,
# registers an OCI runtime wrapper as the default runtime and starts dockerd in the background.
# The wrapper exists because the sandbox's capability bounding set lacks CAP_SYS_RESOURCE: runc refuses
# any container that asks for it ("unable to apply caps"), and every --privileged container (kind nodes)
# asks for all capabilities. The wrapper drops that one capability from the OCI spec, then execs runc.
# Environment: DOCKER_UP_TIMEOUT (seconds to wait for the socket, default 60),
#              DOCKER_UP_LOG (dockerd log, default /var/log/kfp-artifacts-dockerd.log).
set -euo pipefail

timeout_s="${DOCKER_UP_TIMEOUT:-60}"
dockerd_log="${DOCKER_UP_LOG:-/var/log/kfp-artifacts-dockerd.log}"
wrapper=/usr/local/bin/runc-nosysresource

say() { printf 'docker-up: %s\n' "$*" >&2; }

# Many kind nodes each run kubelet + containerd, which use inotify heavily; the default 128 is too low.
raise_inotify_limits() {
  local current
  current="$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 0)"
  if ((current < 512)); then sysctl -qw fs.inotify.max_user_instances=512 || say "cannot raise fs.inotify.max_user_instances (continuing)"; fi
  current="$(sysctl -n fs.inotify.max_user_watches 2>/dev/null || echo 0)"
  if ((current < 524288)); then sysctl -qw fs.inotify.max_user_watches=524288 || say "cannot raise fs.inotify.max_user_watches (continuing)"; fi
}

raise_inotify_limits

# The wrapper is rewritten only when its content changes, so a running engine is never disturbed.
wrapper_text="$(
  cat <<'WRAPPER'
#!/bin/sh
# OCI runtime wrapper (installed by kfp-artifacts scripts/lib/docker-up.sh): removes CAP_SYS_RESOURCE
# from the OCI spec handed to runc, because this machine's capability bounding set lacks it and runc
# fails to apply capabilities it cannot hold. Everything else passes through to the real runc.
real_runc=""
for candidate in "$RUNC_REAL" /usr/sbin/runc /usr/bin/runc /usr/local/sbin/runc.real; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then real_runc="$candidate"; break; fi
done
[ -n "$real_runc" ] || { echo "runc-nosysresource: runc not found" >&2; exit 127; }

strip_cap() {
  [ -f "$1" ] || return 0
  sed -i -e 's/"CAP_SYS_RESOURCE"[[:space:]]*,[[:space:]]*//g' \
         -e 's/,[[:space:]]*"CAP_SYS_RESOURCE"//g' \
         -e 's/"CAP_SYS_RESOURCE"//g' "$1"
}

command=""; bundle=""; process=""; previous=""
for arg in "$@"; do
  case "$previous" in
    --bundle|-b) bundle="$arg" ;;
    --process|-p) process="$arg" ;;
  esac
  case "$arg" in
    --bundle=*) bundle="${arg#--bundle=}" ;;
    --process=*) process="${arg#--process=}" ;;
  esac
  if [ -z "$command" ]; then
    case "$arg" in create|run|exec) command="$arg" ;; esac
  fi
  previous="$arg"
done

case "$command" in
  create|run) strip_cap "${bundle:-.}/config.json" ;;
  exec) [ -n "$process" ] && strip_cap "$process" ;;
esac
exec "$real_runc" "$@"
WRAPPER
)"
if [[ $(id -u) == 0 ]] && [[ ! -x $wrapper || "$(cat "$wrapper")" != "$wrapper_text" ]]; then
  printf '%s\n' "$wrapper_text" >"$wrapper"
  chmod 0755 "$wrapper"
fi

if docker info >/dev/null 2>&1; then exit 0; fi

if [[ $(id -u) != 0 ]]; then
  say "no Docker engine answers and starting one needs root; run as root or start Docker yourself"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  say "installing Debian's docker.io (log: /var/log/kfp-artifacts-apt.log)"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io; } \
    >>/var/log/kfp-artifacts-apt.log 2>&1; then
    say "apt-get install docker.io failed — see /var/log/kfp-artifacts-apt.log"
    exit 1
  fi
fi

# Register the wrapper only where it is needed: when CAP_SYS_RESOURCE (bit 24) is missing from our
# bounding set. Elsewhere Docker keeps its stock runtime; the wrapper file is still installed because
# the offline kind node image copies it (scripts/cluster/build-node-image.sh).
bounding_set="$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)"
needs_wrapper=0
if (((0x$bounding_set >> 24 & 1) == 0)); then needs_wrapper=1; fi

mkdir -p /etc/docker
if ((needs_wrapper)) && { [[ ! -f /etc/docker/daemon.json ]] || ! grep -q runc-nosysresource /etc/docker/daemon.json; }; then
  if [[ -f /etc/docker/daemon.json ]]; then cp /etc/docker/daemon.json "/etc/docker/daemon.json.bak.$(date +%s)"; fi
  cat >/etc/docker/daemon.json <<JSON
{
  "default-runtime": "nosysresource",
  "runtimes": { "nosysresource": { "path": "$wrapper" } }
}
JSON
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $dockerd_log)"
  nohup dockerd >>"$dockerd_log" 2>&1 </dev/null &
fi

deadline=$((SECONDS + timeout_s))
until docker info >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    say "dockerd did not answer within ${timeout_s}s — see $dockerd_log"
    exit 1
  fi
  sleep 1
done
say "Docker engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown))"
