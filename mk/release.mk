# Release engineering (docs/upgrading.md): the GitHub workflows in .github/workflows cannot run here, so
# `make test` lints them with actionlint (scripts/tools/actionlint.sh builds it from its Go module once).
.PHONY: actionlint

actionlint: ## lint .github/workflows with actionlint (built from its Go module; skipped with a note without Go)
	bash scripts/tools/actionlint.sh

TEST_TARGETS += actionlint
