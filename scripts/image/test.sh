#!/usr/bin/env bash
# `make test-image`: builds the image (scripts/image/build.sh) and checks it the way a cluster runs it.
# Prints one line per check; exits non-zero if any check fails. Exits 0 with "skipped" only when no
# Docker engine can be started at all (then there is nothing to test with).
#
# Checks: user 65532 (config and runtime), size <= 150 MB uncompressed, Node is the pinned LTS line,
# and with --read-only --cap-drop ALL --security-opt no-new-privileges and a volume at /artifacts:
# /healthz, /readyz, a PUT/GET round trip (AUTH_MODE=none) that lands on the volume, and `docker stop`
# exiting 0 well within the grace period.
#
# Environment: IMAGE, IMAGE_PUBLISHED, IMAGE_BUILD (passed to build.sh); IMAGE_TEST_START_TIMEOUT
# (seconds to wait for /healthz, default 30).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
# shellcheck source=scripts/image/versions.sh
source "$script_dir/versions.sh"
cd "$repo_root"

version="$(node -p 'require("./package.json").version')"
image="${IMAGE:-kfp-artifacts:$version}"
start_timeout="${IMAGE_TEST_START_TIMEOUT:-30}"
size_budget=150000000 # bytes: 150 MB
stop_grace=40         # `docker stop -t`, seconds: above the server's SHUTDOWN_DELAY_SECONDS + SHUTDOWN_GRACE_SECONDS (5 + 25)
stop_budget=10        # seconds: "well within" the grace period; an idle server exits right after the 5 s delay

failures=0
pass() { printf 'ok    %-22s %s\n' "$1" "$2"; }
fail() { printf 'FAIL  %-22s %s\n' "$1" "$2"; failures=$((failures + 1)); }
check() { # name, detail, condition...
  local name="$1" detail="$2"
  shift 2
  if "$@"; then pass "$name" "$detail"; else fail "$name" "$detail"; fi
}

if ! docker info >/dev/null 2>&1 && ! bash scripts/lib/docker-up.sh; then
  echo "test-image: skipped: no Docker engine could be started (scripts/lib/docker-up.sh failed)"
  exit 0
fi

SECONDS=0
IMAGE="$image" "$script_dir/build.sh"
pass build "$image in ${SECONDS}s"

# --- Static checks ------------------------------------------------------------------------------------
published="${IMAGE_PUBLISHED:-ghcr.io/kubeflow/kfp-artifacts:$version}"
image_id="$(docker image inspect -f '{{.Id}}' "$image")"
published_id="$(docker image inspect -f '{{.Id}}' "$published" 2>/dev/null || echo missing)"
check published-tag "$published is the same image" test "$published_id" = "$image_id"

# The Dockerfile and the offline path must ship the same Node line: compare the Dockerfile's ARG
# defaults with versions.sh, and the distroless Node major with the pinned Node version.
dockerfile_arg() { sed -n "s/^ARG $1=//p" Dockerfile | head -n 1; }
df_node="$(dockerfile_arg NODE_VERSION)"
df_build="$(dockerfile_arg BUILD_IMAGE)"
df_build="${df_build//\$\{NODE_VERSION\}/$df_node}"
df_runtime="$(dockerfile_arg RUNTIME_IMAGE)"
pins_ok() {
  [[ $df_node == "$NODE_VERSION" && $df_build == "$NODE_BUILD_IMAGE" && $df_runtime == "$DISTROLESS_BASE" &&
    $DISTROLESS_BASE == */nodejs"${NODE_VERSION%%.*}"-"$DEBIAN_RELEASE":* ]]
}
check pins-in-step "Dockerfile node $df_node, $df_runtime; offline node $NODE_VERSION, $DEBIAN_RELEASE" pins_ok

user="$(docker image inspect -f '{{.Config.User}}' "$image")"
check config-user "User=$user" test "$user" = "$NONROOT_UID:$NONROOT_UID"

size="$(docker image inspect -f '{{.Size}}' "$image")"
check size "$size bytes ($((size / 1000000)) MB, $((size / 1048576)) MiB; budget $((size_budget / 1000000)) MB)" \
  test "$size" -le "$size_budget"

# The entrypoint is node, so the arguments below replace the server command.
ids="$(docker run --rm --read-only --cap-drop ALL --security-opt no-new-privileges "$image" \
  -p 'process.getuid() + ":" + process.getgid()')" || ids="(node did not run)"
check runtime-user "uid:gid=$ids" test "$ids" = "$NONROOT_UID:$NONROOT_UID"

# Distroless: nothing to exec into. A shell in the image would be a regression.
shells="$(docker run --rm "$image" -p '["/bin/sh", "/bin/bash", "/busybox/sh", "/usr/bin/apt"].filter((p) => require("node:fs").existsSync(p)).join(" ")')" ||
  shells="(node did not run)"
check no-shell "shells or package managers found: ${shells:-none}" test -z "$shells"

node_info="$(docker run --rm "$image" -p 'process.version + " " + (process.release.lts || "not-LTS")')" ||
  node_info="(node did not run)"
expected_major="v${NODE_VERSION%%.*}."
node_ok() { [[ $node_info == "$expected_major"* && $node_info != *not-LTS ]]; }
check node-lts "$node_info (expected ${expected_major}x, an LTS release)" node_ok

# --- Running the server hardened -----------------------------------------------------------------------
volume="$(mktemp -d)"
container="kfp-artifacts-image-test-$$"
payload="$(mktemp)"
response="$(mktemp)"
downloaded="$(mktemp)"
cleanup() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$volume" "$payload" "$response" "$downloaded"
}
trap cleanup EXIT
# The server writes as 65532; hand it the directory (or, without root, open it up).
if chown "$NONROOT_UID:$NONROOT_UID" "$volume" 2>/dev/null; then chmod 0700 "$volume"; else chmod 0777 "$volume"; fi

docker run -d --name "$container" --read-only --cap-drop ALL --security-opt no-new-privileges \
  -v "$volume:/artifacts" -e AUTH_MODE=none -p 127.0.0.1::8080 "$image" >/dev/null
port="$(docker port "$container" 8080/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1)"
base_url="http://127.0.0.1:$port"

started=false
for ((waited = 0; waited < start_timeout * 5; waited++)); do
  if curl -fsS --max-time 2 -o /dev/null "$base_url/healthz" 2>/dev/null; then started=true; break; fi
  [[ $(docker inspect -f '{{.State.Running}}' "$container") == true ]] || break
  sleep 0.2
done
check read-only-start "listening on $base_url under --read-only --cap-drop ALL (within ${start_timeout}s)" $started

status_of() { curl -sS --max-time 10 -o "$response" -w '%{http_code}' "$@" || echo "000"; }

ready_status="$(status_of "$base_url/readyz")"
check readyz "GET /readyz -> $ready_status $(head -c 200 "$response")" test "$ready_status" = 200

head -c 1048576 /dev/urandom >"$payload"
expected_sha="$(sha256sum "$payload" | cut -d' ' -f1)"
artifact_path="/v1/namespaces/image-test/artifacts/round/trip.bin"
put_status="$(status_of -X PUT --data-binary "@$payload" -H 'Content-Type: application/octet-stream' \
  "$base_url$artifact_path")"
put_sha="$(jq -r '.sha256 // empty' "$response" 2>/dev/null || true)"
put_ok() { [[ $put_status == 201 && $put_sha == "$expected_sha" ]]; }
check put "PUT 1 MiB -> $put_status, sha256 ${put_sha:-(none)} $(put_ok || head -c 200 "$response")" put_ok

get_status="$(curl -sS --max-time 10 -o "$downloaded" -w '%{http_code}' "$base_url$artifact_path" || echo 000)"
get_ok() { [[ $get_status == 200 ]] && cmp -s "$payload" "$downloaded"; }
check get "GET -> $get_status, $(stat -c %s "$downloaded") bytes, identical: $(get_ok && echo yes || echo no)" get_ok

# The bytes went to the volume (the only writable path), written by 65532.
stored="$volume/image-test/round/trip.bin"
owner="$(stat -c '%u:%g' "$stored" 2>/dev/null || echo missing)"
stored_ok() { [[ $owner == "$NONROOT_UID:$NONROOT_UID" ]] && cmp -s "$payload" "$stored"; }
check on-volume "<volume>/image-test/round/trip.bin owner $owner" stored_ok

stop_started_ms="$(date +%s%3N)"
docker stop -t "$stop_grace" "$container" >/dev/null
stop_ms=$(($(date +%s%3N) - stop_started_ms))
exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$container")"
stop_ok() { [[ $exit_code == 0 ]] && ((stop_ms < stop_budget * 1000)); }
check stop "docker stop -t $stop_grace -> exit $exit_code after ${stop_ms} ms (budget ${stop_budget}s)" stop_ok

if ((failures)); then
  echo "--- server log (last 40 lines)"
  docker logs --tail 40 "$container" 2>&1 || true
  echo "test-image: $failures check(s) failed"
  exit 1
fi
echo "test-image: all checks passed ($image)"
