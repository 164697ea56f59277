# kind cluster for the e2e suites (docs/cluster.md). Not part of `make test`: it needs Docker and,
# offline, a long first build.
.PHONY: cluster cluster-down cluster-verify cluster-images

cluster: ## create (or reuse) and verify the 3-node kind cluster; offline, build everything it needs first
	bash scripts/cluster/up.sh

cluster-down: ## delete the kind cluster (build caches are kept)
	bash scripts/cluster/down.sh

cluster-verify: ## re-run the cluster checks (nodes, pod network, Service, DNS, PVC, kind load)
	bash scripts/cluster/verify.sh

cluster-images: ## offline path only: build binaries, images and the kind node image, no cluster
	bash scripts/lib/docker-up.sh
	bash scripts/cluster/install-kind.sh
	bash scripts/cluster/build-kubernetes.sh
	bash scripts/cluster/build-addons.sh
	bash scripts/cluster/build-rootfs.sh
	bash scripts/cluster/build-images.sh
	bash scripts/cluster/build-node-image.sh
