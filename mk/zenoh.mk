# flexshm-zenoh: the Zenoh bridge (docs/BRIDGE.md) that `flexshm bridge` runs.
TEST_TARGETS += test-zenoh

# One build of Zenoh for the CLI and the bridge. Cargo resolves dependency features per
# selection of packages (and of the units it builds), and the CLI enables features of
# crates Zenoh is built on (serde_json, rustix, syn through clap's derive, ...) that
# flexshm-zenoh alone does not, so `-p flexshm-cli` and `-p flexshm-zenoh` alone would
# each compile Zenoh. Every cargo command of test-cli and test-zenoh therefore selects
# both packages and builds the CLI binary, and picks its tests by target name: one
# feature set, one build, in the one target directory. (flexshm-zenoh has no
# dev-dependencies for the same reason.)
BRIDGE_PKGS := -p flexshm-cli -p flexshm-zenoh
test_names = $(basename $(notdir $(wildcard $(1)/tests/*.rs))) \
  $(notdir $(patsubst %/main.rs,%,$(wildcard $(1)/tests/*/main.rs)))
CLI_TESTS := --bins $(addprefix --test ,$(call test_names,$(ROOT)/flexshm-cli))
ZENOH_TESTS := --bins --lib $(addprefix --test ,$(call test_names,$(ROOT)/flexshm-zenoh))

.PHONY: test-zenoh test-bridge bench-bridge

test-zenoh: ## flexshm-zenoh: rustfmt, clippy, wire-format property tests, bridge loops, in-process loopback tests, doc tests, cargo doc -D warnings, a bridge_bench smoke run
	@$(CARGO) fmt --check -p flexshm-zenoh
	nice -n 10 $(CARGO) clippy $(BRIDGE_PKGS) --all-targets -- -D warnings
	nice -n 10 $(CARGO) test $(BRIDGE_PKGS) $(ZENOH_TESTS)
	nice -n 10 $(CARGO) test $(BRIDGE_PKGS) --doc
	RUSTDOCFLAGS="-D warnings" nice -n 10 $(CARGO) doc $(BRIDGE_PKGS) --no-deps
	echo "cargo doc: no warnings"
	# The benchmark must keep running: a few rounds of each case, debug build (make
	# bench-bridge measures).
	nice -n 10 $(CARGO) build -q $(BRIDGE_PKGS) --example bridge_bench
	"$(ROOT)/target/debug/examples/bridge_bench" --rounds 20 --count 2000 --repeat 1 >/dev/null
	echo "bridge_bench smoke run: ok"
	echo "test-zenoh: 'flexshm bridge' end to end (two processes, a Python reader) runs in test-cli; alone: make test-bridge"

test-bridge: build-py ## flexshm bridge end to end: two bridge processes over tcp/127.0.0.1, a Rust writer, a Python reader (also part of test-cli)
	FLEXSHM_CLI_REQUIRE_PY=1 nice -n 10 $(CARGO) test $(BRIDGE_PKGS) --test bridge

# `make bench` runs it too. BENCH_OUT comes from mk/bench.mk.
bench: bench-bridge

bench-bridge: ## bridged vs raw Zenoh: one-way latency p50/p99 and throughput, SensorData and a 640x480x3 image, side B in another process (a few minutes); table to stdout and bench-results/
	mkdir -p "$(BENCH_OUT)"
	nice -n 10 $(CARGO) build -q --release -p flexshm-zenoh --example bridge_bench
	"$(ROOT)/target/release/examples/bridge_bench" | tee "$(BENCH_OUT)/bench-bridge.md"
