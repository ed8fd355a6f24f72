# flexshm-core: lint, unit/property/stress tests, MCU builds.
TEST_TARGETS += test-core

.PHONY: test-core build-mcu
build-mcu: setup-rust ## build flexshm-core for the MCU targets, with and without defmt
	for t in $(MCU_TARGETS); do
	  $(CARGO) build -p flexshm-core --target $$t
	  $(CARGO) build -p flexshm-core --target $$t --features defmt
	  echo "built flexshm-core for $$t (plain and defmt)"
	done

test-core: lint build-mcu ## flexshm-core tests (unit, property, stress, vectors)
	$(CARGO) test -p flexshm-core
