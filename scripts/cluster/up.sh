#!/usr/bin/env bash
# `make cluster`: a verified 3-node kind cluster (1 control plane, 2 workers) named $CLUSTER_NAME.
# Online (the pinned kindest/node is reachable): stock kind + kindest/node, nothing built.
# Offline (no container registry): everything kind needs is built from Go modules and Debian packages,
# cached under $CACHE_ROOT and in Docker's image store, keyed by version; existing outputs are reused.
# Each step logs to $LOG_DIR/<step>.log; a failure prints one line naming the step and its log.
set -euo pipefail
scripts_dir="$(cd "$(dirname "$0")" && pwd)"
repo_root="$(cd "$scripts_dir/../.." && pwd)"
log_dir="${KFP_CLUSTER_LOG_DIR:-${KFP_ARTIFACTS_CACHE:-$HOME/.cache/kfp-artifacts}/cluster/logs}"
mkdir -p "$log_dir"
started=$SECONDS

run_step() { # <name> <command...>: stdout+stderr go to the step's log; the step's stdout is also kept
  local name="$1" step_started=$SECONDS
  shift
  printf 'cluster: %-14s ...' "$name" >&2
  if "$@" >"$log_dir/$name.log" 2>&1; then
    printf ' done (%ds, total %ds)\n' $((SECONDS - step_started)) $((SECONDS - started)) >&2
  else
    printf ' FAILED (%ds)\n' $((SECONDS - step_started)) >&2
    local reason
    reason="$(grep -v '^[[:space:]]*$' "$log_dir/$name.log" | tail -1 | cut -c1-200)"
    echo "cluster: step $name failed — see $log_dir/$name.log${reason:+ (last line: $reason)}" >&2
    exit 1
  fi
}

run_step docker bash "$repo_root/scripts/lib/docker-up.sh"
run_step kind bash "$scripts_dir/install-kind.sh"
run_step path bash "$scripts_dir/choose-path.sh"
path="$(tail -1 "$log_dir/path.log")"
# shellcheck source=lib.sh
source "$scripts_dir/lib.sh"
mkdir -p "$(dirname "$PATH_MARKER")"
echo "cluster: path $path" >&2

if [[ $path == online ]]; then
  node_image="$KIND_ONLINE_NODE_IMAGE"
else
  run_step kubernetes bash "$scripts_dir/build-kubernetes.sh"
  run_step addons bash "$scripts_dir/build-addons.sh"
  run_step rootfs bash "$scripts_dir/build-rootfs.sh"
  run_step images bash "$scripts_dir/build-images.sh"
  run_step node-image bash "$scripts_dir/build-node-image.sh"
  # Image keys hash the build scripts: recompute, in case they changed while this run was building.
  # shellcheck source=lib.sh
  source "$scripts_dir/lib.sh"
  node_image="$NODE_IMAGE"
fi
echo "$path" >"$PATH_MARKER"
run_step create bash "$scripts_dir/create-cluster.sh" "$node_image"
if [[ $path == offline ]]; then run_step network bash "$scripts_dir/network-static-routes.sh"; fi
run_step verify bash "$scripts_dir/verify.sh"

echo "cluster: $CLUSTER_NAME ready in $((SECONDS - started))s ($path path, image $node_image)" >&2
echo "cluster: export KUBECONFIG=$KUBECONFIG_PATH; shared host dir $E2E_SHARED_DIR is /var/kfp-artifacts-shared on every node" >&2
