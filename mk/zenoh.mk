# flexshm-zenoh: the Zenoh bridge (docs/BRIDGE.md) that `flexshm bridge` runs.
# The CLI depends on it, so test-cli and test-zenoh share one build of Zenoh (the same
# target directory and the same features): whichever runs first compiles it.
TEST_TARGETS += test-zenoh

.PHONY: test-zenoh test-bridge bench-bridge

test-zenoh: ## flexshm-zenoh: rustfmt, clippy, wire-format property tests, bridge loops, in-process loopback tests, cargo doc -D warnings, a bridge_bench smoke run
	@$(CARGO) fmt --check -p flexshm-zenoh
	nice -n 10 $(CARGO) clippy -p flexshm-zenoh --no-deps --all-targets -- -D warnings
	nice -n 10 $(CARGO) test -p flexshm-zenoh
	RUSTDOCFLAGS="-D warnings" nice -n 10 $(CARGO) doc -p flexshm-zenoh --no-deps
	echo "cargo doc -p flexshm-zenoh: no warnings"
	# The benchmark must keep running: a few rounds, debug build (make bench-bridge measures).
	nice -n 10 $(CARGO) run -q -p flexshm-zenoh --example bridge_bench -- \
	  --rounds 20 --count 2000 --repeat 1 >/dev/null
	echo "bridge_bench smoke run: ok"
	echo "test-zenoh: 'flexshm bridge' end to end (two processes, a Python reader) runs in test-cli; alone: make test-bridge"

test-bridge: build-py ## flexshm bridge end to end: two bridge processes over tcp/127.0.0.1, a Rust writer, a Python reader (also part of test-cli)
	FLEXSHM_CLI_REQUIRE_PY=1 nice -n 10 $(CARGO) test -p flexshm-cli --test bridge

# `make bench` runs it too. BENCH_OUT comes from mk/bench.mk.
bench: bench-bridge

bench-bridge: ## bridged vs raw Zenoh: one-way latency p50/p99 and throughput, SensorData and a 640x480x3 image, side B in another process (a few minutes); table to stdout and bench-results/
	mkdir -p "$(BENCH_OUT)"
	nice -n 10 $(CARGO) build -q --release -p flexshm-zenoh --example bridge_bench
	"$(ROOT)/target/release/examples/bridge_bench" | tee "$(BENCH_OUT)/bench-bridge.md"
