#!/usr/bin/env bash
# Assembles the kind node image by hand, doing what `kind build node-image` does (it would pull
# kindest/base and the component images from registries, and uses a ctr flag Debian's containerd lacks):
#   1. docker build: Debian root filesystem + kind's own base files (entrypoint, containerd config,
#      kubelet units) copied from the kind Go module, + kubeadm/kubelet/kubectl, /kind/version and the
#      default CNI/storage manifests;
#   2. docker run it, start containerd inside, import every component image, docker commit with kind's
#      entrypoint. Result: $NODE_IMAGE. Skips the work when that image exists.
source "$(dirname "$0")/lib.sh"

if docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then log "node image $NODE_IMAGE exists"; exit 0; fi

base_files="$KIND_MODULE_DIR/images/base/files"
storage_go="$KIND_MODULE_DIR/pkg/build/nodeimage/const_storage.go"
[[ -d $base_files && -f $storage_go ]] || die "kind $KIND_VERSION module source missing at $KIND_MODULE_DIR (run install-kind.sh)"
[[ -s $COMPONENT_IMAGES_TAR ]] || die "missing $COMPONENT_IMAGES_TAR (run build-images.sh)"
[[ -x /usr/local/bin/runc-nosysresource ]] || die "missing /usr/local/bin/runc-nosysresource (run scripts/lib/docker-up.sh)"

ctx="$IMAGES_DIR/node-context"
rm -rf "$ctx"
mkdir -p "$ctx/bin" "$ctx/manifests"
cp -r "$base_files" "$ctx/files"
cp "$K8S_BIN/kubeadm" "$K8S_BIN/kubelet" "$K8S_BIN/kubectl" "$ctx/bin/"
cp /usr/local/bin/runc-nosysresource "$ctx/runc-nosysresource"
printf '%s' "$K8S_VERSION" >"$ctx/version"
cp "$CLUSTER_SCRIPTS_DIR/files/default-cni.yaml" "$ctx/manifests/default-cni.yaml"

# kind's default StorageClass manifest (local-path-provisioner), taken from the kind module so it stays
# kind's, with its two registry images replaced by ours.
awk '/^const defaultStorageManifest = `/ { on = 1; next } on && /^`/ { exit } on { print }' "$storage_go" |
  sed -e "s#\` + storageProvisionerImage + \`#$LOCAL_PATH_PROVISIONER_IMAGE#g" \
      -e "s#\` + storageHelperImage + \`#$BUSYBOX_IMAGE#g" >"$ctx/manifests/default-storage.yaml"
grep -q "$LOCAL_PATH_PROVISIONER_IMAGE" "$ctx/manifests/default-storage.yaml" || die "could not rewrite kind's storage manifest"
if grep -q 'storage\(Provisioner\|Helper\)Image' "$ctx/manifests/default-storage.yaml"; then die "unreplaced image in storage manifest"; fi

pause_image="$(grep '/pause:' "$COMPONENT_IMAGES_TAR.list")"

# Mirrors kind's images/base/Dockerfile, with Debian's containerd/runc/CNI plugins instead of source
# builds. The wrapper runtime drops CAP_SYS_RESOURCE for pods too (privileged pods fail otherwise), and
# restrict_oom_score_adj is needed because the node cannot lower oom_score_adj below its own.
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/crictl.yaml /etc/
COPY files/etc/containerd/ /etc/containerd/
COPY files/etc/default/ /etc/default/
COPY files/etc/sysctl.d/ /etc/sysctl.d/
COPY files/etc/systemd/system/ /etc/systemd/system/
COPY runc-nosysresource /usr/local/bin/runc-nosysresource
COPY bin/ /usr/bin/
COPY version /kind/version
COPY manifests/ /kind/manifests/
RUN chmod 0755 /kind/bin /kind/bin/* /usr/local/bin/* /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl \\
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
    /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
    /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
 && ln -sf "\$(command -v systemd || echo /lib/systemd/systemd)" /sbin/init \\
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \\
 && mkdir -p /opt/cni/bin /etc/kubernetes/manifests \\
 && for plugin in /usr/lib/cni/*; do ln -sf "\$plugin" /opt/cni/bin/; done \\
 && sed -i \\
      -e 's#^\( *\)SystemdCgroup = true#\1SystemdCgroup = true\n\1BinaryName = "/usr/local/bin/runc-nosysresource"#' \\
      -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \\
      -e 's#sandbox_image = .*#sandbox_image = "$pause_image"#' \\
      /etc/containerd/config.toml \\
 && ctr oci spec \\
      | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service
DOCKERFILE
stage_image="kfp-artifacts-kind-node-stage:$NODE_KEY"
docker build -t "$stage_image" "$ctx"

# Import the component images into the node's containerd, as kind's node build does (--no-unpack:
# containerd unpacks on first use, into the node's /var volume where overlayfs works).
container="kfp-artifacts-node-build-$NODE_KEY"
docker rm -f "$container" >/dev/null 2>&1 || true
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$container" --privileged --entrypoint sleep \
  -v "$COMPONENT_IMAGES_TAR:/kind-images.tar:ro" "$stage_image" infinity >/dev/null
docker exec "$container" sh -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
for _ in $(seq 1 60); do
  if docker exec "$container" ctr --timeout 2s version >/dev/null 2>&1; then break; fi
  sleep 1
done
docker exec "$container" ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests /kind-images.tar
docker exec "$container" ctr --namespace=k8s.io images list -q | tee "$IMAGES_DIR/node-$NODE_KEY.images" >&2
while read -r ref; do
  grep -qx "$ref" "$IMAGES_DIR/node-$NODE_KEY.images" || die "image $ref missing from the node's containerd"
done <"$COMPONENT_IMAGES_TAR.list"
# Stop containerd cleanly so its metadata is flushed. PID 1 here is sleep, which never reaps, so a
# stopped containerd lingers as a zombie: wait until no live (non-Z) containerd process remains.
docker exec "$container" sh -c 'pkill -x containerd; for i in $(seq 1 30); do
  ps -C containerd -o stat= | grep -qv "^Z" || exit 0; sleep 1; done; echo "containerd did not stop" >&2; exit 1'
docker exec "$container" rm -f /var/log/containerd-build.log

# docker commit cannot set STOPSIGNAL, so the runtime settings of kind's base image go on in a build.
docker commit "$container" "$stage_image-committed" >/dev/null
printf '%s\n' "FROM $stage_image-committed" 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' \
  'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' 'CMD []' |
  docker build -q -t "$NODE_IMAGE" - >/dev/null
docker rm -f "$container" >/dev/null
docker rmi "$stage_image-committed" "$stage_image" >/dev/null 2>&1 || true
rm -rf "$ctx" # a copy of cached binaries and kind's files
log "built $NODE_IMAGE"
# Node images of earlier inputs: untag them (Docker keeps any that a cluster still runs on).
find "$IMAGES_DIR" -maxdepth 1 -name 'node-*.images' ! -name "node-$NODE_KEY.images" -delete
docker images --format '{{.Repository}}:{{.Tag}}' "${NODE_IMAGE%%:*}" | grep -vx "$NODE_IMAGE" |
  xargs -r docker rmi >/dev/null 2>&1 || true
