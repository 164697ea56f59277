# End-to-end suites on the kind cluster (docs/e2e.md). Not part of `make test`: they need Docker, the
# cluster (long cold build offline) and, warm, about 3 to 4 minutes for the first six suites plus about
# 1 minute for the manager suite (measured times in docs/e2e.md).
.PHONY: e2e

e2e: tools $(NPM_STAMP) ## cluster (SKIP_CLUSTER_CREATION=1 reuses it), image, kind load, every e2e suite and a summary
	IMAGE='$(IMAGE)' IMAGE_PUBLISHED='$(IMAGE_PUBLISHED)' bash e2e/run.sh
