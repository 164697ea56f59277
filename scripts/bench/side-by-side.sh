#!/usr/bin/env bash
# Two builds of the server measured side by side, for one change's before and after: both servers run at
# once on their own volumes, and wrk rounds alternate between them (ABBA), so that the machine's noise,
# which on a shared VM moves a figure by a third from one minute to the next, falls on both alike.
#
#   scripts/bench/side-by-side.sh <mode> <before/server.mjs> <after/server.mjs> [rounds]
#
# mode: get      native 4 KiB GETs of one artifact (served from the small-file cache)
#       s3-get   S3 4 KiB GETs of the same artifact, SigV4-signed by botocore (python3-botocore)
#       put      native 4 KiB PUTs, every request a new key (wrk-put.lua)
#       s3-put   S3 4 KiB PUTs, every request a new key, each pre-signed by botocore before the first round
#
# AFTER_MODE gives the after server another mode, to set two paths of one build side by side: with the
# same bundle twice, `put` with AFTER_MODE=s3-put measures the S3 PUT against the native one.
#
# Settings: CONNECTIONS (32), SECONDS_PER_ROUND (3), WARM_UP_SECONDS (6), FSYNC (false), NODE (node),
# SERVER_PROCESSES (1). Each server runs with AUTH_MODE=none and a static S3 key, its output in
# $BENCH_DIR/side-by-side/ (.bench by default). Prints every round and the medians: requests per second
# and requests per CPU-second of each server (utime + stime of its process; with SERVER_PROCESSES above
# 1 that is the primary's alone, so only requests per second count then).
set -euo pipefail

mode=${1:?usage: side-by-side.sh <get|s3-get|put|s3-put> <before/server.mjs> <after/server.mjs> [rounds]}
before=${2:?the bundle before the change}
after=${3:?the bundle after the change}
rounds=${4:-8}
connections=${CONNECTIONS:-32}
seconds=${SECONDS_PER_ROUND:-3}
warm_up=${WARM_UP_SECONDS:-6}
node=${NODE:-node}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${BENCH_DIR:-$repo/.bench}/side-by-side
access_key="side-by-side-key"
secret_key="side-by-side-secret-0123456789"

after_mode=${AFTER_MODE:-$mode}
for one in "$mode" "$after_mode"; do
  case $one in get | s3-get | put | s3-put) ;; *) echo "side-by-side.sh: unknown mode '$one' (get, s3-get, put or s3-put)" >&2; exit 2 ;; esac
  if [[ $one == s3-* ]] && ! python3 -c "import botocore" 2>/dev/null; then
    echo "side-by-side.sh: $one signs with botocore, which is missing (apt-get install python3-botocore)" >&2
    exit 2
  fi
done
command -v wrk >/dev/null || { echo "side-by-side.sh: wrk is missing (apt-get install wrk)" >&2; exit 2; }
for bundle in "$before" "$after"; do [ -f "$bundle" ] || { echo "side-by-side.sh: no bundle at $bundle" >&2; exit 2; }; done

rm -rf "$work"
mkdir -p "$work"
head -c 4096 /dev/urandom >"$work/4k"
body_sha256=$(sha256sum "$work/4k" | cut -d' ' -f1)
# Signatures are valid for 15 minutes from this: a run of more than that fails its late rounds (403).
amz_date=$(date -u +%Y%m%dT%H%M%SZ)
pids=()
# The servers are not this shell's children (each starts in a command substitution): wait for each to exit.
stop_servers() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap stop_servers EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start <name> <bundle>: prints "<pid> <port> <s3 port>"
start() {
  local name=$1 bundle=$2 port s3_port
  port=$(free_port)
  s3_port=$(free_port)
  mkdir -p "$work/$name-volume"
  ARTIFACTS_ROOT="$work/$name-volume" HOST=127.0.0.1 PORT=$port S3_PORT=$s3_port AUTH_MODE=none \
    S3_ACCESS_KEY=$access_key S3_SECRET_KEY=$secret_key S3_REGION=us-east-1 FSYNC=${FSYNC:-false} \
    SERVER_PROCESSES=${SERVER_PROCESSES:-1} SHUTDOWN_DELAY_SECONDS=0 \
    "$node" --max-semi-space-size=4 "$bundle" >"$work/$name.log" 2>&1 &
  echo "$! $port $s3_port"
}

read -r before_pid before_port before_s3 < <(start before "$before")
pids+=("$before_pid")
read -r after_pid after_port after_s3 < <(start after "$after")
pids+=("$after_pid")
for port in "$before_port" "$after_port"; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "side-by-side.sh: a server did not start; see $work/*.log" >&2; exit 1; }
  status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$work/4k" "http://127.0.0.1:$port/v1/namespaces/team-a/artifacts/small.bin")
  case $status in 200 | 201) ;; *) echo "side-by-side.sh: storing the 4 KiB artifact answered $status" >&2; exit 1 ;; esac
done

# Botocore's signature of a GET of the artifact, as header lines (valid for 15 minutes).
signed_headers() {
  python3 - "$1" "$access_key" "$secret_key" <<'PY'
import sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, key, secret = sys.argv[1:4]
request = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
SigV4Auth(Credentials(key, secret), "s3", "us-east-1").add_auth(request)
for name in ("Authorization", "X-Amz-Date", "x-amz-content-sha256"):
    print(f"{name}: {request.headers[name]}")
PY
}

# The signed PUTs of one round, as wrk-put.lua reads them: "<path> <Authorization value>" per line,
# <count> new keys below <label>-, all signed at one x-amz-date (AMZ_DATE), with the body's SHA-256.
signed_puts() {
  AMZ_DATE=$amz_date python3 - "$1" "$2" "$3" "$access_key" "$secret_key" "$body_sha256" <<'PY'
import datetime, os, sys
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
port, label, count, key, secret, sha256 = sys.argv[1:7]
fixed = datetime.datetime.strptime(os.environ["AMZ_DATE"], "%Y%m%dT%H%M%SZ")
# One x-amz-date for every line: wrk-put.lua sends the same extra headers with every request.
botocore.auth.get_current_datetime = lambda: fixed
signer = SigV4Auth(Credentials(key, secret), "s3", "us-east-1")
for n in range(int(count)):
    path = f"/team-a/{label}-{n}"
    request = AWSRequest(method="PUT", url=f"http://127.0.0.1:{port}{path}", headers={"x-amz-content-sha256": sha256})
    signer.add_auth(request)
    assert request.headers["X-Amz-Date"] == os.environ["AMZ_DATE"]
    print(path, request.headers["Authorization"])
PY
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# round <side> <seconds> <label>: prints "<requests/s> <requests per CPU-second>"
round() {
  local side=$1 length=$2 label=$3 pid port s3_port url output requests ticks_before ticks_after
  local args=(-t1 "-c$connections" "-d${length}s")
  if [ "$side" = before ]; then pid=$before_pid port=$before_port s3_port=$before_s3; else pid=$after_pid port=$after_port s3_port=$after_s3; fi
  local mode=$mode
  if [ "$side" = after ]; then mode=$after_mode; fi
  case $mode in
    get) url=http://127.0.0.1:$port/v1/namespaces/team-a/artifacts/small.bin ;;
    s3-get)
      url=http://127.0.0.1:$s3_port/team-a/small.bin
      while IFS= read -r header; do args+=(-H "$header"); done < <(signed_headers "$url")
      ;;
    put)
      url=http://127.0.0.1:$port/
      args+=(-s "$repo/scripts/bench/wrk-put.lua")
      ;;
    s3-put)
      url=http://127.0.0.1:$s3_port/
      args+=(-s "$repo/scripts/bench/wrk-put.lua")
      ;;
  esac
  ticks_before=$(cpu_ticks "$pid")
  if [ "$mode" = put ]; then
    output=$(wrk "${args[@]}" "$url" -- "$work/4k" 1 "/v1/namespaces/team-a/artifacts/$label-")
  elif [ "$mode" = s3-put ]; then
    output=$(wrk "${args[@]}" "$url" -- "$work/4k" 1 "@$work/$side-$label.requests" "x-amz-date: $amz_date" "x-amz-content-sha256: $body_sha256")
    rm -f "$work/$side-$label.requests"
    if grep -q "bench-keys used=[0-9]* reused=[1-9]" <<<"$output"; then
      echo "side-by-side.sh: a round sent more PUTs than it had keys for; raise keys_per_second" >&2
      exit 1
    fi
  else
    output=$(wrk "${args[@]}" "$url")
  fi
  ticks_after=$(cpu_ticks "$pid")
  if grep -q "Non-2xx\|Socket errors" <<<"$output"; then
    echo "side-by-side.sh: wrk saw errors against the $side server:" >&2
    echo "$output" >&2
    exit 1
  fi
  requests=$(awk '/requests in/ {print $1}' <<<"$output")
  awk -v rps="$(awk '/Requests\/sec/ {print $2}' <<<"$output")" -v n="$requests" -v ticks="$((ticks_after - ticks_before))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.0f %.0f\n", rps, (ticks > 0 ? n * hz / ticks : 0)}'
}

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Every round's S3 PUTs are signed before the first round: signed between rounds, they left a core idle
# just before each S3 round, and a run that follows idle time on a small VM starts slow for seconds.
# More keys than a round can use (wrk-put.lua reports any it had to send twice).
keys_per_second=$((connections == 1 ? 2000 : 5000))
for side in before after; do
  if [ "$side" = before ]; then side_mode=$mode s3_port=$before_s3; else side_mode=$after_mode s3_port=$after_s3; fi
  [ "$side_mode" = s3-put ] || continue
  signed_puts "$s3_port" warm $((warm_up * keys_per_second)) >"$work/$side-warm.requests"
  for r in $(seq "$rounds"); do
    signed_puts "$s3_port" "r$r" $((seconds * keys_per_second)) >"$work/$side-r$r.requests"
  done
done

echo "side-by-side.sh: $mode${AFTER_MODE:+ against $after_mode}, $rounds rounds of ${seconds} s, wrk -c$connections, after ${warm_up} s of warm-up each" >&2
round before "$warm_up" warm >/dev/null
round after "$warm_up" warm >/dev/null
before_rps=() after_rps=() before_cpu=() after_cpu=()
for r in $(seq "$rounds"); do
  if ((r % 2)); then order="before after"; else order="after before"; fi
  for side in $order; do
    read -r rps per_cpu < <(round "$side" "$seconds" "r$r")
    if [ "$side" = before ]; then before_rps+=("$rps") before_cpu+=("$per_cpu"); else after_rps+=("$rps") after_cpu+=("$per_cpu"); fi
    echo "  round $r, $side: $rps req/s, $per_cpu per CPU-second" >&2
  done
done
echo "before: $(median "${before_rps[@]}") req/s, $(median "${before_cpu[@]}") requests per CPU-second (medians)"
echo "after:  $(median "${after_rps[@]}") req/s, $(median "${after_cpu[@]}") requests per CPU-second"
ahead=0
for i in "${!before_rps[@]}"; do ((after_rps[i] > before_rps[i])) && ahead=$((ahead + 1)); done
echo "after ahead in $ahead of $rounds rounds"
