#!/usr/bin/env bash
# Prints "online" when the pinned kindest/node image is present or its registry answers, else "offline".
# KFP_CLUSTER_PATH=online|offline forces a path. The probe is bounded so offline machines decide fast.
source "$(dirname "$0")/lib.sh"
case "${KFP_CLUSTER_PATH:-auto}" in
  online | offline) echo "$KFP_CLUSTER_PATH"; exit 0 ;;
  auto) ;;
  *) die "KFP_CLUSTER_PATH must be online, offline or auto (got ${KFP_CLUSTER_PATH})" ;;
esac
if docker image inspect "$KIND_ONLINE_NODE_IMAGE" >/dev/null 2>&1 ||
  timeout "${KFP_REGISTRY_PROBE_TIMEOUT:-10}" docker manifest inspect "$KIND_ONLINE_NODE_IMAGE" >/dev/null 2>&1; then
  echo online
else
  echo offline
fi
