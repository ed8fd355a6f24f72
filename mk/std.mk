# flexshm-std (named POSIX segments) and the Rust examples; `make demo`.
TEST_TARGETS += test-std

# Where cargo puts the example binaries.
STD_BIN = $${CARGO_TARGET_DIR:-$(ROOT)/target}/debug

.PHONY: test-std demo valgrind
valgrind: ## install valgrind with apt if it is missing (needs root); test-std and test-py run code under it
	@if command -v valgrind >/dev/null 2>&1; then
	  echo "valgrind: $$(valgrind --version)"
	  exit 0
	fi
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	  echo "valgrind missing: installing it with apt-get"
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends valgrind || true
	fi
	command -v valgrind >/dev/null 2>&1

test-std: ## flexshm-std + examples: unit, multi-process and doc tests (unit and integration tests once more under valgrind's memcheck), clippy, cargo doc -D warnings
	$(CARGO) clippy -p flexshm-std -p flexshm-examples --no-deps --all-targets -- -D warnings
	memcheck=0
	if $(MAKE) --no-print-directory valgrind; then
	  export FLEXSHM_REQUIRE_VALGRIND=1
	  memcheck=1
	else
	  echo "!! valgrind is not available (not root or no apt-get): sensors_pair_under_valgrind checks nothing and flexshm-std's tests do not run under memcheck"
	fi
	$(CARGO) test -p flexshm-std -p flexshm-examples
	if [ "$$memcheck" = 1 ]; then
	  # cargo runs every test binary through the target's runner: here memcheck, which
	  # fails a binary on any invalid access or use of uninitialised memory.
	  host="$$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z.-' 'A-Z__')"
	  echo "== flexshm-std's unit and integration tests again, each binary under valgrind memcheck"
	  env "CARGO_TARGET_$${host}_RUNNER=valgrind -q --error-exitcode=97" $(CARGO) test -p flexshm-std --tests
	fi
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
