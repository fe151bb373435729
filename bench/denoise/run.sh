#!/usr/bin/env bash
# The denoise engine and ONNX Runtime side by side, in one run, on the same 10 s recording.
#   bench/denoise/run.sh [BUILD_DIR [BENCHMARK_OPTIONS...]]
# FC25_ISA (avx512 | avx2 | portable) and FC25_PRECISION (fp32 | bf16) choose the engine's kernels and weights;
# options after the build directory go to the benchmark (e.g. --benchmark_filter=...).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
shift || true
SHARED=${FC25_SHARED_DIR:-$(cd .. && pwd)/shared}
MODEL=${FC25_MODEL_DIR:-$SHARED/models/DeepFilterNet3}
FILE=$SHARED/audio/dns/A2CH4HRFV27II2_M_AirCon_Near_Regular_SP_Mobile_Primary_noisy.wav
FEAT=$(mktemp -d); trap 'rm -rf "$FEAT"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
FC25_MODEL_DIR=$MODEL FC25_SHARED_DIR=$SHARED "$BUILD/bench/denoise/denoise_bench" --benchmark_min_time=2 "$@"
"$BUILD/tools/denoise-probe/fc25-denoise-probe" features "$FILE" "$FEAT"
echo "ONNX Runtime, three graphs only, one intra-op thread:"
node tools/reference/ort-bench.mjs --model "$MODEL" --in "$FEAT"
