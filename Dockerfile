# The kfp-artifacts server image: three esbuild bundles (the server and its upload worker thread, each
# with its source map, and the server manager) on a distroless Node LTS base, running as the numeric
# nonroot user. `make image` uses this file wherever base images
# can be pulled; elsewhere it assembles an equivalent image offline (scripts/image/, docs/image.md).
#
# Bases are pinned by tag, not digest: no registry was reachable where this file was written, so no
# digest could be verified. To pin, resolve each tag and append the digest, e.g.
#   docker buildx imagetools inspect gcr.io/distroless/nodejs24-debian12:nonroot   # -> Digest: sha256:…
#   RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:…
# (here or with --build-arg; a mirror works the same way). Keep NODE_VERSION and the distroless Node
# major in step with scripts/image/versions.sh; `make test-image` fails when they drift apart.
ARG NODE_VERSION=24.21.0
ARG BUILD_IMAGE=docker.io/library/node:${NODE_VERSION}-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# The build stage runs on the builder's own platform, whatever the target: its output (the JS bundles
# and an empty directory) is the same on every architecture, so a multi-arch build (`docker buildx build
# --platform linux/amd64,linux/arm64`, the release workflow) runs npm and esbuild natively once instead of
# under emulation per target. The final stage is per target: it is the target's Node. BuildKit sets
# BUILDPLATFORM; the classic builder does not, so scripts/image/build.sh passes the engine's platform.
ARG BUILDPLATFORM
FROM --platform=${BUILDPLATFORM} ${BUILD_IMAGE} AS build
WORKDIR /src
# The volume's mount point, for the final stage, which has no shell to make it.
RUN mkdir -m 0755 /artifacts
# Dependencies first, so editing the sources reuses the `npm ci` layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY server/src server/src
RUN node scripts/build.mjs

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.0.0-dev
# The commit built from (scripts/image/build.sh passes it, with "-dirty" for uncommitted changes).
ARG REVISION=
ARG SOURCE=https://github.com/kubeflow/pipelines
LABEL org.opencontainers.image.title="kfp-artifacts" \
      org.opencontainers.image.description="Filesystem artifact store for Kubeflow Pipelines" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
ENV NODE_ENV=production
WORKDIR /app
# Root-owned and read-only to the server; the only writable path is the /artifacts volume.
COPY --from=build /src/server/dist/server.mjs /src/server/dist/server.mjs.map \
     /src/server/dist/upload-worker.mjs /src/server/dist/upload-worker.mjs.map \
     /src/server/dist/manager.mjs /app/
# The volume's mount point belongs to the server's user: Docker gives a new named or anonymous volume
# the owner and mode of the directory it is mounted over, so `docker run` with either just works, also
# with --read-only (a host directory must be chowned; Kubernetes uses fsGroup).
COPY --from=build --chown=65532:65532 /artifacts /artifacts
VOLUME ["/artifacts"]
USER 65532:65532
# The native API and the S3-compatible API (PORT, S3_PORT).
EXPOSE 8080 9000
# No shell in the image: Node's own fetch asks /healthz. scripts/image/build.sh gives the offline image
# the same instruction (test.sh compares). No --start-interval: Docker engines before 25 refuse it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/nodejs/bin/node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The base's ENTRYPOINT is /nodejs/bin/node.
# --max-semi-space-size=4: V8's young generation grows to 2 × 16 MB under a steady request load and
# keeps it; 4 MB semi-spaces cost no measurable throughput and 20+ MB less RSS (docs/performance.md).
# No --enable-source-maps: parsing the 4 MB map costs 22 MB of RSS for the process's whole life
# (scripts/bench/rss-probe.sh), and the bundle is not minified, so its stack traces read as they are.
# To map them to the TypeScript sources, run with NODE_OPTIONS=--enable-source-maps.
CMD ["--max-semi-space-size=4", "/app/server.mjs"]
