#!/usr/bin/env bash
# One command: install what is needed, build, and serve fc25 at http://127.0.0.1:8000
# on the embedded defaults (SQLite file in ./var, in-memory channel layer). Extra arguments go to `fc25 serve`.
#
# The DeepFilterNet3 model is taken from FC25_MODEL_DIR, else ../shared/models/DeepFilterNet3, else
# ./models/DeepFilterNet3. When none is there, it offers to download the official one (FC25_FETCH_MODEL=1: without
# asking; =0: never); without it the server starts with the classic noise suppressor and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
has_model() { for f in enc.onnx erb_dec.onnx df_dec.onnx config.ini; do [[ -f "$1/$f" ]] || return 1; done; }
if [[ -z "${FC25_MODEL_DIR:-}" ]]; then
  if has_model ../shared/models/DeepFilterNet3; then FC25_MODEL_DIR=$(cd ../shared/models/DeepFilterNet3 && pwd)
  else FC25_MODEL_DIR=$PWD/models/DeepFilterNet3; fi
fi
export FC25_MODEL_DIR
if ! has_model "$FC25_MODEL_DIR" && [[ "${FC25_DENOISER:-dfn3}" == dfn3 ]]; then
  fetch=${FC25_FETCH_MODEL:-ask}
  if [[ "$fetch" == ask ]]; then
    fetch=0
    if [[ -t 0 ]]; then
      read -r -p "run: no DeepFilterNet3 model in $FC25_MODEL_DIR. Download the official one (about 8 MB)? [Y/n] " answer
      [[ "$answer" =~ ^([Yy].*)?$ ]] && fetch=1
    fi
  fi
  why=
  if [[ "$fetch" == 1 ]]; then
    log=$(mktemp)
    [[ -t 2 ]] && export FC25_PROGRESS=1
    if ! scripts/fetch-model.sh "$FC25_MODEL_DIR" 2>&1 | tee "$log"; then
      why=$(tr '\r' '\n' < "$log" | grep -v -e '^fetch-model: downloading' -e '^[#[:space:]]*[0-9.]*%*$' | tail -n 1)
    fi
    rm -f "$log"
  fi
  if ! has_model "$FC25_MODEL_DIR"; then
    reason=${why:+ ($why)}
    [[ "$fetch" == 1 ]] || reason=" (scripts/fetch-model.sh downloads it; FC25_FETCH_MODEL=1 lets this script do it)"
    echo "run: no DeepFilterNet3 model${reason}. Starting with the classic noise suppressor."
  fi
fi
exec ./build/src/app/fc25 serve "$@"
