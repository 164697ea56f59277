#!/usr/bin/env bash
# `make test-image`: builds the image (scripts/image/build.sh) and checks it the way people run it —
# plain `docker run` with the volume the image declares, a new named volume, a host directory — and the
# way a cluster runs it: read-only root, every capability dropped, user 65532.
# Prints one line per check; exits non-zero if any check fails. Exits 0 with "skipped" only when no
# Docker engine can be started at all (then there is nothing to test with).
#
# Checks:
#   static      the published tag; the Node pins and the whole image configuration in step between the
#               Dockerfile and the image built (config-in-step.mjs); the OCI labels; user 65532 (config
#               and runtime); size <= 150 MB; no shell; Node is the pinned LTS line
#   quick-*     README's quick start exactly as written there, but with this test's container and volume
#               names and free host ports: a new named volume under --read-only --cap-drop ALL, the
#               image's own HEALTHCHECK turning healthy, a PUT on 8080 read back by S3 on 9000
#   anon-*      no volume flag (Docker makes an anonymous volume from VOLUME) and no-new-privileges:
#               /healthz, /readyz, a 1 MiB PUT/GET, the same bytes by S3, owner 65532 on the volume, a
#               log of JSON lines only (no Node warning), `docker stop` exiting 0 well within the grace
#   host-dir-*  a host directory owned by root: one fatal line naming the fix, exit 2; chowned to 65532
#               as that line says: it serves, and the files on the host belong to 65532
#   no-cluster  the default AUTH_MODE=kubernetes outside a cluster: exit 2, "for local use set AUTH_MODE=none"
#
# Environment: IMAGE, IMAGE_PUBLISHED, IMAGE_BUILD (passed to build.sh); IMAGE_TEST_START_TIMEOUT
# (seconds to wait for /healthz and for the health check, default 30).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
# shellcheck source=scripts/image/versions.sh
source "$script_dir/versions.sh"
cd "$repo_root"

version="$(node -p 'require("./package.json").version')"
image="${IMAGE:-kfp-artifacts:$version}"
published="${IMAGE_PUBLISHED:-ghcr.io/kubeflow/kfp-artifacts:$version}"
start_timeout="${IMAGE_TEST_START_TIMEOUT:-30}"
size_budget=150000000 # bytes: 150 MB
stop_grace=40         # `docker stop -t`, seconds: above the server's SHUTDOWN_DELAY_SECONDS + SHUTDOWN_GRACE_SECONDS (5 + 25)
stop_budget=10        # seconds: "well within" the grace period; an idle server exits right after the 5 s delay
hardened=(--read-only --cap-drop ALL --security-opt no-new-privileges)

failures=0
pass() { printf 'ok    %-22s %s\n' "$1" "$2"; }
fail() { printf 'FAIL  %-22s %s\n' "$1" "$2"; failures=$((failures + 1)); }
check() { # name, detail, condition...
  local name="$1" detail="$2"
  shift 2
  if "$@"; then pass "$name" "$detail"; else fail "$name" "$detail"; fi
}

# README's quick start: quick_start NAME VOLUME HTTP_PUBLISH S3_PUBLISH IMAGE prints its `docker run`
# arguments, one a line. README must show it with README's names (check readme-quick-start), and the
# test runs it with its own, so that the two cannot differ in anything but names and host ports.
quick_start() {
  printf '%s\n' docker run -d --name "$1" --read-only --cap-drop ALL -e AUTH_MODE=none \
    -p "$3:8080" -p "$4:9000" -v "$2:/artifacts" "$5"
}

if ! docker info >/dev/null 2>&1 && ! bash scripts/lib/docker-up.sh; then
  echo "test-image: skipped: no Docker engine could be started (scripts/lib/docker-up.sh failed)"
  exit 0
fi

SECONDS=0
IMAGE="$image" IMAGE_PUBLISHED="$published" "$script_dir/build.sh"
pass build "$image in ${SECONDS}s"

run_id="kfp-artifacts-image-test-$$"
quick="$run_id-quick"
quick_volume="$run_id-data"
anon="$run_id-anon"
host="$run_id-host"
host_dir="$(mktemp -d)"
payload="$(mktemp)"
response="$(mktemp)"
downloaded="$(mktemp)"
stop_result="$(mktemp)"
cleanup() {
  docker rm -f -v "$quick" "$anon" "$host" >/dev/null 2>&1 || true
  docker volume rm "$quick_volume" >/dev/null 2>&1 || true
  rm -rf "$host_dir" "$payload" "$response" "$downloaded" "$stop_result"
}
trap cleanup EXIT

# Started first: the image's own health check first runs one interval (10 s) after start, and this wait
# overlaps every other check.
docker volume inspect "$quick_volume" >/dev/null 2>&1 && { echo "test-image: volume $quick_volume exists"; exit 1; }
mapfile -t quick_command < <(quick_start "$quick" "$quick_volume" 127.0.0.1: 127.0.0.1: "$published")
"${quick_command[@]}" >/dev/null
quick_started=$SECONDS
docker run -d --name "$anon" "${hardened[@]}" -e AUTH_MODE=none -p 127.0.0.1::8080 -p 127.0.0.1::9000 "$image" >/dev/null

# --- Static checks ------------------------------------------------------------------------------------
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

# And the same configuration: whichever path built this image, it must be what the Dockerfile says.
config="$(docker image inspect -f '{{json .Config}}' "$image")"
in_step_ok=true
in_step="$(node "$script_dir/config-in-step.mjs" Dockerfile <<<"$config" 2>&1)" || in_step_ok=false
check config-in-step "Dockerfile = image: ${in_step//$'\n'/; }" $in_step_ok

label() { jq -r --arg key "org.opencontainers.image.$1" '.Labels[$key] // empty' <<<"$config"; }
revision="$(label revision)"
# The commit may have moved on since the build (another commit); it must be a commit of this repository.
labels_ok() {
  [[ $(label title) == kfp-artifacts && -n $(label description) && $(label licenses) == Apache-2.0 &&
    $(label version) == "$version" && $(label source) == https://* && $revision =~ ^[0-9a-f]{40}(-dirty)?$ ]] &&
    git cat-file -e "${revision%-dirty}^{commit}" 2>/dev/null
}
check labels "version $(label version), revision ${revision:-(none)}, source $(label source), licenses $(label licenses)" labels_ok

user="$(docker image inspect -f '{{.Config.User}}' "$image")"
check config-user "User=$user" test "$user" = "$NONROOT_UID:$NONROOT_UID"

size="$(docker image inspect -f '{{.Size}}' "$image")"
check size "$size bytes ($((size / 1000000)) MB, $((size / 1048576)) MiB; budget $((size_budget / 1000000)) MB)" \
  test "$size" -le "$size_budget"

# One container for what Node inside can tell. The entrypoint is node, so these arguments replace the
# server command. Distroless: nothing to exec into, so a shell in the image would be a regression.
probe="$(docker run --rm "${hardened[@]}" "$image" -p 'JSON.stringify({
  ids: process.getuid() + ":" + process.getgid(),
  shells: ["/bin/sh", "/bin/bash", "/busybox/sh", "/usr/bin/apt"].filter((p) => require("node:fs").existsSync(p)).join(" "),
  node: process.version + " " + (process.release.lts || "not-LTS"),
})')" || probe='{"ids":"(node did not run)","shells":"(node did not run)","node":"(node did not run)"}'
ids="$(jq -r .ids <<<"$probe")"
shells="$(jq -r .shells <<<"$probe")"
node_info="$(jq -r .node <<<"$probe")"
check runtime-user "uid:gid=$ids" test "$ids" = "$NONROOT_UID:$NONROOT_UID"
check no-shell "shells or package managers found: ${shells:-none}" test -z "$shells"
expected_major="v${NODE_VERSION%%.*}."
node_ok() { [[ $node_info == "$expected_major"* && $node_info != *not-LTS ]]; }
check node-lts "$node_info (expected ${expected_major}x, an LTS release)" node_ok

readme_text="$(sed -e ':join' -e '/\\$/{N;s/[[:space:]]*\\\n[[:space:]]*/ /;b join' -e '}' README.md)"
readme_command="$(quick_start kfp-artifacts kfp-artifacts-data 127.0.0.1:8080 127.0.0.1:9000 "ghcr.io/kubeflow/kfp-artifacts:$version" | paste -sd ' ')"
check readme-quick-start "README runs: $readme_command" test "${readme_text#*"$readme_command"}" != "$readme_text"

# --- Helpers for running servers ----------------------------------------------------------------------
status_of() { curl -sS --max-time 10 -o "$response" -w '%{http_code}' "$@" || echo "000"; }
port_of() { docker port "$1" "$2/tcp" | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1; }
# Waits for /healthz; false if the container stops or the timeout passes.
serving() {
  local container="$1" url="$2" waited
  for ((waited = 0; waited < start_timeout * 5; waited++)); do
    curl -fsS --max-time 2 -o /dev/null "$url/healthz" 2>/dev/null && return 0
    [[ $(docker inspect -f '{{.State.Running}}' "$container") == true ]] || return 1
    sleep 0.2
  done
  return 1
}
# Owner and bytes of a file on a container's /artifacts, as the image's own Node sees them.
stat_in() { docker exec "$1" /nodejs/bin/node -p "const s = require('node:fs').statSync('/artifacts/$2'); s.uid + ':' + s.gid" 2>/dev/null || echo missing; }

# --- No volume flag: the anonymous volume from VOLUME, hardened -----------------------------------------
anon_url="http://127.0.0.1:$(port_of "$anon" 8080)"
anon_s3="http://127.0.0.1:$(port_of "$anon" 9000)"
anon_started=false
serving "$anon" "$anon_url" && anon_started=true
anon_mount="$(docker inspect -f '{{range .Mounts}}{{.Type}}:{{.Destination}}{{end}}' "$anon")"
anon_start_ok() { $anon_started && [[ $anon_mount == volume:/artifacts ]]; }
check anon-start "no -v: $anon_mount, listening on $anon_url under ${hardened[*]}" anon_start_ok

ready_status="$(status_of "$anon_url/readyz")"
check anon-readyz "GET /readyz -> $ready_status $(head -c 200 "$response")" test "$ready_status" = 200

head -c 1048576 /dev/urandom >"$payload"
expected_sha="$(sha256sum "$payload" | cut -d' ' -f1)"
artifact="image-test/round/trip.bin" # namespace image-test (an S3 bucket of the same name), key round/trip.bin
put_status="$(status_of -X PUT --data-binary "@$payload" -H 'Content-Type: application/octet-stream' \
  "$anon_url/v1/namespaces/image-test/artifacts/round/trip.bin")"
put_sha="$(jq -r '.sha256 // empty' "$response" 2>/dev/null || true)"
put_ok() { [[ $put_status == 201 && $put_sha == "$expected_sha" ]]; }
check anon-put "PUT 1 MiB -> $put_status, sha256 ${put_sha:-(none)} $(put_ok || head -c 200 "$response")" put_ok

get_status="$(curl -sS --max-time 10 -o "$downloaded" -w '%{http_code}' "$anon_url/v1/namespaces/image-test/artifacts/round/trip.bin" || echo 000)"
get_ok() { [[ $get_status == 200 ]] && cmp -s "$payload" "$downloaded"; }
check anon-get "GET -> $get_status, $(stat -c %s "$downloaded") bytes, identical: $(get_ok && echo yes || echo no)" get_ok

s3_status="$(curl -sS --max-time 10 -o "$downloaded" -w '%{http_code}' "$anon_s3/$artifact" || echo 000)"
s3_ok() { [[ $s3_status == 200 ]] && cmp -s "$payload" "$downloaded"; }
check anon-s3 "S3 GET :9000/$artifact -> $s3_status, identical: $(s3_ok && echo yes || echo no)" s3_ok

anon_owner="$(stat_in "$anon" "$artifact")"
check anon-on-volume "/artifacts/$artifact owner $anon_owner" test "$anon_owner" = "$NONROOT_UID:$NONROOT_UID"

# Stopped in the background while the other checks run: the server waits out its shutdown delay (5 s).
(
  started_ms="$(date +%s%3N)"
  docker stop -t "$stop_grace" "$anon" >/dev/null
  echo "$(($(date +%s%3N) - started_ms))" >"$stop_result"
) &
stop_pid=$!

# --- A host directory owned by root, then chowned as the fatal line says ------------------------------
chmod 0755 "$host_dir" # as `mkdir` leaves it
host_owner="$(stat -c %u:%g "$host_dir")"
host_exit=0
host_log="$(docker run --rm "${hardened[@]}" -e AUTH_MODE=none -v "$host_dir:/artifacts" "$image" 2>&1)" || host_exit=$?
expected_fatal="ARTIFACTS_ROOT /artifacts is not writable by uid $NONROOT_UID (owned by $host_owner, mode 0755): chown it to $NONROOT_UID, use a named volume, or set fsGroup"
host_fatal="$(jq -r 'select(.level == "fatal") | .msg' <<<"$host_log" 2>/dev/null || true)"
host_refused_ok() { [[ $host_exit == 2 && $host_fatal == "$expected_fatal" && $(wc -l <<<"$host_log") == 1 ]]; }
check host-dir-refused "owner $host_owner: exit $host_exit, $host_log" host_refused_ok

# Without root, opening the directory up is the only way to let 65532 write.
if chown "$NONROOT_UID:$NONROOT_UID" "$host_dir" 2>/dev/null; then chmod 0700 "$host_dir"; else chmod 0777 "$host_dir"; fi
docker run -d --name "$host" "${hardened[@]}" -e AUTH_MODE=none -v "$host_dir:/artifacts" -p 127.0.0.1::8080 "$image" >/dev/null
host_url="http://127.0.0.1:$(port_of "$host" 8080)"
host_put="000"
serving "$host" "$host_url" && host_put="$(status_of -X PUT --data-binary 'on the host' "$host_url/v1/namespaces/image-test/artifacts/host.txt")"
stored_owner="$(stat -c '%u:%g' "$host_dir/image-test/host.txt" 2>/dev/null || echo missing)"
host_ok() { [[ $host_put == 201 && $stored_owner == "$NONROOT_UID:$NONROOT_UID" ]]; }
check host-dir-chowned "PUT -> $host_put, <host dir>/image-test/host.txt owner $stored_owner" host_ok
docker rm -f "$host" >/dev/null

# --- The default AUTH_MODE=kubernetes, outside a cluster ------------------------------------------------
cluster_exit=0
cluster_log="$(docker run --rm "$image" 2>&1)" || cluster_exit=$?
cluster_ok() { [[ $cluster_exit == 2 && $cluster_log == *'"level":"fatal"'*"for local use set AUTH_MODE=none"* ]]; }
check no-cluster "docker run IMAGE: exit $cluster_exit, $cluster_log" cluster_ok

# --- README's quick start: a new named volume, the image's own health check ---------------------------
health=starting
for ((waited = 0; waited < start_timeout * 5; waited++)); do
  health="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$quick")"
  [[ $health == starting ]] || break
  sleep 0.2
done
quick_mount="$(docker inspect -f '{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}}{{end}}' "$quick")"
check quick-healthy "${quick_command[*]}: $quick_mount, $health $((SECONDS - quick_started))s after start" \
  test "$health" = healthy

quick_url="http://127.0.0.1:$(port_of "$quick" 8080)"
quick_s3="http://127.0.0.1:$(port_of "$quick" 9000)"
quick_put="$(status_of -X PUT --data-binary 'hello' "$quick_url/v1/namespaces/team-a/artifacts/demo/hello.txt")"
quick_get="$(curl -sS --max-time 10 "$quick_s3/team-a/demo/hello.txt" 2>/dev/null || true)"
quick_owner="$(stat_in "$quick" team-a/demo/hello.txt)"
quick_ok() { [[ $quick_put == 201 && $quick_get == hello && $quick_owner == "$NONROOT_UID:$NONROOT_UID" ]]; }
check quick-round-trip "PUT :8080 -> $quick_put, S3 GET :9000 -> '$quick_get', owner on the named volume $quick_owner" quick_ok

# --- The anonymous volume's server, stopped -------------------------------------------------------------
wait "$stop_pid" || true
stop_ms="$(cat "$stop_result")"
exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$anon")"
stop_ok() { [[ $exit_code == 0 && -n $stop_ms ]] && ((stop_ms < stop_budget * 1000)); }
check anon-stop "docker stop -t $stop_grace -> exit $exit_code after ${stop_ms:-?} ms (budget ${stop_budget}s)" stop_ok
# Node prints its warnings (deprecations, experimental features) as plain text on stderr.
not_json="$(docker logs "$anon" 2>&1 | grep -cv '^{' || true)"
check anon-log "lines that are not JSON (e.g. Node warnings): $not_json" test "$not_json" = 0

if ((failures)); then
  for container in "$anon" "$quick"; do
    echo "--- $container log (last 40 lines)"
    docker logs --tail 40 "$container" 2>&1 || true
  done
  echo "test-image: $failures check(s) failed"
  exit 1
fi
echo "test-image: all checks passed ($image) in ${SECONDS}s"
