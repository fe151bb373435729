#!/usr/bin/env bash
# Builds fc25 with sanitizers and runs tests under them; a sanitizer report anywhere fails the run.
#   asan: build-asan with AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer; every unit test, then
#         the integration tests (tests/integration) against that server binary.
#   tsan: build-tsan with ThreadSanitizer; the unit tests of the threaded subsystems (live, streams, presence, media, rtc,
#         and the denoise engine's two-thread file path).
# Usage: scripts/sanitize.sh [asan] [tsan]   (default: both). Suppressions (third-party libraries only) are in
# tests/sanitizers/. Prints how long each part took.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
parts=("$@")
((${#parts[@]})) || parts=(asan tsan)
export FC25_SHARED_DIR=${FC25_SHARED_DIR:-$(cd .. && pwd)/shared}
export FC25_MODEL_DIR=${FC25_MODEL_DIR:-$FC25_SHARED_DIR/models/DeepFilterNet3}
supp=$root/tests/sanitizers
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
fi

status=0
timings=()
t0=$SECONDS
lap() {  # lap NAME: records the time since the previous lap
  timings+=("$(printf '%-22s %4d s' "$1" $((SECONDS - t0)))")
  t0=$SECONDS
}

configure() {  # configure DIR SANITIZERS
  # -O1 and line tables only: sanitizer reports need file and line, not full debug info, and the build is the
  # longest part of this step.
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DFC25_SANITIZE="$2" -DFC25_BUILD_BENCH=OFF \
    "${launcher[@]}" >/dev/null
}

# Leaks, use-after-free and overflows abort the process (the test sees it die); undefined behaviour too.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"

for part in "${parts[@]}"; do
  case $part in
    asan)
      dir=build-asan
      echo "== AddressSanitizer + UndefinedBehaviorSanitizer: build ($dir)"
      configure "$dir" address,undefined
      # The server, the engine probe the denoise integration tests run, and every unit test (no benchmarks, no
      # fc25-send: only the media tests use it).
      mapfile -t unit < <(cmake --build "$dir" --target help | sed -n 's/^\.\.\. \([a-z0-9_]*_tests\)$/\1/p')
      cmake --build "$dir" -j"$(nproc)" --target fc25 fc25-denoise-probe "${unit[@]}"
      lap "asan build"
      echo "== AddressSanitizer + UndefinedBehaviorSanitizer: unit tests"
      ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" || status=1
      lap "asan unit tests"
      echo "== AddressSanitizer + UndefinedBehaviorSanitizer: integration tests"
      # Not the three that compare whole files with ONNX Runtime: numbers, not memory, are what they check, and
      # the engine's code runs under ASan in its unit tests.
      mapfile -t node_tests < <(find tests/integration -name '*.test.mjs' | grep -Ev 'denoise_(parity|reference|quality)' | sort)
      # FC25_SANITIZE tells the test harness to stop every server gracefully (so leaks are checked at exit) and to
      # fail on any sanitizer report in a server's output.
      FC25_SANITIZE=address,undefined FC25_BUILD_DIR="$root/$dir" FC25_BIN="$root/$dir/src/app/fc25" \
        scripts/netns-run.sh node --test --test-concurrency=1 "${node_tests[@]}" || status=1
      lap "asan integration tests"
      ;;
    tsan)
      dir=build-tsan
      echo "== ThreadSanitizer: build ($dir)"
      configure "$dir" thread
      mapfile -t unit < <(cmake --build "$dir" --target help |
                          sed -n 's/^\.\.\. \(\(live\|streams\|presence\|media\|rtc\|storage\|denoise_threads\)_tests\)$/\1/p')
      cmake --build "$dir" -j"$(nproc)" --target "${unit[@]}"
      lap "tsan build"
      echo "== ThreadSanitizer: unit tests (${unit[*]})"
      # Only these executables are built: the tests of the others register as <target>_NOT_BUILT.
      ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" -E '_NOT_BUILT$' || status=1
      lap "tsan unit tests"
      ;;
    *) echo "unknown part '$part' (asan, tsan)" >&2; exit 2 ;;
  esac
done
printf '%s\n' "== sanitizer run times" "${timings[@]}"
exit $status
