# Performance (issue 10, SPEC §7): `make bench` compares the server with nginx and dd on this machine.
# Not part of `make test`: it takes minutes and measures, it does not judge. See docs/performance.md.
.PHONY: bench

bench: build ## side-by-side benchmark (nginx, dd, and over S3 MinIO and SeaweedFS); BENCH_SIZE_MIB, BENCH_ROUNDS, BENCH_ONLY shrink it
	scripts/bench/run.sh
