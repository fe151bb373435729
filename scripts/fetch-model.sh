#!/usr/bin/env bash
# Downloads the official DeepFilterNet3 ONNX export (release asset DeepFilterNet3_onnx.tar.gz of the DeepFilterNet
# project), checks its files against the release's SHA-256 sums, and unpacks enc.onnx, erb_dec.onnx, df_dec.onnx
# and config.ini into DIR (default ./models/DeepFilterNet3). fc25 reads the model from any directory: pass it with
# FC25_MODEL_DIR or --model-dir. FC25_MODEL_URL downloads from elsewhere (a mirror, a file:// URL); the sums must
# still match.
set -euo pipefail
dest=${1:-./models/DeepFilterNet3}
url=${FC25_MODEL_URL:-https://github.com/Rikorose/DeepFilterNet/releases/download/v0.5.6/DeepFilterNet3_onnx.tar.gz}
declare -A sha256=(
  [config.ini]=415eb925d44990d938fb739f514aa3662c1ec0ea836cff044fa1291b82cb4290
  [df_dec.onnx]=23114ce3b0f6464b763ee62f7bb8aab6b2a129a21eabd5bcfe59413db05f278a
  [enc.onnx]=7c5399d3da8a50ebef1c1a0ae421b33376aa5e45d0e92df16da7e83c9c131916
  [erb_dec.onnx]=ab669a1d10afe20911728b33053a452071042317a90581092b325da7b2f9d895
)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading $url"
# One progress line (a bar on a terminal).
if [[ -t 2 || "${FC25_PROGRESS:-}" == 1 ]]; then progress=--progress-bar; else progress=--silent; fi
curl -fL --retry 3 $progress --show-error -o "$tmp/model.tar.gz" "$url"
tar -xzf "$tmp/model.tar.gz" -C "$tmp"
for f in "${!sha256[@]}"; do
  src=$(find "$tmp" -name "$f" -print -quit)
  [[ -n "$src" ]] || { echo "fetch-model: $f is not in the archive" >&2; exit 1; }
  sum=$(sha256sum "$src" | cut -d' ' -f1)
  [[ "$sum" == "${sha256[$f]}" ]] || { echo "fetch-model: $f has SHA-256 $sum, not the release's ${sha256[$f]}" >&2; exit 1; }
done
mkdir -p "$dest"
for f in "${!sha256[@]}"; do cp "$(find "$tmp" -name "$f" -print -quit)" "$dest/$f"; done
echo "fetch-model: model ready in $dest (use FC25_MODEL_DIR=$dest)"
