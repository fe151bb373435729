#!/usr/bin/env bash
# One command: install what is needed, build, and run every test (unit tests with ctest, then the
# integration and browser tests with node's test runner against real server processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
export FC25_BUILD_DIR="$PWD/build"
export FC25_BIN="$FC25_BUILD_DIR/src/app/fc25"
export FC25_SHARED_DIR=${FC25_SHARED_DIR:-$(cd .. && pwd)/shared}
export FC25_MODEL_DIR=${FC25_MODEL_DIR:-$FC25_SHARED_DIR/models/DeepFilterNet3}

status=0
echo "== unit tests (ctest)"
ctest --test-dir build --output-on-failure -j"$(nproc)" || status=1

echo "== fuzzing (libFuzzer: every corpus input, then ${FC25_FUZZ_SECONDS:-60} s per target)"
scripts/fuzz.sh || status=1

echo "== sanitizers (AddressSanitizer + UndefinedBehaviorSanitizer, ThreadSanitizer)"
scripts/sanitize.sh || status=1

echo "== integration tests again, on PostgreSQL (one test cluster; each server a database of its own)"
# The tests that exercise the store through the API; tests/integration/postgres.test.mjs (in the pass below)
# covers what only PostgreSQL does: the database stopped and started under a running server.
pg_dir=$(mktemp -d)/cluster
if pg_url=$(tests/support/postgres.sh up "$pg_dir"); then
  pg_tests=()
  for t in accounts friends streams presence presence_sessions multiprocess registration shutdown recordings_keep \
           recording_download bad_input hostile_input; do pg_tests+=("tests/integration/$t.test.mjs"); done
  FC25_TEST_POSTGRES_URL=$pg_url node --test --test-concurrency=1 "${pg_tests[@]}" || status=1
  tests/support/postgres.sh down "$pg_dir"
else
  echo "PostgreSQL did not start"; status=1
  tests/support/postgres.sh down "$pg_dir" || true
fi
rm -rf "$(dirname "$pg_dir")"

echo "== integration, media and browser tests (node --test, in a private network namespace)"
mapfile -t node_tests < <(find tests/integration tests/media tests/e2e tests/tools -name '*.test.mjs' 2>/dev/null | sort)
if ((${#node_tests[@]})); then
  # WebRTC between the browser (or the test client) and the server needs an interface other than lo; the
  # namespace gives it one that reaches nothing outside. Everything else the tests start stays on loopback.
  scripts/netns-run.sh node --test --test-concurrency=1 "${node_tests[@]}" || status=1
else
  echo "no node tests found"; status=1
fi
exit $status
