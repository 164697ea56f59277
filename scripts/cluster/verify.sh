#!/usr/bin/env bash
# Proves the cluster is usable by the e2e suites; exits non-zero with one line "verify: <reason>".
# Checks: 3 nodes Ready; the shared host directory mounted in every node; a pod on each worker;
# pod-to-pod traffic across nodes; a ClusterIP Service; DNS for kubernetes.default and the Service;
# a PVC bound by the default StorageClass; an image built here and loaded with `kind load docker-image`
# runs. Deletes its namespace afterwards.
source "$(dirname "$0")/lib.sh"

KUBECTL_BIN="$(kubectl_binary)"
k() { "$KUBECTL_BIN" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
# A fresh namespace per run, so a run never waits for the previous one to finish terminating.
ns="kfp-cluster-verify-$(date +%s)"
fail() { log "verify: $*"; exit 1; }
step() { log "verify: $*"; }

# Test pods need a shell with httpd/nc/nslookup: offline it is our busybox, baked into the node image.
if [[ $(cat "$PATH_MARKER" 2>/dev/null) == offline ]]; then tool_image="$BUSYBOX_IMAGE"; else tool_image=busybox:1.36.1; fi

step "nodes"
k wait --for=condition=Ready node --all --timeout=180s >/dev/null || fail "not every node became Ready within 180s"
node_count="$(k get nodes --no-headers | wc -l)"
((node_count == 3)) || fail "expected 3 nodes, found $node_count"
mapfile -t workers < <(k get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
((${#workers[@]} == 2)) || fail "expected 2 workers, found ${#workers[@]}"
k -n kube-system wait --for=condition=Ready pod -l k8s-app=kube-dns --timeout=120s >/dev/null ||
  fail "CoreDNS not Ready within 120s"

step "shared host directory on every node"
marker="$E2E_SHARED_DIR/.cluster-verify-$ns"
echo "$ns" >"$marker"
for node in $("$KIND_BIN" get nodes --name "$CLUSTER_NAME"); do
  got="$(docker exec "$node" cat "/var/kfp-artifacts-shared/.cluster-verify-$ns" 2>&1 || true)"
  [[ $got == "$ns" ]] || fail "node $node does not see $E2E_SHARED_DIR at /var/kfp-artifacts-shared: $got"
done
rm -f "$marker"

k delete namespace -l kfp-artifacts/cluster-verify=true --wait=false >/dev/null
k create namespace "$ns" >/dev/null
k label namespace "$ns" kfp-artifacts/cluster-verify=true >/dev/null

step "a web pod on each worker"
for i in 0 1; do
  k -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: { name: web-$i, labels: { app: verify-web } }
spec:
  nodeName: ${workers[$i]}
  terminationGracePeriodSeconds: 0 # httpd as PID 1 ignores SIGTERM; do not hold up namespace deletion
  containers:
    - name: web
      image: $tool_image
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "mkdir -p /www && echo ${workers[$i]} > /www/index.html && exec httpd -f -p 8080 -h /www"]
      ports: [{ containerPort: 8080 }]
YAML
done
k -n "$ns" wait --for=condition=Ready pod/web-0 pod/web-1 --timeout=120s >/dev/null ||
  fail "web pods on the workers not Ready within 120s"

# GET / on <address>:8080 from web-0, printing the response body's last line (the serving node's name).
# nc rather than wget: Debian's static busybox wget crashes (SIGSEGV) in these containers.
http_get_from_web0() {
  k -n "$ns" exec web-0 -- sh -c "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $1 8080" 2>&1 | tail -1 || true
}

step "pod-to-pod traffic across nodes"
ip1="$(k -n "$ns" get pod web-1 -o jsonpath='{.status.podIP}')"
got="$(http_get_from_web0 "$ip1")"
[[ $got == "${workers[1]}" ]] || fail "web-0 on ${workers[0]} cannot reach web-1 at $ip1 on ${workers[1]}: $got"

step "Service"
k -n "$ns" expose pod web-1 --name verify-web --port 8080 >/dev/null
cluster_ip="$(k -n "$ns" get service verify-web -o jsonpath='{.spec.clusterIP}')"
got=""
for _ in $(seq 1 20); do
  got="$(http_get_from_web0 "$cluster_ip")"
  [[ $got == "${workers[1]}" ]] && break
  sleep 1
done
[[ $got == "${workers[1]}" ]] || fail "Service verify-web ($cluster_ip) not reachable from web-0: $got"

step "DNS"
got="$(k -n "$ns" exec web-0 -- nslookup kubernetes.default.svc.cluster.local 2>&1 || true)"
kubernetes_ip="$(k get service kubernetes -n default -o jsonpath='{.spec.clusterIP}')"
[[ $got == *"$kubernetes_ip"* ]] || fail "DNS: kubernetes.default did not resolve to $kubernetes_ip: $(tr '\n' ' ' <<<"$got")"
got="$(k -n "$ns" exec web-0 -- nslookup "verify-web.$ns.svc.cluster.local" 2>&1 || true)"
[[ $got == *"$cluster_ip"* ]] || fail "DNS: verify-web.$ns did not resolve to $cluster_ip: $(tr '\n' ' ' <<<"$got")"

step "PVC with the default StorageClass"
default_class="$(k get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name}{end}')"
[[ -n $default_class ]] || fail "no default StorageClass"
k -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data }
spec:
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 16Mi } }
---
apiVersion: v1
kind: Pod
metadata: { name: writer }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
    - name: writer
      image: $tool_image
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "echo ok > /data/probe && cat /data/probe"]
      volumeMounts: [{ name: data, mountPath: /data }]
  volumes: [{ name: data, persistentVolumeClaim: { claimName: data } }]
YAML
k -n "$ns" wait --for=jsonpath='{.status.phase}'=Bound pvc/data --timeout=120s >/dev/null ||
  fail "PVC not bound by StorageClass $default_class within 120s"
k -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/writer --timeout=120s >/dev/null ||
  fail "pod writing to the PVC did not succeed within 120s"

step "kind load docker-image"
probe_dir="$CACHE_ROOT/load-probe"
mkdir -p "$probe_dir"
if [[ ! -x $probe_dir/pause ]]; then
  (go_build_env && cd "$CLUSTER_SCRIPTS_DIR/pause" && go build -ldflags "-s -w" -o "$probe_dir/pause" .)
fi
probe_image="$LOCAL_IMAGE_PREFIX/kind-load-probe:$(hash_of "$probe_dir/pause")"
printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$probe_dir/Dockerfile"
docker build -q -t "$probe_image" "$probe_dir" >/dev/null 2>&1 || fail "docker build of $probe_image failed"
"$KIND_BIN" load docker-image --name "$CLUSTER_NAME" "$probe_image" >/dev/null 2>&1 || fail "kind load docker-image $probe_image failed"
k -n "$ns" run loaded --image "$probe_image" --image-pull-policy Never --restart Never \
  --overrides '{"spec":{"terminationGracePeriodSeconds":0}}' >/dev/null
k -n "$ns" wait --for=condition=Ready pod/loaded --timeout=60s >/dev/null || fail "pod from the loaded image $probe_image not Ready within 60s"

k delete namespace "$ns" --wait=false >/dev/null
step "ok: 3 nodes Ready, cross-node pod traffic, Service, DNS, PVC on '$default_class', kind load"
