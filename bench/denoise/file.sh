#!/usr/bin/env bash
# `fc25 denoise` on files against ONNX Runtime's offline run of the three graphs alone, in one run:
#  1. one long file (the 10 s DNS recording twelve times, 48 kHz, 2 min): fc25's wall clock, whole command (read,
#     resample, denoise, write), best of three, fp32 (on two threads, and on one) and bf16; ONNX Runtime offline (one call per graph over all
#     frames, one intra-op thread) on the same file's features, median of seven;
#  2. a directory (every recording in ../shared/audio, one file per core): wall clock against the long file's
#     real-time factor on one thread x total audio / cores.
#   bench/denoise/file.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SHARED=${FC25_SHARED_DIR:-$(cd .. && pwd)/shared}
MODEL=${FC25_MODEL_DIR:-$SHARED/models/DeepFilterNet3}
FC25=$BUILD/src/app/fc25
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
sox "$SHARED/audio/dns/A2CH4HRFV27II2_M_AirCon_Near_Regular_SP_Mobile_Primary_noisy.wav" -r 48000 "$WORK/long.wav" repeat 11
LONG_S=$(soxi -D "$WORK/long.wav")
ISA_ARGS=(); [[ -n "${FC25_ISA:-}" ]] && ISA_ARGS=(--isa "$FC25_ISA")
# The kernels fc25 chose, as it reports them for a file.
ENGINE=$("$FC25" denoise "$SHARED/audio/voicebank/p232_013_noisy.wav" "$WORK/probe.wav" --model "$MODEL" "${ISA_ARGS[@]}" 2>&1 |
         sed -n 's/.*, dfn3 (\([a-z0-9]*\) kernels.*/\1/p')
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; kernels: $ENGINE"
now() { date +%s.%N; }
best_of_3() {   # seconds of the fastest of three runs of the command
  local best=1e9
  for _ in 1 2 3; do
    local t0; t0=$(now); "$@" > /dev/null 2>&1; local t1; t1=$(now)
    best=$(echo "$t1 $t0 $best" | awk '{d = $1 - $2; print (d < $3 ? d : $3)}')
  done
  echo "$best"
}
FP32=$(best_of_3 "$FC25" denoise "$WORK/long.wav" "$WORK/out.wav" --float --quiet --model "$MODEL" "${ISA_ARGS[@]}")
ONE=$(best_of_3 "$FC25" denoise "$WORK/long.wav" "$WORK/out.wav" --float --quiet --model "$MODEL" --threads-per-file 1 "${ISA_ARGS[@]}")
BF16=$(best_of_3 "$FC25" denoise "$WORK/long.wav" "$WORK/out.wav" --float --quiet --model "$MODEL" --precision bf16 "${ISA_ARGS[@]}")
"$BUILD/tools/denoise-probe/fc25-denoise-probe" features "$WORK/long.wav" "$WORK/feat" > /dev/null
ORT=$(node tools/reference/ort-bench.mjs --model "$MODEL" --in "$WORK/feat" --offline-only | sed -E 's/.*"offline_seconds":([0-9.e-]+).*/\1/')
awk -v a="$LONG_S" -v f="$FP32" -v b="$BF16" -v o="$ORT" -v one="$ONE" 'BEGIN {
  printf "one file, %.1f s of audio:\n", a
  printf "  fc25 denoise, fp32 (whole command)         %.3f s  RTF %.4f\n", f, f / a
  printf "  fc25 denoise, fp32, one thread             %.3f s  RTF %.4f\n", one, one / a
  printf "  fc25 denoise, bf16 (whole command)         %.3f s  RTF %.4f\n", b, b / a
  printf "  ONNX Runtime offline, three graphs only    %.3f s  RTF %.4f\n", o, o / a
  printf "  fc25 fp32 is %.2fx faster than ONNX Runtime offline; bf16 %.2fx\n", o / f, o / b }'
mkdir -p "$WORK/dir" "$WORK/outdir"
cp "$SHARED"/audio/*/*.wav "$WORK/dir/"
DIR_S=$(for f in "$WORK"/dir/*.wav; do soxi -D "$f"; done | awk '{s += $1} END {print s}')
FILES=$(ls "$WORK/dir" | wc -l)
DIRT=$(best_of_3 "$FC25" denoise "$WORK/dir" --out-dir "$WORK/outdir" --float --quiet --model "$MODEL" "${ISA_ARGS[@]}")
awk -v s="$DIR_S" -v n="$FILES" -v t="$DIRT" -v f="$ONE" -v a="$LONG_S" -v c="$(nproc)" 'BEGIN {
  e = s * (f / a) / c
  printf "a directory, %d files, %.1f s of audio, fp32, %d at once: %.3f s; expected from the long file on one thread %.3f s (%+.0f %%)\n",
    n, s, c, t, e, 100 * (t - e) / e }'
