#!/usr/bin/env bash
# Installs kind $KIND_VERSION from its Go module into the cache (both paths use it). `go install` also
# leaves the module source in GOMODCACHE, where the offline path finds kind's node base files.
source "$(dirname "$0")/lib.sh"
if [[ -x $KIND_BIN && -d $KIND_MODULE_DIR ]]; then log "kind cached at $KIND_BIN"; exit 0; fi
go_build_env
mkdir -p "$(dirname "$KIND_BIN")"
GOBIN="$(dirname "$KIND_BIN")" go install -p "${KFP_BUILD_PARALLELISM:-2}" "sigs.k8s.io/kind@$KIND_VERSION"
"$KIND_BIN" version
