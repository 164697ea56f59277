#!/usr/bin/env bash
# `make bench`: installs the baselines' tools from Debian when missing (idempotent), builds the S3 peers
# (scripts/bench/peers.sh), bundles the driver with esbuild (tsx is not a dependency) and runs it. The
# table goes to stdout and $BENCH_DIR/results.md.
# Exits non-zero only when it could not measure.
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCH_DIR=${BENCH_DIR:-$PWD/.bench}
export BENCH_DIR

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]} from Debian" >&2
  sudo_cmd=()
  [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    "${sudo_cmd[@]}" apt-get update >&2 && "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2 || {
      echo "bench: could not measure: ${missing[*]} could not be installed" >&2
      exit 1
    }
  fi
fi
if ! nginx -V 2>&1 | grep -q -- --with-http_dav_module; then
  echo "bench: could not measure: this nginx has no WebDAV module (http_dav_module)" >&2
  exit 1
fi
# Debian's package starts a system nginx on port 80; the benchmark runs its own on a free loopback port
# and never touches that one.

# The S3 rows run MinIO and SeaweedFS beside the server: built from the Go module proxy when missing.
if [[ -z ${BENCH_ONLY:-} || ,${BENCH_ONLY// /}, == *,s3* ]]; then
  scripts/bench/peers.sh
fi

mkdir -p "$BENCH_DIR"
node_modules/.bin/esbuild scripts/bench/driver.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$BENCH_DIR/driver.mjs" --log-level=warning
exec node "$BENCH_DIR/driver.mjs"
