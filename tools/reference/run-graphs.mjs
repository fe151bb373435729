#!/usr/bin/env node
// Runs the three official DeepFilterNet3 graphs with ONNX Runtime (one intra-op thread) over whole feature
// sequences, offline: the reference for the engine's network, stage by stage.
//   node tools/reference/run-graphs.mjs --model DIR --in FEATDIR --out OUTDIR
// FEATDIR holds feat_erb.npy [1,1,T,32] and feat_spec.npy [1,2,T,96]; OUTDIR gets every graph output.
import fs from 'node:fs';
import path from 'node:path';

import ort from 'onnxruntime-node';

import { readNpy, writeNpy } from './npy.mjs';

export async function runGraphs(modelDir, feats) {
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const [enc, erbDec, dfDec] = await Promise.all(['enc', 'erb_dec', 'df_dec'].map(
    (n) => ort.InferenceSession.create(path.join(modelDir, `${n}.onnx`), opts)));
  const t = (a) => new ort.Tensor('float32', a.data, a.shape);
  const e = await enc.run({ feat_erb: t(feats.feat_erb), feat_spec: t(feats.feat_spec) });
  const m = await erbDec.run({ emb: e.emb, e3: e.e3, e2: e.e2, e1: e.e1, e0: e.e0 });
  const d = await dfDec.run({ emb: e.emb, c0: e.c0 });
  const alphaName = dfDec.outputNames.find((n) => n !== 'coefs');
  const out = {};
  for (const [k, v] of Object.entries({ ...e, ...m, coefs: d.coefs, alpha: d[alphaName] })) {
    out[k] = { shape: v.dims.map(Number), data: v.data };
  }
  return out;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (n) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : undefined; };
  const [modelDir, inDir, outDir] = [opt('model'), opt('in'), opt('out')];
  if (!modelDir || !inDir || !outDir) {
    console.error('usage: node tools/reference/run-graphs.mjs --model DIR --in FEATDIR --out OUTDIR');
    process.exit(2);
  }
  const feats = { feat_erb: readNpy(path.join(inDir, 'feat_erb.npy')), feat_spec: readNpy(path.join(inDir, 'feat_spec.npy')) };
  const out = await runGraphs(modelDir, feats);
  fs.mkdirSync(outDir, { recursive: true });
  for (const [k, v] of Object.entries(out)) writeNpy(path.join(outDir, `${k}.npy`), v.shape, v.data);
}

if (import.meta.url === `file://${process.argv[1]}`) main().catch((e) => { console.error(e); process.exit(1); });
