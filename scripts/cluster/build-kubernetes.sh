#!/usr/bin/env bash
# Builds kubeadm, kubelet, kubectl and the control-plane/kube-proxy binaries of $K8S_VERSION from the
# k8s.io/kubernetes Go module. That module replaces its staging modules (k8s.io/api, client-go, ...) with
# relative paths, which Go ignores in a dependency, so a small wrapper module repeats those replaces
# pointing at the published v0.x staging versions. Output: $K8S_BIN/<binary>. Skips what already exists.
source "$(dirname "$0")/lib.sh"

BINARIES=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)

missing=0
for b in "${BINARIES[@]}"; do [[ -x "$K8S_BIN/$b" ]] || missing=1; done
if [[ $missing == 0 ]]; then log "kubernetes $K8S_VERSION binaries cached in $K8S_BIN"; exit 0; fi

go_build_env
wrapper="$K8S_DIR/wrapper"
mkdir -p "$wrapper" "$K8S_BIN"

if [[ ! -f "$wrapper/go.sum" ]]; then
  go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >"$wrapper/download.json"
  upstream_mod="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' "$wrapper/download.json")"
  [[ -f "$upstream_mod" ]] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION"
  {
    echo "module kfp-artifacts.local/kubernetes-build"
    echo
    echo "go 1.24.0"
    echo
    echo "godebug default=go1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # Every "k8s.io/x => ./staging/src/k8s.io/x" upstream becomes "k8s.io/x => k8s.io/x v0.34.N".
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#\t\1 => \1 '"$K8S_STAGING_VERSION"'#p' "$upstream_mod"
    echo ")"
  } >"$wrapper/go.mod"
  # Blank imports of the commands so `go mod tidy` records every dependency they need.
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for b in "${BINARIES[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
    echo ")"
  } >"$wrapper/tools.go"
  (cd "$wrapper" && go mod tidy)
fi

# kubeadm compares its own version with the cluster's, so the binaries must carry the real version.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.info")"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=$build_date"
done

pkgs=()
for b in "${BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
# One go build for all commands compiles the shared packages once; -p bounds parallelism (shared machine).
(cd "$wrapper" && go build -p "${KFP_BUILD_PARALLELISM:-2}" -ldflags "$ldflags" -o "$K8S_BIN/" "${pkgs[@]}")
"$K8S_BIN/kubeadm" version -o short
