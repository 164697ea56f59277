# kfp-artifacts — the two set-up commands are `make run` and `make test`.
# Feature areas add their own targets in mk/*.mk (cluster, image, chart, bench, e2e);
# they may append to TEST_TARGETS to join `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# `make run` settings; every documented variable in the environment is passed through unchanged.
export HOST ?= 127.0.0.1
export PORT ?= 8080
export ARTIFACTS_ROOT ?= ./data
export AUTH_MODE ?= none

NPM_STAMP := node_modules/.install-stamp
SERVER_BUNDLE := server/dist/server.mjs
SERVER_SOURCES := $(shell find server/src -name '*.ts' 2>/dev/null)

# Extra prerequisites of `make test`, appended by mk/*.mk.
TEST_TARGETS :=

-include mk/*.mk

.PHONY: help install build run test typecheck lint unit clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(NPM_STAMP): package.json package-lock.json
	@command -v node >/dev/null || { echo "Node.js is required (>= 20.19): apt-get install nodejs npm" >&2; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

install: $(NPM_STAMP) ## install npm dependencies (npm ci) when package-lock.json changed

$(SERVER_BUNDLE): $(NPM_STAMP) $(SERVER_SOURCES) scripts/build.mjs
	node scripts/build.mjs

build: $(SERVER_BUNDLE) ## bundle the server (server/dist/server.mjs) and its upload worker (upload-worker.mjs)

run: build ## serve on $(HOST):$(PORT) with ARTIFACTS_ROOT=$(ARTIFACTS_ROOT), AUTH_MODE=$(AUTH_MODE)
	@mkdir -p "$(ARTIFACTS_ROOT)"
	exec node --max-semi-space-size=4 $(SERVER_BUNDLE)

typecheck: $(NPM_STAMP) ## TypeScript strict type check
	npx tsc -p tsconfig.json --noEmit

lint: $(NPM_STAMP) ## eslint, zero warnings
	npx eslint --max-warnings 0 .

unit: $(NPM_STAMP) ## vitest: every test that needs no cluster
	@mkdir -p .cache
	status=0; npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-report.json || status=$$?; \
	node scripts/test-summary.mjs .cache/vitest-report.json; exit $$status

test: install typecheck lint $(TEST_TARGETS) unit ## install, type-check, lint and run every test that needs no cluster

clean: ## remove build output (server/dist, coverage); ./data, what make run stored, is kept
	rm -rf server/dist coverage
