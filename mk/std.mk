# flexshm-std (named POSIX segments) and the Rust examples; `make demo`.
TEST_TARGETS += test-std

# Where cargo puts the example binaries.
STD_BIN = $${CARGO_TARGET_DIR:-$(ROOT)/target}/debug

.PHONY: test-std demo
test-std: ## flexshm-std + examples: unit, multi-process and doc tests, clippy, cargo doc -D warnings
	$(CARGO) clippy -p flexshm-std -p flexshm-examples --no-deps --all-targets -- -D warnings
	$(CARGO) test -p flexshm-std -p flexshm-examples
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p flexshm-std --no-deps
	echo "cargo doc -p flexshm-std: no warnings"

demo: ## a sensors writer and a reader, two processes, talking through shared memory
	@echo "== building the examples (cargo build -p flexshm-examples --bins)"
	$(CARGO) build -q -p flexshm-examples --bins
	name="flexshm-demo-$$$$"
	bin="$(STD_BIN)"
	wpid=""
	# Whatever happens, stop the writer and remove the segment.
	cleanup() {
	  if [ -n "$$wpid" ]; then kill "$$wpid" 2>/dev/null || true; wait "$$wpid" 2>/dev/null || true; fi
	  rm -f "/dev/shm/$$name"
	}
	trap cleanup EXIT
	echo "== writer: $$bin/sensors-writer --name $$name --count 40 --interval-ms 100 --unlink"
	echo "== reader: $$bin/sensors-reader --name $$name --count 15"
	"$$bin/sensors-writer" --name "$$name" --count 40 --interval-ms 100 --unlink &
	wpid=$$!
	"$$bin/sensors-reader" --name "$$name" --count 15 --timeout-ms 5000
	echo "== demo done: the reader saw 15 records; segment /$$name removed"
