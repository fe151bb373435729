#!/usr/bin/env bash
# Fuzzing with libFuzzer (clang): builds the fuzz targets of tests/fuzz into build-fuzz (ASan + UBSan), then for
# each target replays every file of tests/fuzz/corpus/<target>/ once and fuzzes it for FC25_FUZZ_SECONDS from there.
# Inputs the fuzzer finds go to a scratch directory, never into the repository. A crash, timeout (10 s) or memory
# blow-up (2 GiB) fails the run; the input is printed (path and hex) so that it can be added to the corpus.
#
#   FC25_FUZZ_SECONDS   fuzzing time per target (default 60; 0: replay the corpus only)
#   FC25_FUZZ_TARGETS   targets to run (default: all, space-separated)
#   FC25_FUZZ_JOBS      targets fuzzed at once (default: the number of cores)
#   FC25_FUZZ_BUILD_DIR build directory (default build-fuzz)
#   FC25_FUZZ_KEEP      a directory to keep the new inputs and logs in (default: a temporary one, removed)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${FC25_FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FC25_FUZZ_SECONDS:-60}
jobs=${FC25_FUZZ_JOBS:-$(nproc)}
read -r -a targets <<<"${FC25_FUZZ_TARGETS:-fuzz_http_request fuzz_presence_message fuzz_check_offer fuzz_wav_repair fuzz_headers fuzz_config fuzz_relay_message fuzz_rtc_datagram}"
started=$SECONDS

if [[ -n ${FC25_FUZZ_KEEP:-} ]]; then
  work=$FC25_FUZZ_KEEP
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/fc25-fuzz.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

echo "== fuzz: building the fuzz targets (clang, ASan + UBSan) in $build"
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
fi
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFC25_FUZZ=ON \
  -DFC25_BUILD_TESTS=OFF -DFC25_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" --target fc25_fuzzers -j"$(nproc)"
build_seconds=$((SECONDS - started))

# Leaks count as crashes; UBSan stops at the first report (the build also makes it abort).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The targets' scratch files (SQLite store, WAV files) on a RAM disk when there is one: repair and SQLite fsync.
scratch=$work
if [[ -d /dev/shm && -w /dev/shm ]]; then
  scratch=$(mktemp -d /dev/shm/fc25-fuzz.XXXXXX)
  trap 'rm -rf "$scratch"; [[ -n ${FC25_FUZZ_KEEP:-} ]] || rm -rf "$work"' EXIT
fi
export TMPDIR=$scratch/tmp
mkdir -p "$TMPDIR"

# run_target NAME: replay, then fuzz; writes $work/NAME.{replay,fuzz}.log and $work/NAME.result
run_target() {
  local name=$1 bin="$root/$build/tests/fuzz/$1" seeds="$root/tests/fuzz/corpus/$1"
  local out="$work/corpus/$name" artifacts="$work/artifacts/$name/" t0=$SECONDS
  mkdir -p "$out" "$artifacts"
  local common=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts")
  local files=("$seeds"/*)
  if ! "$bin" "${common[@]}" -runs=1 "${files[@]}" >"$work/$name.replay.log" 2>&1; then
    echo "replay-crash ${#files[@]} 0 $((SECONDS - t0))" >"$work/$name.result"
    return
  fi
  local execs=0
  if ((seconds > 0)); then
    if ! "$bin" "${common[@]}" -max_total_time="$seconds" "$out" "$seeds" >"$work/$name.fuzz.log" 2>&1; then
      execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.fuzz.log" | tail -1)
      echo "crash ${#files[@]} ${execs:-0} $((SECONDS - t0))" >"$work/$name.result"
      return
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.fuzz.log" | tail -1)
  fi
  echo "ok ${#files[@]} ${execs:-0} $((SECONDS - t0))" >"$work/$name.result"
}

echo "== fuzz: ${#targets[@]} targets, corpus replay then ${seconds} s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
  [[ -x $build/tests/fuzz/$t ]] || { echo "no fuzz target $t in $build/tests/fuzz"; exit 1; }
  [[ -d tests/fuzz/corpus/$t ]] || { echo "no corpus tests/fuzz/corpus/$t"; exit 1; }
  run_target "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

status=0
printf '\n%-24s %-13s %8s %12s %8s\n' target result corpus executions seconds
for t in "${targets[@]}"; do
  read -r result files execs secs <"$work/$t.result" || { result=missing files=0 execs=0 secs=0; }
  printf '%-24s %-13s %8s %12s %8s\n' "$t" "$result" "$files" "$execs" "$secs"
  [[ $result == ok ]] || status=1
done
echo "build ${build_seconds} s, whole run $((SECONDS - started)) s"

# Each failure: the fuzzer's report, then the input that caused it.
for t in "${targets[@]}"; do
  read -r result _ <"$work/$t.result" || result=missing
  [[ $result == ok ]] && continue
  log="$work/$t.fuzz.log"
  [[ $result == replay-crash ]] && log="$work/$t.replay.log"
  echo
  echo "== $t: $result"
  grep -v '^#[0-9]' "$log" | tail -60 || true
  # Replaying a corpus file names it ("Running: path"); the last one started is the one that failed.
  if [[ $result == replay-crash ]]; then
    input=$(sed -n 's/^Running: //p' "$log" | tail -1)
  else
    input=$(find "$work/artifacts/$t" -type f | head -1)
  fi
  if [[ -n ${input:-} && -f $input ]]; then
    kept="$root/$build/fuzz-crashes/$t/$(basename "$input")"
    mkdir -p "$(dirname "$kept")"
    cp "$input" "$kept"
    echo "-- input: $kept ($(stat -c %s "$kept") bytes); add it as tests/fuzz/corpus/$t/<name> once fixed. Hex:"
    od -An -v -tx1 "$kept" | head -c 16384 | tr -d ' \n' | fold -w 128
    echo
  fi
done
exit $status
