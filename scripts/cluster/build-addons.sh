#!/usr/bin/env bash
# Builds the non-Kubernetes binaries a kubeadm cluster runs as images: etcd, CoreDNS, pause (ours),
# and local-path-provisioner (kind's default StorageClass). Output: $ADDONS_BIN/<binary>. Skips what exists.
source "$(dirname "$0")/lib.sh"
go_build_env
mkdir -p "$ADDONS_BIN"
parallelism="${KFP_BUILD_PARALLELISM:-2}"

# etcd's main module uses relative replace directives, so build etcdmain through a wrapper module.
if [[ ! -x "$ADDONS_BIN/etcd" ]]; then
  wrapper="$CACHE_ROOT/addons/etcd-$ETCD_VERSION-wrapper"
  mkdir -p "$wrapper"
  cat >"$wrapper/go.mod" <<GOMOD
module kfp-artifacts.local/etcd-build

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat >"$wrapper/main.go" <<'GO'
// Command etcd is etcd's own entry point (go.etcd.io/etcd/v3's main.go calls the same function).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$wrapper" && go mod tidy && go build -p "$parallelism" -ldflags "-s -w" -o "$ADDONS_BIN/etcd" .)
fi
"$ADDONS_BIN/etcd" --version | sed -n 1p # sed reads all of it: no SIGPIPE under pipefail

install_tool() { # <binary name> <module path>@<version>
  [[ -x "$ADDONS_BIN/$1" ]] && return 0
  GOBIN="$ADDONS_BIN" go install -p "$parallelism" -ldflags "-s -w" "$2"
}
install_tool coredns "github.com/coredns/coredns@$COREDNS_VERSION"
install_tool local-path-provisioner "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"

if [[ ! -x "$ADDONS_BIN/pause" ]]; then
  (cd "$CLUSTER_SCRIPTS_DIR/pause" && go build -ldflags "-s -w" -o "$ADDONS_BIN/pause" .)
fi
ls -la "$ADDONS_BIN"
