#!/bin/sh
# Installed as /usr/local/bin/kube-proxy in our kube-proxy image. kube-proxy shares the node's network
# namespace, so its iptables binaries must use the same backend (legacy or nft) as the rules already
# there; pick the one with more rules (as kubernetes-sigs/iptables-wrappers does), then run kube-proxy.
legacy=$( (iptables-legacy-save; ip6tables-legacy-save) 2>/dev/null | grep -c '^-')
nft=$( (iptables-nft-save; ip6tables-nft-save) 2>/dev/null | grep -c '^-')
mode=nft
if [ "${legacy:-0}" -gt "${nft:-0}" ]; then mode=legacy; fi
update-alternatives --set iptables "/usr/sbin/iptables-$mode" >/dev/null 2>&1
update-alternatives --set ip6tables "/usr/sbin/ip6tables-$mode" >/dev/null 2>&1
exec /usr/local/bin/kube-proxy.bin "$@"
