#!/usr/bin/env bash
# `make e2e`: the cluster (unless SKIP_CLUSTER_CREATION=1), the image, the image loaded into every kind
# node, then the suites one after the other and a summary naming each suite and its result.
# Environment: SKIP_CLUSTER_CREATION=1 (reuse the running cluster), SKIP_IMAGE_BUILD=1 (load what is
# built), E2E_SUITES="daemonset security" (a subset), IMAGE_PUBLISHED (the tag the manifests use).
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo_root"
started=$SECONDS

step() { printf 'e2e: %s (at %ds)\n' "$*" $((SECONDS - started)) >&2; }
die() { printf 'e2e: %s\n' "$*" >&2; exit 1; }

cluster_name="${KFP_CLUSTER_NAME:-kfp-artifacts}"
export KFP_KUBECONFIG="${KFP_KUBECONFIG:-$repo_root/.cache/cluster/kubeconfig}"
image="${IMAGE_PUBLISHED:?IMAGE_PUBLISHED is set by make (mk/image.mk)}"

if [[ ${SKIP_CLUSTER_CREATION:-} == 1 ]]; then
  step "SKIP_CLUSTER_CREATION=1: using the running cluster $cluster_name"
else
  step "make cluster"
  make --no-print-directory cluster
fi
[[ -f $KFP_KUBECONFIG ]] || die "no kubeconfig at $KFP_KUBECONFIG: run make cluster (or set KFP_KUBECONFIG)"
bin/kubectl --kubeconfig "$KFP_KUBECONFIG" get nodes >/dev/null 2>&1 ||
  die "the cluster behind $KFP_KUBECONFIG does not answer: run make cluster"

if [[ ${SKIP_IMAGE_BUILD:-} == 1 ]]; then
  step "SKIP_IMAGE_BUILD=1: loading the image already built"
else
  step "make image"
  make --no-print-directory image
fi
step "kind load docker-image $image"
# The project's pinned kind (scripts/cluster/kind.sh). It skips nodes that already hold this image ID,
# so a warm rerun costs a second or two.
bash scripts/cluster/kind.sh load docker-image --name "$cluster_name" "$image"

mkdir -p .cache/e2e
report=.cache/e2e/vitest-report.json
rm -rf "$report" .cache/e2e/timings
read -r -a suites <<<"${E2E_SUITES:-}"
filters=()
for suite in "${suites[@]}"; do filters+=("e2e/suites/$suite.test.ts"); done
step "suites: ${E2E_SUITES:-all}"
status=0
npx vitest run --config e2e/vitest.config.ts --reporter=verbose --reporter=json --outputFile.json="$report" "${filters[@]}" || status=$?
if ! node e2e/summary.mjs "$report" $((SECONDS - started)); then [[ $status != 0 ]] || status=1; fi
exit "$status"
