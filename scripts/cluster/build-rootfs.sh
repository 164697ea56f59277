#!/usr/bin/env bash
# Builds the node's root filesystem with debootstrap (Debian packages are reachable; the kindest/base
# image is not) and imports it into Docker as $ROOTFS_IMAGE. Skips the work when that image exists.
source "$(dirname "$0")/lib.sh"

if docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then log "rootfs image $ROOTFS_IMAGE exists"; exit 0; fi

command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap

# Use the mirror this machine's apt already uses (first deb URI of the main Debian source), unless told.
mirror="${KFP_DEBIAN_MIRROR:-}"
if [[ -z $mirror ]]; then
  mirror="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    awk '$1 == "URIs:" || $1 == "deb" { print $2 }' | grep -v security | head -1 || true)"
fi
[[ -n $mirror ]] || die "no Debian mirror found in /etc/apt; set KFP_DEBIAN_MIRROR"

target="$CACHE_ROOT/rootfs/$ROOTFS_KEY"
rm -rf "$target.tmp"
mkdir -p "$target.tmp"
log "debootstrap $DEBIAN_SUITE from $mirror into $target.tmp"
debootstrap --variant=minbase --include="$(IFS=,; echo "${NODE_PACKAGES[*]}")" \
  "$DEBIAN_SUITE" "$target.tmp" "$mirror"
# Trim what a node never needs; keeps the image and every `docker commit` smaller.
rm -rf "$target.tmp"/var/cache/apt/archives/*.deb "$target.tmp"/var/lib/apt/lists/* \
  "$target.tmp"/usr/share/doc "$target.tmp"/usr/share/man "$target.tmp"/usr/share/locale
tar -C "$target.tmp" -c . | docker import - "$ROOTFS_IMAGE"
rm -rf "$target.tmp"
log "imported $ROOTFS_IMAGE"
