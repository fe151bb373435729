#!/usr/bin/env bash
# Downloads the official DeepFilterNet3 ONNX export (release asset DeepFilterNet3_onnx.tar.gz of the DeepFilterNet
# project) and unpacks enc.onnx, erb_dec.onnx, df_dec.onnx and config.ini into DIR (default ./models/DeepFilterNet3).
# fc25 reads the model from any directory: pass it with FC25_MODEL_DIR or --model-dir.
set -euo pipefail
dest=${1:-./models/DeepFilterNet3}
url=${FC25_MODEL_URL:-https://github.com/Rikorose/DeepFilterNet/releases/download/v0.5.6/DeepFilterNet3_onnx.tar.gz}
mkdir -p "$dest"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading $url"
curl -fL --retry 3 -o "$tmp/model.tar.gz" "$url"
tar -xzf "$tmp/model.tar.gz" -C "$tmp"
for f in enc.onnx erb_dec.onnx df_dec.onnx config.ini; do
  src=$(find "$tmp" -name "$f" -print -quit)
  [[ -n "$src" ]] || { echo "fetch-model: $f is not in the archive" >&2; exit 1; }
  cp "$src" "$dest/$f"
done
echo "fetch-model: model ready in $dest (use FC25_MODEL_DIR=$dest)"
