#!/usr/bin/env bash
# One command: install what is needed, build, and serve fc25 at http://127.0.0.1:8000
# on the embedded defaults (SQLite file in ./var, in-memory channel layer). Extra arguments go to `fc25 serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
if [[ -z "${FC25_MODEL_DIR:-}" && -d ../shared/models/DeepFilterNet3 ]]; then
  export FC25_MODEL_DIR=$(cd ../shared/models/DeepFilterNet3 && pwd)
fi
exec ./build/src/app/fc25 serve "$@"
