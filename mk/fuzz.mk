# cargo-fuzz targets of flexshm-core (fuzz/, docs/FUZZING.md). They need the nightly
# toolchain and cargo-fuzz, which fuzz/run.sh installs when missing. `make fuzz-smoke`
# (part of `make test`) skips with the reason when they cannot be had.
TEST_TARGETS += fuzz-smoke

# Seconds per target: `make fuzz` (4 targets: about 17 minutes plus the build) and the
# smoke run (4 x 15 s).
FUZZ_SECONDS ?= 240
FUZZ_SMOKE_SECONDS ?= 15
# Every fuzz build shares this target dir (a cold build takes a minute or two).
export FUZZ_TARGET_DIR ?= $(ROOT)/target/fuzz
# Logs, failing inputs and the smoke run's scratch corpus.
export FUZZ_WORK ?= $(ROOT)/target/fuzz-work

.PHONY: fuzz fuzz-smoke fuzz-tools fuzz-seeds fuzz-coverage
fuzz-tools: ## install the nightly toolchain and cargo-fuzz if they are missing
	$(ROOT)/fuzz/run.sh tools

fuzz: fuzz-tools ## run every fuzz target FUZZ_SECONDS (240) s, then minimise fuzz/corpus; fails on any crash, timeout or leak
	cargo +nightly fmt --manifest-path $(ROOT)/fuzz/Cargo.toml --check
	$(ROOT)/fuzz/run.sh run $(FUZZ_SECONDS) full

fuzz-smoke: ## every fuzz target FUZZ_SMOKE_SECONDS (15) s on the checked-in corpus; skipped, saying why, without nightly/cargo-fuzz
	@if ! why=$$($(ROOT)/fuzz/run.sh tools); then
	  echo "################################################################################"
	  echo "## fuzz-smoke SKIPPED: $$(tail -n1 <<<"$$why")"
	  echo "## (the fuzz targets need the nightly toolchain and cargo-fuzz; see docs/FUZZING.md)"
	  echo "################################################################################"
	  exit 0
	fi
	echo "$$why"
	if rustup component list --toolchain nightly --installed | grep -q '^rustfmt'; then
	  cargo +nightly fmt --manifest-path $(ROOT)/fuzz/Cargo.toml --check
	fi
	$(ROOT)/fuzz/run.sh run $(FUZZ_SMOKE_SECONDS) smoke

fuzz-seeds: ## regenerate fuzz/seeds from tests/vectors and the harness's schemas
	cd $(ROOT)/fuzz && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR)/seeds nice -n 10 cargo +nightly run -q --example make_seeds

fuzz-coverage: fuzz-tools ## line coverage of flexshm-core reached by the checked-in seeds and corpus (llvm-cov report)
	$(ROOT)/fuzz/run.sh coverage
