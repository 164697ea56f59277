# Container image: `make image` builds it, `make test-image` checks it. See docs/image.md.
# Online, ./Dockerfile builds it; with no registry in reach it is assembled offline (scripts/image/).
IMAGE_VERSION := $(shell sed -n 's/^  "version": "\([^"]*\)",$$/\1/p' package.json)
IMAGE ?= kfp-artifacts:$(IMAGE_VERSION)
IMAGE_PUBLISHED ?= ghcr.io/kubeflow/kfp-artifacts:$(IMAGE_VERSION)

.PHONY: image test-image test-image-dockerfile

image: build ## build kfp-artifacts:<version> (IMAGE=… overrides), also tagged ghcr.io/kubeflow/kfp-artifacts:<version>
	IMAGE='$(IMAGE)' IMAGE_PUBLISHED='$(IMAGE_PUBLISHED)' scripts/image/build.sh

# Builds the image itself, so that it can report "skipped" when no Docker engine can be started.
test-image: build ## build the image and check it: config in step, labels, anonymous and named volumes, host dir, health check, S3, stop
	IMAGE='$(IMAGE)' IMAGE_PUBLISHED='$(IMAGE_PUBLISHED)' scripts/image/test.sh

# Not part of `make test` (debootstrap takes minutes): runs ./Dockerfile offline against stand-in bases.
test-image-dockerfile: ## check ./Dockerfile without a registry (stand-in bases), then the test-image checks
	scripts/image/test-dockerfile-offline.sh
