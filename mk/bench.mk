# Performance (issue 10, SPEC §7): `make bench` compares the server with nginx and dd on this machine.
# Not part of `make test`: it takes minutes and measures, it does not judge. See docs/performance.md.
.PHONY: bench

bench: build ## SPEC §7 side-by-side benchmark (nginx, dd); BENCH_SIZE_MIB, BENCH_ROUNDS, BENCH_ONLY shrink it
	scripts/bench/run.sh
