#!/usr/bin/env bash
# Lints .github/workflows with actionlint, built once from its Go module into the cache (the Go module
# proxy is the one place every machine of the project reaches). The workflows cannot run here; this
# catches what would break them on GitHub: bad expressions, unknown inputs, wrong `needs`, shell errors
# (through shellcheck, when it is installed).
set -euo pipefail

readonly ACTIONLINT_MODULE="github.com/rhysd/actionlint/cmd/actionlint"
readonly ACTIONLINT_VERSION="v1.7.12"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${KFP_ARTIFACTS_CACHE:-$HOME/.cache/kfp-artifacts}/tools/actionlint/${ACTIONLINT_VERSION}"
actionlint="${bin_dir}/actionlint"

if [[ ! -x ${actionlint} ]]; then
  if ! command -v go >/dev/null; then
    # Only a machine without Go skips; CI has Go, so the workflows are always linted there.
    echo "actionlint: skipped, Go is not on PATH (it builds ${ACTIONLINT_MODULE}@${ACTIONLINT_VERSION}); install Go to lint .github/workflows" >&2
    exit 0
  fi
  mkdir -p "${bin_dir}"
  echo "actionlint: building ${ACTIONLINT_MODULE}@${ACTIONLINT_VERSION} into ${bin_dir}" >&2
  # Static, reproducible, no toolchain download, two compile jobs at most (shared machines).
  CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local GOBIN="${bin_dir}" \
    go install -p "${KFP_BUILD_PARALLELISM:-2}" "${ACTIONLINT_MODULE}@${ACTIONLINT_VERSION}"
fi

cd "${repo_root}"
"${actionlint}" -version | head -n 1 >&2
exec "${actionlint}" "$@"
