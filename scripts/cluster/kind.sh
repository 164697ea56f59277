#!/usr/bin/env bash
# The project's kind (v0.30.0, cached), for the e2e suites and people:
#   bash scripts/cluster/kind.sh load docker-image --name kfp-artifacts my/image:1.0
source "$(dirname "$0")/lib.sh"
[[ -x $KIND_BIN ]] || bash "$CLUSTER_SCRIPTS_DIR/install-kind.sh" >&2
exec "$KIND_BIN" "$@"
