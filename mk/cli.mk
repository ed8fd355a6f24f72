# flexshm-cli: the `flexshm` command-line tool (ls, show, watch, hz, rm, bridge); `make demo-cli`.
TEST_TARGETS += test-cli

.PHONY: install-cli cli-tmux test-cli demo-cli

install-cli: ## install the flexshm command into ~/.cargo/bin (cargo install --path flexshm-cli)
	$(CARGO) install --locked --path "$(ROOT)/flexshm-cli"

cli-tmux: ## install tmux with apt if it is missing (needs root); the live-view test runs in it
	@if command -v tmux >/dev/null 2>&1; then exit 0; fi
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	  echo "tmux missing: installing it with apt-get"
	  apt-get update -qq
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null
	fi
	command -v tmux >/dev/null 2>&1

# Python-written segments and a Python reader of a bridge's mirror are part of the tests:
# build-py puts the wheel into .venv, and FLEXSHM_CLI_REQUIRE_PY=1 makes a missing
# interpreter a failure, not a skip.
test-cli: build-py ## flexshm-cli: rustfmt, clippy (with and without the bridge), unit and integration tests (Rust and Python writers, bridge end to end with a Python reader), live view in tmux
	@$(CARGO) fmt --check -p flexshm-cli
	# BRIDGE_PKGS (mk/zenoh.mk): the CLI and flexshm-zenoh always together, one build of Zenoh.
	nice -n 10 $(CARGO) clippy $(BRIDGE_PKGS) --all-targets -- -D warnings
	nice -n 10 $(CARGO) clippy -p flexshm-cli --no-default-features --all-targets -- -D warnings
	require_tmux=1
	if ! $(MAKE) --no-print-directory cli-tmux; then
	  require_tmux=0
	  echo "################################################################################"
	  echo "## test-cli: tmux is missing and cannot be installed here (not root, or no"
	  echo "## apt-get): the live-view test in a terminal is SKIPPED. apt-get install tmux"
	  echo "################################################################################"
	fi
	echo "test-cli: cargo test $(CLI_TESTS) (FLEXSHM_CLI_REQUIRE_PY=1 FLEXSHM_CLI_REQUIRE_TMUX=$$require_tmux)"
	FLEXSHM_CLI_REQUIRE_PY=1 FLEXSHM_CLI_REQUIRE_TMUX=$$require_tmux \
	  nice -n 10 $(CARGO) test $(BRIDGE_PKGS) $(CLI_TESTS)

demo-cli: ## the flexshm CLI next to a writer and a reader: ls, show, hz, watch --json, a crashed writer, rm --stale
	@echo "== building the examples and the CLI"
	$(CARGO) build -q -p flexshm-examples -p flexshm-cli --bins
	bin="$(STD_BIN)"
	name="flexshm-demo-cli-$$$$"
	fifo="flexshm-demo-cli-fifo-$$$$"
	wpid=""; fpid=""
	# Whatever happens, stop the writers and remove the segments.
	cleanup() {
	  for p in $$wpid $$fpid; do kill -9 "$$p" 2>/dev/null || true; wait "$$p" 2>/dev/null || true; done
	  rm -f "/dev/shm/$$name" "/dev/shm/$$fifo"
	}
	trap cleanup EXIT
	flexshm() { "$$bin/flexshm" "$$@"; }
	step() { echo; echo "\$$ $$*"; "$$@"; }
	echo "== writer:   sensors-writer --name $$name --interval-ms 100 (single-slot)"
	echo "== producer: fifo-producer --name $$fifo --interval-ms 20 (FIFO, 16 slots)"
	"$$bin/sensors-writer" --name "$$name" --interval-ms 100 >/dev/null &
	wpid=$$!
	"$$bin/fifo-producer" --name "$$fifo" --interval-ms 20 --count 0 >/dev/null &
	fpid=$$!
	# The reader waits for the segment and its first records.
	step "$$bin/sensors-reader" --name "$$name" --count 3 --timeout-ms 5000
	step flexshm ls --match "flexshm-demo-cli-*"
	step flexshm show "$$name"
	step flexshm hz "$$name" --count 2
	step flexshm watch "$$name" --json --count 2
	step flexshm watch "$$fifo" --json --count 3
	echo; echo "== the sensors writer crashes (kill -9): its segment stays, with a dead writer"
	kill -9 "$$wpid"; wait "$$wpid" 2>/dev/null || true; wpid=""
	step flexshm ls --match "flexshm-demo-cli-*"
	step flexshm rm --stale --match "flexshm-demo-cli-*"
	step flexshm rm "$$fifo" || echo "(refused: the producer is alive; exit status $$?)"
	step flexshm ls --match "flexshm-demo-cli-*"
	echo; echo "== demo done. The live view: $$bin/flexshm watch NAME in a terminal (q quits)"
