# Helm chart and Kustomize distribution (charts/kfp-artifacts, kustomize/).
# helm and kubectl come from scripts/tools (pinned, fetched into bin/ once).
HELM := bin/helm
KUBECTL := bin/kubectl
CHART_DIR := charts/kfp-artifacts

.PHONY: tools manifests check-manifests chart-lint chart-test

tools: $(HELM) $(KUBECTL) ## fetch pinned helm and kubectl into bin/

$(HELM) $(KUBECTL): scripts/tools/fetch-helm-kubectl.sh
	scripts/tools/fetch-helm-kubectl.sh
	@touch $(HELM) $(KUBECTL)

manifests: tools $(NPM_STAMP) ## regenerate chart examples, chart README and kustomize/base from the chart
	node scripts/manifests/generate.mjs

check-manifests: tools $(NPM_STAMP) ## fail when generated manifests differ from the chart (run `make manifests`)
	node scripts/manifests/generate.mjs --check

chart-lint: tools ## helm lint --strict with the defaults and every ci/ values file
	$(HELM) lint --strict $(CHART_DIR)
	for values in $(CHART_DIR)/ci/*-values.yaml; do $(HELM) lint --strict --quiet $(CHART_DIR) --values "$$values"; done

chart-test: tools $(NPM_STAMP) check-manifests ## the chart and kustomize tests only
	npx vitest run charts kustomize

# helm and kubectl must exist before vitest runs the chart and kustomize tests.
TEST_TARGETS += tools check-manifests
