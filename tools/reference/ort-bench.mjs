#!/usr/bin/env node
// ONNX Runtime (one intra-op thread) on the three official DeepFilterNet3 graphs, timed two ways over one file's
// features (the median of several passes): offline (all frames in one call per graph) and hop by hop (one call per graph per 10 ms frame, as a
// live server would have to drive it; the GRU state is not an input of the graphs, so that output is wrong, but
// it is what such a server would pay). Prints JSON.
//   node tools/reference/ort-bench.mjs --model DIR --in FEATDIR [--offline-only]
import path from 'node:path';

import ort from 'onnxruntime-node';

import { readNpy } from './npy.mjs';

const args = process.argv.slice(2);
const opt = (n) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : undefined; };
const modelDir = opt('model'), inDir = opt('in');
const sessOpts = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
const [enc, erbDec, dfDec] = await Promise.all(['enc', 'erb_dec', 'df_dec'].map(
  (n) => ort.InferenceSession.create(path.join(modelDir, `${n}.onnx`), sessOpts)));
const erb = readNpy(path.join(inDir, 'feat_erb.npy')), spec = readNpy(path.join(inDir, 'feat_spec.npy'));
const T = erb.shape[2];

async function run(fe, fs) {
  const e = await enc.run({ feat_erb: fe, feat_spec: fs });
  await erbDec.run({ emb: e.emb, e3: e.e3, e2: e.e2, e1: e.e1, e0: e.e0 });
  await dfDec.run({ emb: e.emb, c0: e.c0 });
}

// The median of several timed passes (after a warm-up), as the engine's benchmark reports it.
async function timed(passes, body) {
  await body();
  const times = [];
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now();
    await body();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(passes / 2)];
}

const full = [new ort.Tensor('float32', erb.data, erb.shape), new ort.Tensor('float32', spec.data, spec.shape)];
const offline = await timed(7, () => run(...full));
if (args.includes('--offline-only')) {
  const audio = T * 480 / 48000;
  console.log(JSON.stringify({ audio_seconds: audio, offline_seconds: offline, offline_rtf: offline / audio }));
  process.exit(0);
}

const frames = [];
for (let t = 0; t < T; t++) {
  const fe = erb.data.slice(t * 32, t * 32 + 32);
  const fs = new Float32Array(192);
  fs.set(spec.data.subarray(t * 96, t * 96 + 96), 0);
  fs.set(spec.data.subarray(T * 96 + t * 96, T * 96 + t * 96 + 96), 96);
  frames.push([new ort.Tensor('float32', fe, [1, 1, 1, 32]), new ort.Tensor('float32', fs, [1, 2, 1, 96])]);
}
const hop = await timed(3, async () => { for (const f of frames) await run(...f); });
const audio = T * 480 / 48000;
console.log(JSON.stringify({ audio_seconds: audio, offline_seconds: offline, offline_rtf: offline / audio, hop_seconds: hop, hop_rtf: hop / audio }));
