# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are used by the scripts that source this file
# Pinned versions for the cluster scripts. Changing one changes every cache key derived from it.

# kind release and the node image it pins by default (images/node in kind v0.30.0, pkg/apis/config/defaults).
KIND_VERSION=v0.30.0
KIND_ONLINE_NODE_IMAGE="kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"

# Offline path. Kubernetes stays on 1.34: these machines are cgroup v1 only and 1.35+ kubelets refuse it.
K8S_VERSION=v1.34.4
# Staging modules (k8s.io/api, client-go, ...) are published as v0.<minor>.<patch>.
K8S_STAGING_VERSION=v0.34.4
# What kubeadm v1.34 deploys (cmd/kubeadm/app/constants): image tags must match these exactly.
ETCD_VERSION=v3.6.5
ETCD_IMAGE_TAG=3.6.5-0
COREDNS_VERSION=v1.12.1
PAUSE_IMAGE_TAG=3.10.1
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30
