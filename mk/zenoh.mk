# flexshm-zenoh: the Zenoh bridge (docs/BRIDGE.md).
TEST_TARGETS += test-zenoh

.PHONY: test-zenoh bench-bridge
test-zenoh: ## flexshm-zenoh: wire-format property tests, bridge loops, loopback and two-process bridge tests, clippy, cargo doc -D warnings
	$(CARGO) clippy -p flexshm-zenoh --no-deps --all-targets -- -D warnings
	$(CARGO) test -p flexshm-zenoh
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p flexshm-zenoh --no-deps
	echo "cargo doc -p flexshm-zenoh: no warnings"

bench-bridge: ## bridged vs raw Zenoh latency and throughput (SensorData, 640x480x3 image), loopback
	$(CARGO) run --release -p flexshm-zenoh --example bridge_bench
