# flexshm-core and flexshm-vectors: lint, MCU builds, unit / property / stress / fuzz /
# golden-vector tests and the loom models (seconds once built, about 2 minutes to build
# cold); Miri has its own target (about 10 minutes).
TEST_TARGETS += test-core

# Loom builds the core with `--cfg loom` in its own target dir, so switching between
# `make loom` and the normal build does not rebuild everything each time.
LOOM_TARGET_DIR ?= $(ROOT)/target/loom
# Preemption bound of the loom models (see flexshm-core/src/loom_tests.rs).
LOOM_MAX_PREEMPTIONS ?= 2

# The minimum supported Rust version, as declared in the workspace Cargo.toml.
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' $(ROOT)/Cargo.toml)
MSRV_TARGET_DIR ?= $(ROOT)/target/msrv

.PHONY: test-core build-mcu vectors loom miri msrv
build-mcu: setup-rust ## build and clippy flexshm-core (plain, defmt, no default features) and flexshm-vectors for the MCU targets
	for t in $(MCU_TARGETS); do
	  $(CARGO) build -p flexshm-core --target $$t
	  $(CARGO) build -p flexshm-core --target $$t --features defmt
	  $(CARGO) build -p flexshm-core --target $$t --no-default-features
	  $(CARGO) clippy -q -p flexshm-core --target $$t --all-features -- -D warnings
	  $(CARGO) build -p flexshm-vectors --target $$t
	  echo "built flexshm-core (plain, defmt, no default features) and flexshm-vectors for $$t"
	done

test-core: lint build-mcu msrv ## flexshm-core + flexshm-vectors tests: unit, proptest model, stress, fuzz, golden vectors, loom
	$(CARGO) test -p flexshm-core -p flexshm-vectors
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p flexshm-core --no-deps
	echo "cargo doc -p flexshm-core: no warnings"
	$(MAKE) --no-print-directory loom
	echo "test-core: Miri is not part of this target (about 10 minutes): run 'make miri'"

vectors: ## regenerate tests/vectors/*.bin from flexshm-vectors (deliberate protocol changes only)
	BLESS=1 $(CARGO) test -p flexshm-vectors --test golden vectors_match -- --nocapture
	git -C $(ROOT) status --short -- tests/vectors

loom: ## model-check the seqlock and the FIFO index protocol with loom (release build, a few minutes)
	LOOM_MAX_PREEMPTIONS=$(LOOM_MAX_PREEMPTIONS) RUSTFLAGS="--cfg loom" \
	  CARGO_TARGET_DIR=$(LOOM_TARGET_DIR) \
	  $(CARGO) test -p flexshm-core --release --lib loom

miri: ## run the flexshm-core tests under Miri (nightly; iteration counts shrink under cfg(miri))
	rustup component list --toolchain nightly --installed | grep -q '^miri' \
	  || rustup component add --toolchain nightly miri rust-src
	$(CARGO) +nightly miri test -p flexshm-core

msrv: ## build the library crates with the declared minimum Rust version (installs it with rustup)
	rustup toolchain list | grep -q "^$(MSRV)-" \
	  || rustup toolchain install $(MSRV) --profile minimal
	CARGO_TARGET_DIR=$(MSRV_TARGET_DIR) nice -n 10 $(CARGO) +$(MSRV) check \
	  -p flexshm-core -p flexshm-std -p flexshm-vectors -p flexshm-cli -p flexshm-examples
	echo "msrv: flexshm-core, flexshm-std, flexshm-vectors, flexshm-cli and the examples build with Rust $(MSRV)"
