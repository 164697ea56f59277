#!/usr/bin/env bash
# Creates the kind cluster from e2e/kind/cluster.yaml with the given node image, unless a cluster of
# that name already runs on that image. Writes the kubeconfig to $KUBECONFIG_PATH.
#   create-cluster.sh <node image>
source "$(dirname "$0")/lib.sh"
node_image="${1:?usage: create-cluster.sh <node image>}"

mkdir -p "$E2E_SHARED_DIR" "$(dirname "$KUBECONFIG_PATH")"
chmod 0777 "$E2E_SHARED_DIR"

if "$KIND_BIN" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  running_image="$(docker inspect -f '{{.Config.Image}}' "$CLUSTER_NAME-control-plane" 2>/dev/null || true)"
  if [[ $running_image == "$node_image" ]]; then
    log "cluster $CLUSTER_NAME already runs $node_image"
    "$KIND_BIN" get kubeconfig --name "$CLUSTER_NAME" >"$KUBECONFIG_PATH"
    "$KIND_BIN" export kubeconfig --name "$CLUSTER_NAME"
    exit 0
  fi
  log "cluster $CLUSTER_NAME runs ${running_image:-an unknown image}, not $node_image: recreating it"
  "$KIND_BIN" delete cluster --name "$CLUSTER_NAME"
fi

config="$(dirname "$KUBECONFIG_PATH")/kind-config.yaml"
sed "s#hostPath: KFP_E2E_SHARED_DIR#hostPath: $E2E_SHARED_DIR#" "$KIND_CONFIG" >"$config"
"$KIND_BIN" create cluster --name "$CLUSTER_NAME" --image "$node_image" --config "$config" \
  --kubeconfig "$KUBECONFIG_PATH" --retain --wait 0s
# Also the default kubeconfig (context kind-$CLUSTER_NAME), as plain `kind create cluster` would do.
"$KIND_BIN" export kubeconfig --name "$CLUSTER_NAME"
