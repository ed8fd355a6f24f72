# flexshm — every command of the project lives here; `make help` lists them.
# Topic targets live in mk/*.mk, each adding its test target to TEST_TARGETS.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV ?= $(ROOT)/.venv
PY := $(VENV)/bin/python
CARGO ?= cargo
# Targets the core must build for without any portable-atomic feature.
MCU_TARGETS := thumbv6m-none-eabi thumbv7em-none-eabihf riscv32imc-unknown-none-elf

TEST_TARGETS :=
include $(sort $(wildcard mk/*.mk))

.PHONY: help test setup-rust lint
help: ## list the commands
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup-rust: ## add the rustup targets the tests need
	@installed=$$(rustup target list --installed)
	for t in $(MCU_TARGETS) thumbv7m-none-eabi; do
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"
	done

lint: ## cargo fmt --check and clippy -D warnings over the workspace
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: ## run the whole test suite (what CI runs)
	@failed=""
	for t in $(TEST_TARGETS); do
	  echo "=== make $$t"
	  if ! $(MAKE) --no-print-directory $$t; then failed="$$failed $$t"; fi
	done
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi
	echo "all test targets passed: $(TEST_TARGETS)"
