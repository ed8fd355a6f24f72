#!/usr/bin/env bash
# Runs the cargo-fuzz targets of flexshm-core; mk/fuzz.mk calls it (docs/FUZZING.md).
#
#   fuzz/run.sh tools             install the nightly toolchain and cargo-fuzz if missing;
#                                 exit 1 with the reason on stdout if that is impossible
#   fuzz/run.sh run SECONDS MODE  build, then run every target SECONDS seconds; MODE
#                                 `full` grows fuzz/corpus/<target> and minimises it
#                                 afterwards, `smoke` leaves the repository untouched
#   fuzz/run.sh coverage          line coverage of flexshm-core over the checked-in inputs
#
# Environment: FUZZ_TARGETS, FUZZ_TARGET_DIR, FUZZ_WORK, FUZZ_TIMEOUT, FUZZ_MAX_LEN,
# FUZZ_RSS_MB, FUZZ_MIN_EXECS, FUZZ_TOOLCHAIN (defaults below).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_DIR=$ROOT/fuzz
TARGETS=${FUZZ_TARGETS:-descriptor_entry open_segment read_buffers mutate_segment}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
TARGET_DIR=${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}
WORK=${FUZZ_WORK:-$ROOT/target/fuzz-work}
TIMEOUT=${FUZZ_TIMEOUT:-10}
MAX_LEN=${FUZZ_MAX_LEN:-8192}
RSS_MB=${FUZZ_RSS_MB:-2048}
TRIPLE=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p' || true)
TRIPLE=${TRIPLE:-x86_64-unknown-linux-gnu}
BIN=$TARGET_DIR/$TRIPLE/release

cargo_fuzz() { nice -n 10 cargo "+$TOOLCHAIN" fuzz "$@"; }

# Prints why the tools are missing and returns 1, or returns 0 with both in place.
tools() {
  if ! command -v rustup >/dev/null 2>&1; then
    echo "rustup is not installed, so the $TOOLCHAIN toolchain cannot be added"
    return 1
  fi
  if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    echo "installing the $TOOLCHAIN toolchain (rustup toolchain install $TOOLCHAIN --profile minimal)"
    if ! rustup toolchain install "$TOOLCHAIN" --profile minimal >&2; then
      echo "rustup could not install the $TOOLCHAIN toolchain (see above)"
      return 1
    fi
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    if ! nice -n 10 cargo install cargo-fuzz --locked >&2; then
      echo "cargo install cargo-fuzz failed (see above)"
      return 1
    fi
  fi
  echo "fuzz tools: $(rustup run "$TOOLCHAIN" rustc --version), $(cargo fuzz --version)"
}

build() {
  echo "== cargo +$TOOLCHAIN fuzz build (release, debug assertions, AddressSanitizer) into $TARGET_DIR"
  (cd "$ROOT" && cargo_fuzz build --target-dir "$TARGET_DIR")
}

# The last value of libFuzzer's `name:` counter (cov, ft, corp) in a log.
last_stat() { grep -oE "$1: [0-9]+" "$2" | tail -n1 | grep -oE '[0-9]+' || echo 0; }

run() {
  local seconds=$1 mode=$2 failed="" total=0 rows=""
  build
  mkdir -p "$WORK"
  for t in $TARGETS; do
    local log=$WORK/$t.log art=$WORK/artifacts/$t/ corpus
    rm -rf "$art" && mkdir -p "$art"
    local inputs=("$FUZZ_DIR/seeds/$t")
    if [ "$mode" = full ]; then
      corpus=$FUZZ_DIR/corpus/$t
    else
      # A scratch corpus: the run reads the checked-in one and changes nothing in git.
      corpus=$WORK/smoke-corpus/$t
      rm -rf "$corpus"
      [ -d "$FUZZ_DIR/corpus/$t" ] && inputs+=("$FUZZ_DIR/corpus/$t")
    fi
    mkdir -p "$corpus"
    echo "== $t: ${seconds}s (per-input timeout ${TIMEOUT}s, max_len $MAX_LEN, rss ${RSS_MB} MB)"
    local rc=0
    nice -n 10 "$BIN/$t" "$corpus" "${inputs[@]}" \
      -max_total_time="$seconds" -timeout="$TIMEOUT" -max_len="$MAX_LEN" \
      -rss_limit_mb="$RSS_MB" -print_final_stats=1 -artifact_prefix="$art" \
      >"$log" 2>&1 || rc=$?
    local execs cov ft corp
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    execs=${execs:-0}
    cov=$(last_stat cov "$log")
    ft=$(last_stat ft "$log")
    corp=$(find "$corpus" -type f | wc -l)
    total=$((total + execs))
    rows+=$(printf '%-18s %12s %9s %7s %7s %8s\n' "$t" "$execs" "$((execs / seconds))" "$cov" "$ft" "$corp")$'\n'
    if [ "$rc" != 0 ] || [ -n "$(ls -A "$art")" ]; then
      failed="$failed $t"
      echo "!! $t FAILED (exit $rc). Last lines of $log:"
      tail -n 40 "$log"
      echo "!! inputs that failed (reproduce: $BIN/$t <file>):"
      ls -l "$art"
    fi
  done
  echo
  printf '%-18s %12s %9s %7s %7s %8s\n' target executions exec/s cov ft corpus
  printf '%s' "$rows"
  printf '%-18s %12s\n' total "$total"
  if [ -n "$failed" ]; then
    echo "fuzz: crash, timeout or leak in:$failed (logs and inputs in $WORK)"
    return 1
  fi
  if [ "$mode" = full ]; then
    for t in $TARGETS; do
      # Edges only (-use_counters=0): one input per newly covered edge, not per hit-count
      # bucket, which keeps the checked-in corpus several times smaller.
      echo "== cargo fuzz cmin $t (keep only inputs that reach new edges)"
      (cd "$ROOT" && cargo_fuzz cmin --target-dir "$TARGET_DIR" "$t" "$FUZZ_DIR/corpus/$t" \
        -- -use_counters=0 -max_len="$MAX_LEN" -timeout="$TIMEOUT" >"$WORK/$t.cmin.log" 2>&1) || {
        tail -n 20 "$WORK/$t.cmin.log"
        return 1
      }
      echo "   $(find "$FUZZ_DIR/corpus/$t" -type f | wc -l) inputs, $(du -sb "$FUZZ_DIR/corpus/$t" | cut -f1) bytes"
    done
    echo "fuzz/corpus: $(du -sb "$FUZZ_DIR/corpus" | cut -f1) bytes in $(find "$FUZZ_DIR/corpus" -type f | wc -l) files (commit it if it changed)"
    local min=${FUZZ_MIN_EXECS:-10000000}
    if [ "$total" -lt "$min" ]; then
      echo "fuzz: only $total executions in total, fewer than FUZZ_MIN_EXECS=$min"
      return 1
    fi
  fi
  echo "fuzz ($mode): $total executions, 0 crashes, 0 timeouts, 0 leaks"
}

coverage() {
  local llvm
  rustup component list --toolchain "$TOOLCHAIN" --installed | grep -q '^llvm-tools' \
    || rustup component add --toolchain "$TOOLCHAIN" llvm-tools-preview
  llvm=$(rustc "+$TOOLCHAIN" --print sysroot)/lib/rustlib/$TRIPLE/bin
  local objects=() profiles=()
  for t in $TARGETS; do
    echo "== cargo fuzz coverage $t"
    local inputs=("$FUZZ_DIR/seeds/$t")
    [ -d "$FUZZ_DIR/corpus/$t" ] && inputs+=("$FUZZ_DIR/corpus/$t")
    (cd "$ROOT" && cargo_fuzz coverage --target-dir "$TARGET_DIR/coverage" "$t" "${inputs[@]}" \
      >"$WORK/$t.coverage.log" 2>&1) || { tail -n 20 "$WORK/$t.coverage.log"; return 1; }
    objects+=("-object" "$TARGET_DIR/coverage/$TRIPLE/release/$t")
    profiles+=("$FUZZ_DIR/coverage/$t/coverage.profdata")
  done
  "$llvm/llvm-profdata" merge -sparse "${profiles[@]}" -o "$WORK/all.profdata"
  echo "== line coverage of flexshm-core/src over every target's seeds and corpus"
  "$llvm/llvm-cov" report "${objects[@]:1}" -instr-profile "$WORK/all.profdata" \
    --ignore-filename-regex='(/\.cargo/|/rustc/|/library/|/fuzz/|flexshm-vectors|loom_tests)' \
    | tee "$WORK/coverage.txt"
}

mkdir -p "$WORK"
case "${1:-}" in
  tools) tools ;;
  run) run "${2:?seconds}" "${3:-full}" ;;
  coverage) coverage ;;
  *) echo "usage: $0 tools | run SECONDS full|smoke | coverage" >&2; exit 2 ;;
esac
