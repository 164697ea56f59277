#!/usr/bin/env bash
# Offline path only: pod networking without kindnetd (whose image sits in a registry). Does what kindnetd
# does on a flat node network: on every node, a ptp + host-local CNI config for the node's pod CIDR, a
# route to every other node's pod CIDR via that node's IP, and masquerading for traffic leaving the pod
# network. Idempotent; re-run after a node restarts (routes do not survive it).
source "$(dirname "$0")/lib.sh"
kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

mapfile -t nodes < <("$KIND_BIN" get nodes --name "$CLUSTER_NAME")
((${#nodes[@]} > 0)) || die "no nodes in cluster $CLUSTER_NAME"
# Right after the nodes (re)start — e.g. the Docker engine restarted — the API server is still starting,
# and until its RBAC caches sync it answers "forbidden" even to the admin. Wait for it, bounded.
cluster_configuration=""
for _ in $(seq 1 120); do
  cluster_configuration="$(kubectl_ -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' 2>/dev/null)" && break
  sleep 1
done
[[ -n $cluster_configuration ]] || die "the API server did not answer within 120 s (kubeadm-config)"
cluster_pod_subnet="$(sed -n 's/^ *podSubnet: *//p' <<<"$cluster_configuration")"
[[ -n $cluster_pod_subnet ]] || die "no podSubnet in kubeadm-config"

declare -A pod_cidr node_ip
for node in "${nodes[@]}"; do
  for _ in $(seq 1 60); do
    pod_cidr[$node]="$(kubectl_ get node "$node" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)"
    [[ -n ${pod_cidr[$node]} ]] && break
    sleep 1
  done
  [[ -n ${pod_cidr[$node]} ]] || die "node $node got no podCIDR within 60s"
  node_ip[$node]="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$node")"
  log "$node: ip ${node_ip[$node]}, pods ${pod_cidr[$node]}"
done

for node in "${nodes[@]}"; do
  docker exec -i "$node" sh -c 'mkdir -p /etc/cni/net.d && cat > /etc/cni/net.d/10-kfp-ptp.conflist' <<JSON
{
  "cniVersion": "0.4.0",
  "name": "kfp-ptp",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "${pod_cidr[$node]}" }]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
  for peer in "${nodes[@]}"; do
    [[ $peer == "$node" ]] && continue
    docker exec "$node" ip route replace "${pod_cidr[$peer]}" via "${node_ip[$peer]}"
  done
  docker exec "$node" sh -c "iptables -t nat -C POSTROUTING -s ${pod_cidr[$node]} ! -d $cluster_pod_subnet -j MASQUERADE 2>/dev/null ||
    iptables -t nat -A POSTROUTING -s ${pod_cidr[$node]} ! -d $cluster_pod_subnet -j MASQUERADE"
done
log "static pod network configured on ${#nodes[@]} nodes"
