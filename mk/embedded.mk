# Embedded: flexshm-core firmware under QEMU (thumbv7m on lm3s6965evb, thumbv6m on
# microbit). The firmware crate is its own cargo workspace in examples/embedded.
TEST_TARGETS += test-embedded

EMBEDDED_DIR := $(ROOT)/examples/embedded
# target:QEMU machine, one pair per firmware run.
EMBEDDED_RUNS := thumbv7m-none-eabi:lm3s6965evb thumbv6m-none-eabi:microbit
# Seconds one firmware run may take before it counts as hung (it needs a few).
EMBEDDED_TIMEOUT ?= 120
# Set to 1 to build the firmware but not run it when qemu-system-arm cannot be had
# (not root, no apt). Without it that situation FAILS the test target.
EMBEDDED_ALLOW_NO_QEMU ?= 0
QEMU_ARM ?= qemu-system-arm

.PHONY: qemu-arm build-embedded lint-embedded test-embedded size-embedded

qemu-arm: ## install qemu-system-arm with apt if it is missing (needs root)
	@if command -v $(QEMU_ARM) >/dev/null 2>&1; then
	  echo "qemu-system-arm: $$($(QEMU_ARM) --version | head -n1)"
	  exit 0
	fi
	why=""
	if [ "$$(id -u)" != 0 ]; then why="not running as root (uid $$(id -u))"
	elif ! command -v apt-get >/dev/null 2>&1; then why="apt-get not found"
	else
	  echo "qemu-system-arm missing: installing it with apt-get"
	  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-arm; }; then
	    why="apt-get install qemu-system-arm failed (see above)"
	  fi
	fi
	if [ -z "$$why" ] && command -v $(QEMU_ARM) >/dev/null 2>&1; then exit 0; fi
	echo "################################################################################"
	echo "## qemu-system-arm is NOT available: $${why:-installed but not on PATH}"
	echo "## The embedded firmware cannot run. Install it (apt-get install qemu-system-arm)"
	echo "## or run with EMBEDDED_ALLOW_NO_QEMU=1 to build the firmware without running it."
	echo "################################################################################"
	exit 1

build-embedded: setup-rust ## build both firmwares, the size probes and the defmt demo (release)
	@cd $(EMBEDDED_DIR)
	for run in $(EMBEDDED_RUNS); do
	  $(CARGO) build --release --target "$${run%%:*}" --bins
	  $(CARGO) build --release --target "$${run%%:*}" --features defmt --bin defmt-demo
	done

lint-embedded: setup-rust ## rustfmt --check and clippy -D warnings on the firmware crate
	@cd $(EMBEDDED_DIR)
	$(CARGO) fmt --check
	for run in $(EMBEDDED_RUNS); do
	  $(CARGO) clippy --release --target "$${run%%:*}" --bins -- -D warnings
	  $(CARGO) clippy --release --target "$${run%%:*}" --features defmt --bin defmt-demo -- -D warnings
	done

test-embedded: lint-embedded build-embedded ## run the firmware under QEMU on lm3s6965evb (M3) and microbit (M0)
	@if ! $(MAKE) --no-print-directory qemu-arm; then
	  if [ "$(EMBEDDED_ALLOW_NO_QEMU)" = 1 ]; then
	    echo "!! EMBEDDED_ALLOW_NO_QEMU=1: firmware built, NOT run (no qemu-system-arm)."
	    exit 0
	  fi
	  exit 1
	fi
	failed=""
	for run in $(EMBEDDED_RUNS); do
	  target="$${run%%:*}"; machine="$${run##*:}"
	  elf="$(EMBEDDED_DIR)/target/$$target/release/flexshm-embedded"
	  log="$$(mktemp)"
	  echo "--- firmware $$target on QEMU $$machine"
	  status=0
	  timeout $(EMBEDDED_TIMEOUT) $(QEMU_ARM) -machine "$$machine" -nographic \
	    -semihosting-config enable=on,target=native -kernel "$$elf" 2>&1 | tee "$$log" || status=$$?
	  if [ "$$status" = 124 ]; then echo "!! $$machine: no result within $(EMBEDDED_TIMEOUT) s (hung)"; fi
	  if ! grep -qE '^[0-9]+ passed, 0 failed$$' "$$log"; then
	    echo "!! $$machine: no closing 'N passed, 0 failed' line"
	    if [ "$$status" = 0 ]; then status=1; fi
	  fi
	  rm -f "$$log"
	  if [ "$$status" != 0 ]; then
	    echo "!! firmware $$target on $$machine FAILED (exit status $$status)"
	    failed="$$failed $$machine"
	  else
	    echo "--- firmware $$target on $$machine passed (exit status 0)"
	  fi
	done
	if [ -n "$$failed" ]; then echo "embedded FAILED on:$$failed"; exit 1; fi

size-embedded: build-embedded ## .text/.rodata/.bss of the size probes: SensorData without flexshm, with writer+reader, writer only, reader only
	@cd $(EMBEDDED_DIR)
	tool=$$(command -v llvm-size || command -v arm-none-eabi-size || true)
	if [ -z "$$tool" ]; then echo "no llvm-size or arm-none-eabi-size on PATH"; exit 1; fi
	text() { "$$tool" -A "$$1" | awk '$$1==".text"{print $$2}'; }
	sections() { "$$tool" -A "$$1" | awk '$$1==".text"||$$1==".rodata"||$$1==".bss"{printf "%s=%s ", $$1, $$2}'; }
	for run in $(EMBEDDED_RUNS); do
	  target="$${run%%:*}"; dir="target/$$target/release"
	  base=$$(text $$dir/size-base)
	  printf '%-20s %-30s %s\n' "$$target" "size-base" "$$(sections $$dir/size-base)"
	  for f in "" size-writer-only size-reader-only; do
	    $(CARGO) build -q --release --target "$$target" --bin size-flexshm $${f:+--features $$f}
	    t=$$(text $$dir/size-flexshm)
	    printf '%-20s %-30s %s flexshm .text: +%s B\n' "$$target" "size-flexshm $${f:-(writer+reader)}" "$$(sections $$dir/size-flexshm)" "$$((t - base))"
	  done
	  # Leave the default probe built.
	  $(CARGO) build -q --release --target "$$target" --bin size-flexshm
	done
