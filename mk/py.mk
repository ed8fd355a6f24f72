# flexshm-py: the Python package `flexible_shared_memory` (PyO3 + NumPy, built by maturin).
TEST_TARGETS += test-py

# The interpreter .venv is created from (any CPython >= 3.10).
PYTHON ?= python3
PY_PKG := $(ROOT)/flexshm-py
PY_SRC := $(PY_PKG)/python $(PY_PKG)/tests $(ROOT)/examples/python $(ROOT)/flexshm-cli/tests/python
PY_WHEELS := $(ROOT)/target/py-wheels

.PHONY: venv build-py test-py lint-py test-py-numpy1

# Created only when missing; a failed setup removes the half-made venv so the next run
# starts over.
$(VENV):
	trap 'rm -rf "$(VENV)"' ERR
	$(PYTHON) -m venv "$(VENV)"
	"$(VENV)/bin/python" -m pip install --quiet --upgrade pip
	"$(VENV)/bin/python" -m pip install --quiet "maturin>=1.9.4,<2" "numpy>=1.26" pytest mypy ruff
	echo "created $(VENV) with maturin, numpy, pytest, mypy, ruff"

venv: $(VENV) ## create .venv (maturin, numpy, pytest, mypy, ruff) if it is missing

build-py: $(VENV) ## build the flexible-shared-memory wheel from scratch and install it into .venv
	rm -rf "$(PY_WHEELS)"
	nice -n 10 "$(VENV)/bin/maturin" build --release --strip --quiet -m "$(PY_PKG)/Cargo.toml" \
	  -i "$(PY)" --out "$(PY_WHEELS)"
	"$(PY)" -m pip install --quiet --force-reinstall --no-deps "$(PY_WHEELS)"/*.whl
	"$(PY)" -c 'import flexible_shared_memory as m; print("installed", m.__name__, m.__version__, "from", m.__file__)'

lint-py: build-py ## ruff, mypy (package, tests/typing_check.py) and stubtest (stubs against the built module)
	"$(VENV)/bin/ruff" check --config "$(PY_PKG)/pyproject.toml" $(PY_SRC)
	"$(VENV)/bin/ruff" format --check --config "$(PY_PKG)/pyproject.toml" $(PY_SRC)
	cd /tmp && "$(PY)" -m mypy.stubtest flexible_shared_memory --allowlist "$(PY_PKG)/stubtest-allowlist.txt"
	cd "$(ROOT)"
	# typing_check.py pins what a type checker infers (SharedMemory[T], Record[T], ...).
	"$(PY)" -m mypy --strict $(PY_PKG)/python/flexible_shared_memory $(PY_PKG)/tests/typing_check.py

test-py: lint-py ## build the wheel into .venv, lint, check stubs, run the binding's unit tests and the pytest suite
	nice -n 10 $(CARGO) test -p flexshm-py --lib
	# The cross-language tests run the Rust example binaries against Python.
	nice -n 10 $(CARGO) build -p flexshm-examples --bins
	# test_memcheck.py runs a workload under valgrind; required when it can be had.
	if $(MAKE) --no-print-directory valgrind; then
	  export FLEXSHM_REQUIRE_VALGRIND=1
	else
	  echo "!! valgrind is not available (not root or no apt-get): test_memcheck.py is skipped"
	fi
	cd "$(PY_PKG)"
	FLEXSHM_EXAMPLES_BIN="$(ROOT)/target/debug" "$(PY)" -m pytest tests -p no:cacheprovider -rs

PY_NP1_VENV := $(ROOT)/target/venv-numpy1

test-py-numpy1: build-py ## run the pytest suite once more against NumPy 1.26 (own venv)
	[ -d "$(PY_NP1_VENV)" ] || $(PYTHON) -m venv "$(PY_NP1_VENV)"
	"$(PY_NP1_VENV)/bin/python" -m pip install --quiet "numpy==1.26.*" pytest
	"$(PY_NP1_VENV)/bin/python" -m pip install --quiet --force-reinstall --no-deps "$(PY_WHEELS)"/*.whl
	nice -n 10 $(CARGO) build -p flexshm-examples --bins
	cd "$(PY_PKG)"
	"$(PY_NP1_VENV)/bin/python" -c 'import numpy; print("NumPy", numpy.__version__)'
	FLEXSHM_EXAMPLES_BIN="$(ROOT)/target/debug" "$(PY_NP1_VENV)/bin/python" -m pytest tests -p no:cacheprovider -rs
