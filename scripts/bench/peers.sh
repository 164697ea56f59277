#!/usr/bin/env bash
# Builds the benchmark's S3 peers, MinIO and SeaweedFS, from the Go module proxy at pinned versions,
# into $BENCH_PEERS_DIR (default ~/.cache/peers), unless a binary of that version is already there.
# Needs Go. Prints nothing on success but what go prints; exits non-zero when a peer cannot be built.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
dir=${BENCH_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/peers}
mkdir -p "$dir"

command -v go >/dev/null || { echo "bench: could not measure: Go is needed to build MinIO and SeaweedFS (or set BENCH_PEERS_DIR to a directory with minio and weed)" >&2; exit 1; }

# built_at binary module version: true when the binary was built from that module version (by go
# install, which records it, or by this script, which writes it beside the binary).
built_at() {
  [[ -x $1 ]] || return 1
  [[ -f $1.version && $(cat "$1.version") == "$2@$3" ]] && return 0
  go version -m "$1" 2>/dev/null | awk -v m="$2" -v v="$3" '$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

if ! built_at "$dir/minio" github.com/minio/minio "$MINIO_VERSION"; then
  echo "bench: building MinIO $MINIO_VERSION into $dir (a few minutes the first time)" >&2
  GOBIN=$dir GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION" >&2
  echo "github.com/minio/minio@$MINIO_VERSION" >"$dir/minio.version"
fi

if ! built_at "$dir/weed" github.com/seaweedfs/seaweedfs "$SEAWEEDFS_VERSION"; then
  echo "bench: building SeaweedFS $SEAWEEDFS_VERSION into $dir (a few minutes the first time)" >&2
  # Its go.mod has replace directives, which `go install module@version` refuses: build in a copy.
  module=$(GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $module ]] || { echo "bench: could not measure: SeaweedFS $SEAWEEDFS_VERSION could not be downloaded" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp -r "$module/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && GOFLAGS=-buildvcs=false go build -o "$dir/weed" ./weed) >&2
  echo "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" >"$dir/weed.version"
fi
