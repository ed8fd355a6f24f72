#!/usr/bin/env bash
# Runs every flexshm benchmark and prints the tables (markdown) to stdout.
#
#   bench/run.sh full    # the numbers in BENCHMARKS.md (about 10 minutes)
#   bench/run.sh quick   # the same sections, shorter (a few minutes)
#   bench/run.sh smoke   # builds everything and runs the smallest case once (CI)
#
# Environment: PY (the Python with flexible_shared_memory installed; default .venv),
# CARGO, CARGO_TARGET_DIR (default bench/target). The Rust benchmarks build in release
# mode, except in smoke mode (debug, to keep CI short). Peers that cannot be built or
# installed are reported, not hidden.
set -euo pipefail
mode=${1:-quick}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PY=${PY:-$root/.venv/bin/python}
CARGO=${CARGO:-cargo}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
cd "$here"

case $mode in
full)
  crit=(--warm-up-time 1 --measurement-time 4)
  lat_small=(--blocks 200 --iters 1000)
  lat_image=(--blocks 60 --iters 10)
  fifo_small=(--blocks 20 --block-ms 100)
  fifo_image=(--blocks 10 --block-ms 200)
  wake=(--blocks 10 --iters 40 --idle-runs 3)
  cost=(--blocks 50 --commits 50000)
  py=()
  ;;
quick)
  crit=(--warm-up-time 0.3 --measurement-time 1)
  lat_small=(--blocks 50 --iters 500)
  lat_image=(--blocks 15 --iters 10)
  fifo_small=(--blocks 6 --block-ms 100)
  fifo_image=(--blocks 4 --block-ms 100)
  wake=(--blocks 4 --iters 25 --idle-runs 2)
  cost=(--blocks 20 --commits 20000)
  py=(--quick)
  ;;
smoke)
  lat_small=(--blocks 1 --iters 5)
  lat_image=(--blocks 1 --iters 2)
  fifo_small=(--blocks 1 --block-ms 10)
  fifo_image=(--blocks 1 --block-ms 10)
  wake=(--blocks 1 --iters 2 --gap-us 500 --idle-runs 1)
  cost=(--blocks 1 --commits 100)
  py=(--smoke)
  ;;
*)
  echo "usage: $0 full|quick|smoke" >&2
  exit 2
  ;;
esac

# The iceoryx2 crate generates bindings with libclang at build time. Without libclang
# the benchmarks build without that peer, and its tables say so.
features=()
if [ -z "${LIBCLANG_PATH:-}" ] && ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
  features=(--no-default-features)
fi

echo "# flexshm benchmarks ($mode run)"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) online CPUs ($(grep -c '^processor' /proc/cpuinfo) in /proc/cpuinfo)"
echo "- kernel: $(uname -srm); clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"
echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- Rust: $($CARGO --version); Python: $("$PY" --version 2>&1)"
if [ ${#features[@]} -gt 0 ]; then
  echo "- iceoryx2 (Rust) not built: libclang is missing (Debian: libclang-dev and clang; \`make bench-deps\` as root installs them)"
fi
echo

if [ "$mode" = smoke ]; then
  nice -n 10 "$CARGO" build --quiet "${features[@]}" --bins --benches
  bin=$CARGO_TARGET_DIR/debug
  # criterion in test mode: every benchmark function runs once.
  nice -n 10 "$CARGO" test --quiet "${features[@]}" --benches
else
  nice -n 10 "$CARGO" build --quiet "${features[@]}" --release --bins --benches
  bin=$CARGO_TARGET_DIR/release
fi

echo "## Rust"
echo
if [ "$mode" != smoke ]; then
  "$CARGO" bench --quiet "${features[@]}" --bench inprocess -- "${crit[@]}" 2>/dev/null | sed -n '/^### /,$p'
fi
"$bin/xproc" latency --payload small "${lat_small[@]}"
"$bin/xproc" latency --payload image "${lat_image[@]}"
"$bin/xproc" fifo --payload small "${fifo_small[@]}"
"$bin/xproc" fifo --payload image "${fifo_image[@]}"
"$bin/xproc" wake "${wake[@]}"
"$bin/xproc" commit-cost "${cost[@]}"

echo "## Python"
echo
pydeps=$CARGO_TARGET_DIR/pydeps
if [ ! -d "$pydeps/iceoryx2" ]; then
  "$PY" -m pip install --quiet --target "$pydeps" "iceoryx2==0.10.0" >&2 ||
    echo "(iceoryx2's Python package could not be installed from PyPI; its rows are missing)"
fi
PYTHONPATH=$pydeps "$PY" "$here/python/bench.py" "${py[@]}"
