#!/usr/bin/env bash
# `make cluster-down`: deletes the kind cluster. Caches (Go builds, binaries, images) are kept.
source "$(dirname "$0")/lib.sh"
if [[ ! -x $KIND_BIN ]]; then log "cluster: kind not installed, nothing to delete"; exit 0; fi
if ! docker info >/dev/null 2>&1; then log "cluster: no Docker engine, nothing to delete"; exit 0; fi
"$KIND_BIN" delete cluster --name "$CLUSTER_NAME"
rm -f "$KUBECONFIG_PATH" "$PATH_MARKER"
