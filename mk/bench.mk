# Benchmarks (bench/: a cargo workspace of its own, plus bench/python/bench.py).
# `make bench` prints the tables of BENCHMARKS.md; test-bench keeps them building in CI.
TEST_TARGETS += test-bench

BENCH_OUT := $(ROOT)/bench-results
# Build directory of the benchmarks. CI builds them from a fresh clone every run; a
# directory outside the clone keeps the peers (iceoryx2 takes minutes to compile)
# between runs on the same machine. Cargo rebuilds whatever changed.
ifeq ($(CI),true)
BENCH_TARGET_DIR ?= /var/tmp/flexshm-bench-target
else
BENCH_TARGET_DIR ?= $(ROOT)/bench/target
endif

.PHONY: bench bench-quick test-bench bench-deps

bench-deps: ## install libclang (iceoryx2, a peer in the benchmarks, needs it to build)
	@if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
	  if [ "$$(id -u)" = 0 ]; then
	    apt-get update -qq
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev clang >/dev/null
	    echo "installed libclang-dev and clang"
	  else
	    echo "bench: libclang is missing, so the iceoryx2 peer is left out; install Debian's libclang-dev and clang (as root) to include it" >&2
	  fi
	fi

bench: bench-deps build-py ## full benchmark run (~4 min once built); tables to stdout and bench-results/
	mkdir -p "$(BENCH_OUT)"
	CARGO_TARGET_DIR="$(BENCH_TARGET_DIR)" PY="$(PY)" CARGO="$(CARGO)" bench/run.sh full | tee "$(BENCH_OUT)/bench-full.md"

bench-quick: bench-deps build-py ## shorter benchmark run (a few minutes)
	mkdir -p "$(BENCH_OUT)"
	CARGO_TARGET_DIR="$(BENCH_TARGET_DIR)" PY="$(PY)" CARGO="$(CARGO)" bench/run.sh quick | tee "$(BENCH_OUT)/bench-quick.md"

test-bench: bench-deps build-py ## build every benchmark, run the smallest case once, lint them
	export CARGO_TARGET_DIR="$(BENCH_TARGET_DIR)"
	# Without libclang the iceoryx2 peer cannot build: check the rest (run.sh does the same).
	feat=()
	if [ -z "$${LIBCLANG_PATH:-}" ] && ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
	  feat=(--no-default-features)
	  echo "test-bench: libclang is missing; checking the benchmarks without the iceoryx2 peer"
	fi
	cd bench
	$(CARGO) fmt --check
	nice -n 10 $(CARGO) clippy --quiet "$${feat[@]}" --all-targets -- -D warnings
	nice -n 10 $(CARGO) clippy --quiet --no-default-features --all-targets -- -D warnings
	nice -n 10 $(CARGO) test "$${feat[@]}" --lib --tests
	cd "$(ROOT)"
	"$(VENV)/bin/ruff" check --config bench/python/ruff.toml bench/python
	"$(VENV)/bin/ruff" format --check --config bench/python/ruff.toml bench/python
	mkdir -p "$(BENCH_TARGET_DIR)"
	PY="$(PY)" CARGO="$(CARGO)" bench/run.sh smoke | tee "$(BENCH_TARGET_DIR)/bench-smoke.md"
	echo "bench smoke run: $$(grep -c '^| ' "$(BENCH_TARGET_DIR)/bench-smoke.md") table rows"
