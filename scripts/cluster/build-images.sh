#!/usr/bin/env bash
# Builds the container images a kubeadm node needs, FROM scratch around the binaries built earlier,
# tagged exactly as `kubeadm config images list` prints them so kubeadm finds them without pulling.
# Also builds the images kind's default StorageClass uses and a busybox image for helper and test pods.
# Writes all of them to one archive, $COMPONENT_IMAGES_TAR, which the node assembly imports into the
# node's containerd. Skips the work when that archive exists.
source "$(dirname "$0")/lib.sh"

if [[ -s $COMPONENT_IMAGES_TAR ]]; then log "component images cached in $COMPONENT_IMAGES_TAR"; exit 0; fi

for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubeadm; do
  [[ -x "$K8S_BIN/$b" ]] || die "missing $K8S_BIN/$b (run build-kubernetes.sh first)"
done
for b in etcd coredns pause local-path-provisioner; do
  [[ -x "$ADDONS_BIN/$b" ]] || die "missing $ADDONS_BIN/$b (run build-addons.sh first)"
done
docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1 || die "missing $ROOTFS_IMAGE (run build-rootfs.sh first)"

# The list kubeadm itself will look for; everything below must produce exactly these references.
mapfile -t wanted < <("$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION")
log "kubeadm wants: ${wanted[*]}"
image_for() { # <repository suffix> -> the full reference kubeadm lists for it
  local ref
  for ref in "${wanted[@]}"; do
    if [[ ${ref%:*} == */"$1" ]]; then printf '%s' "$ref"; return 0; fi
  done
  die "kubeadm lists no image named */$1"
}

context_root="$IMAGES_DIR/contexts"
rm -rf "$context_root"
mkdir -p "$context_root"

build_scratch_image() { # <tag> <binary path> <path in image> [entrypoint: yes|no]
  local tag="$1" binary="$2" path="$3" entrypoint="${4:-no}" ctx
  ctx="$context_root/$(basename "$binary")"
  mkdir -p "$ctx"
  cp "$binary" "$ctx/"
  {
    echo "FROM scratch"
    echo "COPY $(basename "$binary") $path"
    echo "ENV PATH=/usr/local/bin:/usr/bin:/bin"
    if [[ $entrypoint == yes ]]; then echo "ENTRYPOINT [\"$path\"]"; fi
  } >"$ctx/Dockerfile"
  docker build -q -t "$tag" "$ctx" >/dev/null
  log "built $tag"
}

built=()
for component in kube-apiserver kube-controller-manager kube-scheduler; do
  tag="$(image_for "$component")"
  build_scratch_image "$tag" "$K8S_BIN/$component" "/usr/local/bin/$component"
  built+=("$tag")
done

tag="$(image_for etcd)"
build_scratch_image "$tag" "$ADDONS_BIN/etcd" /usr/local/bin/etcd
built+=("$tag")

tag="$(image_for coredns)"
build_scratch_image "$tag" "$ADDONS_BIN/coredns" /coredns yes
built+=("$tag")

# Our pause serves both the tag kubeadm lists and the sandbox image containerd is configured with.
tag="$(image_for pause)"
build_scratch_image "$tag" "$ADDONS_BIN/pause" /pause yes
built+=("$tag")

build_scratch_image "$LOCAL_PATH_PROVISIONER_IMAGE" "$ADDONS_BIN/local-path-provisioner" /usr/local/bin/local-path-provisioner
built+=("$LOCAL_PATH_PROVISIONER_IMAGE")

# kube-proxy runs iptables-restore & co., so its image is the node root filesystem plus the binary.
ctx="$context_root/kube-proxy"
mkdir -p "$ctx"
cp "$K8S_BIN/kube-proxy" "$ctx/kube-proxy.bin"
cp "$CLUSTER_SCRIPTS_DIR/files/kube-proxy-iptables-select.sh" "$ctx/kube-proxy"
# Modes set here, not with RUN chmod, which would store both binaries a second time in another layer.
chmod 0755 "$ctx/kube-proxy" "$ctx/kube-proxy.bin"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE
COPY kube-proxy.bin kube-proxy /usr/local/bin/
DOCKERFILE
tag="$(image_for kube-proxy)"
docker build -q -t "$tag" "$ctx" >/dev/null
log "built $tag"
built+=("$tag")

# A static busybox (from the Debian root filesystem): the local-path helper pods need sh, mkdir and rm;
# the cluster verification uses it for httpd, wget and nslookup.
ctx="$context_root/busybox"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE AS source
FROM scratch
COPY --from=source /bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["/bin/sh"]
DOCKERFILE
docker build -q -t "$BUSYBOX_IMAGE" "$ctx" >/dev/null
log "built $BUSYBOX_IMAGE"
built+=("$BUSYBOX_IMAGE")

missing=()
for ref in "${wanted[@]}"; do
  [[ " ${built[*]} " == *" $ref "* ]] || missing+=("$ref")
done
((${#missing[@]} == 0)) || die "kubeadm wants images we did not build: ${missing[*]}"

rm -rf "$context_root" # build contexts are copies of cached binaries
mkdir -p "$(dirname "$COMPONENT_IMAGES_TAR")"
docker save "${built[@]}" -o "$COMPONENT_IMAGES_TAR.tmp"
mv "$COMPONENT_IMAGES_TAR.tmp" "$COMPONENT_IMAGES_TAR"
printf '%s\n' "${built[@]}" >"$COMPONENT_IMAGES_TAR.list"
log "saved ${#built[@]} images to $COMPONENT_IMAGES_TAR"
# Archives of earlier inputs are never read again.
find "$IMAGES_DIR" -maxdepth 1 -name 'components-*.tar*' ! -name "$(basename "$COMPONENT_IMAGES_TAR")*" -delete
