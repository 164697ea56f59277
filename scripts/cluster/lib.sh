# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are used by the scripts that source this file
# Shared by scripts/cluster/*.sh: versions, cache locations, image names and their cache keys, logging.
set -euo pipefail

CLUSTER_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_SCRIPTS_DIR/../.." && pwd)"
# shellcheck source=versions.sh
source "$CLUSTER_SCRIPTS_DIR/versions.sh"

# Big, slow-to-rebuild things live outside the repo so a fresh clone (CI, new session) reuses them.
CACHE_ROOT="${KFP_ARTIFACTS_CACHE:-$HOME/.cache/kfp-artifacts}/cluster"
LOG_DIR="${KFP_CLUSTER_LOG_DIR:-$CACHE_ROOT/logs}"
KIND_BIN="$CACHE_ROOT/kind/$KIND_VERSION/kind"
K8S_DIR="$CACHE_ROOT/kubernetes/$K8S_VERSION"
K8S_BIN="$K8S_DIR/bin"
ADDONS_BIN="$CACHE_ROOT/addons/bin"
IMAGES_DIR="$CACHE_ROOT/images/$K8S_VERSION"

CLUSTER_NAME="${KFP_CLUSTER_NAME:-kfp-artifacts}"
KIND_CONFIG="$REPO_ROOT/e2e/kind/cluster.yaml"
E2E_SHARED_DIR="${KFP_E2E_SHARED_DIR:-/tmp/kfp-artifacts-e2e-shared}"
# Written by create-cluster.sh; the e2e suites and `kubectl --kubeconfig` use it.
KUBECONFIG_PATH="${KFP_KUBECONFIG:-$REPO_ROOT/.cache/cluster/kubeconfig}"
# Which path made the cluster (online|offline), so verification knows which kubectl it may use.
PATH_MARKER="$REPO_ROOT/.cache/cluster/$CLUSTER_NAME.path"

mkdir -p "$LOG_DIR"

log() { printf '%s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Every go command the scripts run: static, reproducible binaries, no surprise toolchain download.
go_build_env() {
  export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local
}

hash_of() { # <strings or files...> -> 12 hex digits; files contribute their content
  local item
  for item in "$@"; do
    if [[ -f $item ]]; then cat "$item"; else printf '%s\n' "$item"; fi
  done | sha256sum | cut -c1-12
}

# --- offline path: what is built, and the keys that decide when to rebuild it ---

# Node root filesystem: Debian packages standing in for what kindest/base builds from source.
DEBIAN_SUITE=bookworm
NODE_PACKAGES=(
  systemd systemd-sysv dbus containerd runc containernetworking-plugins
  conntrack iptables nftables iproute2 ethtool util-linux mount kmod libseccomp2 pigz
  bash ca-certificates jq procps busybox-static
)
ROOTFS_KEY="$(hash_of "$DEBIAN_SUITE" "${NODE_PACKAGES[@]}" "$CLUSTER_SCRIPTS_DIR/build-rootfs.sh")"
ROOTFS_IMAGE="kfp-artifacts-kind-rootfs:$DEBIAN_SUITE-$ROOTFS_KEY"

# Images that only exist locally carry a registry-looking prefix no registry answers to.
LOCAL_IMAGE_PREFIX=kfp-artifacts.local
LOCAL_PATH_PROVISIONER_IMAGE="$LOCAL_IMAGE_PREFIX/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION"
BUSYBOX_IMAGE="$LOCAL_IMAGE_PREFIX/busybox:1.35.0"

IMAGES_KEY="$(hash_of "$ROOTFS_KEY" "$CLUSTER_SCRIPTS_DIR/versions.sh" "$CLUSTER_SCRIPTS_DIR/build-images.sh" \
  "$CLUSTER_SCRIPTS_DIR/files/kube-proxy-iptables-select.sh" "$CLUSTER_SCRIPTS_DIR/pause/main.go")"
COMPONENT_IMAGES_TAR="$IMAGES_DIR/components-$IMAGES_KEY.tar"

KIND_MODULE_DIR="$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/sigs.k8s.io/kind@$KIND_VERSION"
NODE_KEY="$(hash_of "$IMAGES_KEY" "$CLUSTER_SCRIPTS_DIR/build-node-image.sh" \
  "$CLUSTER_SCRIPTS_DIR/files/default-cni.yaml" /usr/local/bin/runc-nosysresource)"
NODE_IMAGE="kfp-artifacts-kind-node:$K8S_VERSION-$NODE_KEY"

# kubectl for the scripts: ours (built with the offline path) when present, else the project's pinned
# kubectl in bin/ (scripts/tools/fetch-helm-kubectl.sh owns that one; we only call it).
kubectl_binary() {
  if [[ -x "$K8S_BIN/kubectl" ]]; then echo "$K8S_BIN/kubectl"; return 0; fi
  bash "$REPO_ROOT/scripts/tools/fetch-helm-kubectl.sh" >&2
  echo "$REPO_ROOT/bin/kubectl"
}
