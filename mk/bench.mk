# Performance (targets in docs/performance.md): `make bench` compares the server with nginx and dd on this machine.
# Not part of `make test`: it takes minutes and measures, it does not judge. See docs/performance.md.
.PHONY: bench

bench: build ## side-by-side benchmark (nginx, dd, and over S3 MinIO and SeaweedFS); BENCH_SIZE_MIB, BENCH_ROUNDS, BENCH_ONLY shrink it
	scripts/bench/run.sh

.PHONY: bench-retention

bench-retention: build ## retention sweep cost on 100,000 small artifacts: time, RSS, 4 KiB GET rate during it (BENCH_RETENTION_FILES shrinks it)
	@mkdir -p "$${BENCH_DIR:-.bench}"
	node_modules/.bin/esbuild scripts/bench/retention-sweep.ts --bundle --platform=node --format=esm --target=node20 \
	  --outfile="$${BENCH_DIR:-.bench}/retention-sweep.mjs" --log-level=warning
	node "$${BENCH_DIR:-.bench}/retention-sweep.mjs"
