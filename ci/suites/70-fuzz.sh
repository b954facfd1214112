#!/usr/bin/env bash
# Layer 7: fuzzing (fuzz/, cargo-fuzz). Builds every target and runs them within one time budget
# for the whole layer (FUZZ_BUDGET seconds, default 60, not counting the build), each on a
# scratch copy of its committed seed corpus, so that CI never grows fuzz/corpus/. Runs as many
# targets at once as there are cores; each gets an equal share of the budget (at least 10 s).
# Fails on any crash, printing the crashing input's path and a hex dump; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <input>
# and add it to gateway/tests/fuzz_regressions.rs.
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it take the fuzzing flags.
# Sanitizer: none by default (FUZZ_SANITIZER=address to try ASan); the code is unsafe-free.
# ci-lane: cpu
set -euo pipefail
cd "$(dirname "$0")/../.."

export RUSTC_BOOTSTRAP=1
budget="${FUZZ_BUDGET:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
case "$budget" in '' | *[!0-9]*) echo "FUZZ_BUDGET must be a whole number of seconds, not '$budget'" >&2; exit 2 ;; esac

# The targets, built as `cargo fuzz build -s <sanitizer>` (cargo-fuzz 0.13) builds them, with the
# same flags, but without cargo-fuzz itself, whose installation would cost a cold run minutes of
# compiling: release with line tables and debug assertions, libFuzzer's coverage instrumentation,
# --cfg fuzzing, one codegen unit. `cargo fuzz run` reuses this build.
host=$(rustc -vV | sed -n 's/^host: //p')
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth"
[ "$sanitizer" = none ] || flags+=" -Zsanitizer=$sanitizer"
flags+=" -Cdebug-assertions -Ccodegen-units=1"
RUSTFLAGS="$flags${RUSTFLAGS:+ $RUSTFLAGS}" cargo build --manifest-path fuzz/Cargo.toml --target "$host" \
  --release --config 'profile.release.debug="line-tables-only"' --bins
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -vx gateway-fuzz)
bin_dir="${CARGO_TARGET_DIR:-fuzz/target}/$host/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jobs=$(nproc 2>/dev/null || echo 2)
count=$(echo "$targets" | wc -w)
[ "$count" -gt 0 ] || { echo "fuzz: no targets" >&2; exit 1; }
# Targets run $jobs at a time: ceil(count / jobs) rounds share the budget.
rounds=$(( (count + jobs - 1) / jobs ))
seconds=$(( budget / rounds ))
[ "$seconds" -ge 10 ] || seconds=10
echo "fuzz: $count targets, $jobs at a time, ${seconds}s each (budget ${budget}s)"

run_target() {
  local target="$1" dir="$work/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -R "fuzz/corpus/$target/." "$dir/corpus/"
  fi
  # The binary built above, run directly (`cargo fuzz run` would rebuild per target).
  # libFuzzer exits non-zero on the first crash, leak, timeout or out-of-memory.
  if "$bin_dir/$target" "$dir/corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$dir/artifacts/" -print_final_stats=1 >"$dir/log" 2>&1; then
    echo "fuzz: $target: no crash in ${seconds}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | grep -o '[0-9]*$' || echo '?') runs)"
    return 0
  fi
  echo "fuzz: $target: FAILED" >&2
  grep -m1 -A12 'panicked at' "$dir/log" >&2 || tail -n 40 "$dir/log" >&2
  local input found=0
  for input in "$dir"/artifacts/*; do
    [ -e "$input" ] || continue
    found=1
    mkdir -p ci/artifacts/fuzz
    cp "$input" "ci/artifacts/fuzz/$target-$(basename "$input")"
    echo "fuzz: $target: crashing input ci/artifacts/fuzz/$target-$(basename "$input") ($(wc -c <"$input") bytes):" >&2
    od -A x -t x1z -v "$input" | head -n 64 >&2
  done
  [ "$found" = 1 ] || echo "fuzz: $target: failed without a crashing input (build or setup error?)" >&2
  return 1
}

failed=0
pids=()
names=()
for target in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run_target "$target" &
  pids+=("$!")
  names+=("$target")
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed=1; echo "fuzz: ${names[$i]} failed" >&2; }
done
exit "$failed"
