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
