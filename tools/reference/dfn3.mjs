#!/usr/bin/env node
// The reference DeepFilterNet3 enhancer: libDF's signal processing in JavaScript (dsp.mjs) around the three
// official graphs run offline with ONNX Runtime, applied as the model was trained (features two frames ahead,
// ERB gains on all bins, deep filtering of the first 96 bins over frames t-2..t+2 of the noisy spectrum).
// Output has the input's length and lines up with it.
//   node tools/reference/dfn3.mjs --model DIR IN.wav OUT.wav
import fs from 'node:fs';

import { readWav } from '../quality/metrics.mjs';
import { erbWidths, features, istft, normAlpha, stft } from './dsp.mjs';
import { runGraphs } from './run-graphs.mjs';

export async function enhance(modelDir, x) {
  const hop = 480, lookahead = 2, latency = 480 + lookahead * hop;
  const n = x.length;
  const padded = new Float64Array(Math.ceil((n + latency) / hop) * hop);
  padded.set(x);
  const frames = stft(padded);
  const T = frames.length;
  const widths = erbWidths(48000, 960, 32, 2);
  const { erb, spec } = features(frames, { widths, alpha: normAlpha(48000, 480, 1) });
  // The networks see features `lookahead` frames ahead; zeros past the end.
  const erbA = new Float32Array(T * 32), specA = new Float32Array(2 * T * 96);
  for (let t = 0; t + lookahead < T; t++) {
    erbA.set(erb.subarray((t + lookahead) * 32, (t + lookahead + 1) * 32), t * 32);
    specA.set(spec.subarray((t + lookahead) * 96, (t + lookahead + 1) * 96), t * 96);
    specA.set(spec.subarray(T * 96 + (t + lookahead) * 96, T * 96 + (t + lookahead + 1) * 96), T * 96 + t * 96);
  }
  const out = await runGraphs(modelDir, { feat_erb: { shape: [1, 1, T, 32], data: erbA }, feat_spec: { shape: [1, 2, T, 96], data: specA } });
  const m = out.m.data, coefs = out.coefs.data;
  const enh = [];
  for (let t = 0; t < T; t++) {
    const re = Float64Array.from(frames[t].re), im = Float64Array.from(frames[t].im);
    let bin = 0;
    for (let b = 0; b < 32; b++) for (let j = 0; j < widths[b]; j++, bin++) { re[bin] *= m[t * 32 + b]; im[bin] *= m[t * 32 + b]; }
    for (let f = 0; f < 96; f++) {
      let sr = 0, si = 0;
      for (let o = 0; o < 5; o++) {
        const src = t - 2 + o;
        if (src < 0 || src >= T) continue;
        const c = (t * 96 + f) * 10 + o * 2;
        const xr = frames[src].re[f], xi = frames[src].im[f];
        sr += xr * coefs[c] - xi * coefs[c + 1];
        si += xr * coefs[c + 1] + xi * coefs[c];
      }
      re[f] = sr;
      im[f] = si;
    }
    enh.push({ re, im });
  }
  const y = istft(enh);
  // Frame t's samples come out of the synthesis one hop late (the STFT overlap): remove that.
  return Float32Array.from(y.subarray(hop, hop + n));
}

function writeFloatWav(file, samples, rate = 48000) {
  const data = Buffer.from(Float32Array.from(samples).buffer);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(3, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24); h.writeUInt32LE(rate * 4, 28); h.writeUInt16LE(4, 32); h.writeUInt16LE(32, 34);
  h.write('data', 36); h.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([h, data]));
}

async function main() {
  const args = process.argv.slice(2);
  const i = args.indexOf('--model');
  const model = i >= 0 ? args.splice(i, 2)[1] : undefined;
  const [input, output] = args;
  if (!model || !input || !output) {
    console.error('usage: node tools/reference/dfn3.mjs --model DIR IN.wav OUT.wav');
    process.exit(2);
  }
  const { rate, samples } = readWav(input);
  if (rate !== 48000) throw new Error(`${input}: ${rate} Hz, the reference takes 48 kHz`);
  writeFloatWav(output, await enhance(model, samples));
}

if (import.meta.url === `file://${process.argv[1]}`) main().catch((e) => { console.error(e); process.exit(1); });
