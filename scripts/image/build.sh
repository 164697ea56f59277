#!/usr/bin/env bash
# Builds the server image and tags it twice: $IMAGE (local name) and $IMAGE_PUBLISHED (the name the
# chart and kustomize refer to). Called by `make image` after `make build`.
#
# Two ways to the same image:
#   dockerfile  `docker build` with ./Dockerfile (needs the base images from a registry)
#   offline     a distroless-equivalent base assembled from npm + Debian packages
#               (assemble-rootfs.sh, `docker import`), plus one layer with the bundles (`docker commit`)
# IMAGE_BUILD=auto (default) pulls the distroless base with a short timeout and picks dockerfile when
# that works, offline when it does not; IMAGE_BUILD=offline|dockerfile forces one.
#
# Environment: IMAGE (default kfp-artifacts:<version>), IMAGE_PUBLISHED (default
# ghcr.io/kubeflow/kfp-artifacts:<version>), IMAGE_BUILD, IMAGE_PROBE_TIMEOUT (seconds, default 20),
# IMAGE_BUILD_BASE / IMAGE_RUNTIME_BASE (the Dockerfile's bases, e.g. a mirror or a tag@digest;
# defaults in versions.sh), IMAGE_SOURCE (the org.opencontainers.image.source label).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
# shellcheck source=scripts/image/versions.sh
source "$script_dir/versions.sh"
cd "$repo_root"

say() { printf 'image: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

version="$(node -p 'require("./package.json").version')"
image="${IMAGE:-kfp-artifacts:$version}"
published="${IMAGE_PUBLISHED:-ghcr.io/kubeflow/kfp-artifacts:$version}"
mode="${IMAGE_BUILD:-auto}"
probe_timeout="${IMAGE_PROBE_TIMEOUT:-20}"
build_base="${IMAGE_BUILD_BASE:-$NODE_BUILD_IMAGE}"
runtime_base="${IMAGE_RUNTIME_BASE:-$DISTROLESS_BASE}"
# The server bundle and the upload worker it starts from the file next to it, each with its source map,
# and the manager's bundle (without its map: the manager is small, and the image's size budget is not).
app_files=(server/dist/server.mjs server/dist/server.mjs.map server/dist/upload-worker.mjs server/dist/upload-worker.mjs.map server/dist/manager.mjs)

for name in "$image" "$published"; do
  [[ $name == *:* && $name != *:latest ]] || die "image name '$name' needs an explicit tag other than latest"
done
case "$mode" in auto | offline | dockerfile) ;; *) die "IMAGE_BUILD must be auto, offline or dockerfile, not '$mode'" ;; esac

if ! docker info >/dev/null 2>&1; then
  bash scripts/lib/docker-up.sh || die "no Docker engine could be started (scripts/lib/docker-up.sh failed)"
fi

# True when the image is here already or can be pulled within the probe timeout.
available() {
  docker image inspect "$1" >/dev/null 2>&1 || timeout "$probe_timeout" docker pull --quiet "$1" >/dev/null 2>&1
}
if [[ $mode == auto ]]; then
  mode=dockerfile
  for base in "$runtime_base" "$build_base"; do
    if ! available "$base"; then
      mode=offline
      say "cannot pull $base (no registry within ${probe_timeout}s): building offline"
      break
    fi
  done
fi

source_url="${IMAGE_SOURCE:-https://github.com/kubeflow/pipelines}"
# The commit the image is built from; "-dirty" when what goes into it differs from that commit.
revision="$(git rev-parse HEAD 2>/dev/null || true)"
if [[ -n $revision && -n $(git status --porcelain -- Dockerfile package.json package-lock.json tsconfig.json \
  scripts/build.mjs scripts/image server/src 2>/dev/null) ]]; then
  revision="$revision-dirty"
fi
labels=(
  "org.opencontainers.image.title=kfp-artifacts"
  "org.opencontainers.image.description=Filesystem artifact store for Kubeflow Pipelines"
  "org.opencontainers.image.licenses=Apache-2.0"
  "org.opencontainers.image.version=$version"
  "org.opencontainers.image.revision=$revision"
  "org.opencontainers.image.source=$source_url"
)

# No shell in the image: Node's own fetch asks /healthz. The Dockerfile spells the same instruction.
# (No --start-interval: Docker engines before 25 refuse the flag, in a Dockerfile and here.)
healthcheck="--interval=10s --timeout=3s --start-period=10s --retries=3 CMD [\"/nodejs/bin/node\", \"-e\", \"fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))\"]"

build_with_dockerfile() {
  say "docker build ($image)"
  # The classic builder (no buildx) leaves BUILDPLATFORM, which the Dockerfile's build stage names, unset.
  local engine_platform
  engine_platform="$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}')"
  docker build --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url" \
    --build-arg "NODE_VERSION=$NODE_VERSION" --build-arg "BUILDPLATFORM=$engine_platform" \
    --build-arg "BUILD_IMAGE=$build_base" --build-arg "RUNTIME_IMAGE=$runtime_base" -t "$image" .
}

build_offline() {
  for file in "${app_files[@]}"; do
    [[ -s $file ]] || die "$file is missing: run 'make build' first"
  done

  # Base: the assembled root filesystem, with the distroless nonroot image's configuration.
  local tarball base_tag
  tarball="$("$script_dir/assemble-rootfs.sh")"
  base_tag="kfp-artifacts-base:$(basename "$tarball" .tar | sed 's/^rootfs-//')"
  if ! docker image inspect "$base_tag" >/dev/null 2>&1; then
    say "docker import $tarball as $base_tag"
    docker import \
      --change "USER $NONROOT_UID" \
      --change "WORKDIR /home/nonroot" \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
      --change 'ENTRYPOINT ["/nodejs/bin/node"]' \
      "$tarball" "$base_tag" >/dev/null
    # Bases of earlier inputs are dead weight now (kept if a container still uses them).
    docker image ls --format '{{.Repository}}:{{.Tag}}' kfp-artifacts-base | grep -vxF "$base_tag" |
      xargs -r docker image rm >/dev/null 2>&1 || true
  fi

  # App layer. Skipped when the image already holds exactly this bundle on exactly this base.
  local base_id build_key current_key
  base_id="$(docker image inspect -f '{{.Id}}' "$base_tag")"
  build_key="$(cat "${app_files[@]}" "${BASH_SOURCE[0]}" <(printf '%s\n' "$base_id" "${labels[@]}") |
    sha256sum | cut -c1-64)"
  current_key="$(docker image inspect -f '{{index .Config.Labels "io.kubeflow.kfp-artifacts.build-key"}}' \
    "$image" 2>/dev/null || true)"
  if [[ $current_key == "$build_key" ]]; then
    say "up to date: $image"
    return
  fi

  local stage container
  stage="$(mktemp -d)"
  mkdir -m 0755 "$stage/app" "$stage/artifacts"
  install -m 0644 "${app_files[@]}" "$stage/app/"
  # /app is root's and read-only to the server. /artifacts, the volume's mount point, is the server's
  # user's: Docker gives a new named or anonymous volume the owner and mode of the directory it is
  # mounted over, and without this directory a volume would be root's and the server could not write.
  # One archive, so the ownership travels without root or chown on this side (`docker cp -` keeps it).
  local tar_common=(--format=posix --numeric-owner --mtime=@0 -C "$stage")
  tar "${tar_common[@]}" --owner=0 --group=0 --sort=name -cf "$stage/layer.tar" ./app
  tar "${tar_common[@]}" --owner="$NONROOT_UID" --group="$NONROOT_UID" --no-recursion -rf "$stage/layer.tar" ./artifacts
  container="$(docker create "$base_tag")"
  # shellcheck disable=SC2064 # expand now: these locals are gone when the trap runs
  trap "docker rm -f '$container' >/dev/null 2>&1 || true; rm -rf '$stage'" EXIT
  docker cp - "$container:/" <"$stage/layer.tar"
  # The same configuration as the Dockerfile's final stage; test.sh compares the two.
  local changes=(
    --change "ENV NODE_ENV=production"
    --change "WORKDIR /app"
    --change 'VOLUME ["/artifacts"]'
    --change "USER $NONROOT_UID:$NONROOT_UID"
    --change "EXPOSE 8080 9000"
    --change "HEALTHCHECK $healthcheck"
    --change 'CMD ["--max-semi-space-size=4", "/app/server.mjs"]'
    --change "LABEL io.kubeflow.kfp-artifacts.build-key=$build_key"
  )
  local label
  for label in "${labels[@]}"; do changes+=(--change "LABEL ${label%%=*}=\"${label#*=}\""); done
  say "docker commit $image (base $base_tag + /app)"
  docker commit "${changes[@]}" "$container" "$image" >/dev/null
}

SECONDS=0
previous_id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
case "$mode" in
  dockerfile) build_with_dockerfile ;;
  offline) build_offline ;;
esac
[[ $published == "$image" ]] || docker tag "$image" "$published"
image_id="$(docker image inspect -f '{{.Id}}' "$image")"
if [[ -n $previous_id && $previous_id != "$image_id" ]]; then
  # The image this build replaced; removal fails (harmlessly) while another tag or a container uses it.
  docker image rm "$previous_id" >/dev/null 2>&1 || true
fi
size="$(docker image inspect -f '{{.Size}}' "$image")"
say "built $image and $published via $mode in ${SECONDS}s: $((size / 1000000)) MB uncompressed ($size bytes)"
