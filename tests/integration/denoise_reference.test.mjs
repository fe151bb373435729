// The whole engine against the reference runner (libDF's DSP in JavaScript around ONNX Runtime): outputs match
// on every recording in ../shared/audio, and the DSP on its own matches too.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { readNpy } from '../../tools/reference/npy.mjs';
import { erbWidths, features, fft, normAlpha, stft } from '../../tools/reference/dsp.mjs';
import { enhance } from '../../tools/reference/dfn3.mjs';
import { readWav } from '../../tools/quality/metrics.mjs';
import { fc25Bin, repoRoot, sharedDir, tempDir } from '../support/server.mjs';

const buildDir = process.env.FC25_BUILD_DIR || path.join(repoRoot, 'build');
const probe = path.join(buildDir, 'tools/denoise-probe/fc25-denoise-probe');
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const allFiles = ['voicebank', 'dns', 'libdf'].flatMap((d) => fs.readdirSync(path.join(sharedDir, 'audio', d))
  .filter((f) => f.endsWith('.wav')).sort().map((f) => path.join(sharedDir, 'audio', d, f)));

describe('reference runner', () => {
  it('its FFT equals a direct DFT', () => {
    const n = 960;
    const re = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) + (i % 7) / 7);
    const im = new Float64Array(n);
    const [fr, fi] = fft(re, im);
    for (const k of [0, 1, 17, 240, 479, 480, 959]) {
      let sr = 0, si = 0;
      for (let t = 0; t < n; t++) { sr += re[t] * Math.cos(-2 * Math.PI * k * t / n); si += re[t] * Math.sin(-2 * Math.PI * k * t / n); }
      assert.ok(Math.abs(fr[k] - sr) < 1e-8 && Math.abs(fi[k] - si) < 1e-8, `bin ${k}`);
    }
  });

  it('computes the same features as the engine (independent implementations)', () => {
    const file = path.join(sharedDir, 'audio/voicebank/p257_003_noisy.wav');
    const dir = tempDir('fc25-feat-');
    execFileSync(probe, ['features', file, dir]);
    const eng = { erb: readNpy(path.join(dir, 'feat_erb.npy')), spec: readNpy(path.join(dir, 'feat_spec.npy')) };
    const x = readWav(file).samples;
    const frames = stft(x.subarray(0, Math.floor(x.length / 480) * 480));
    const ref = features(frames, { widths: erbWidths(48000, 960, 32, 2), alpha: normAlpha(48000, 480, 1) });
    let maxErb = 0, maxSpec = 0;
    for (let i = 0; i < ref.erb.length; i++) maxErb = Math.max(maxErb, Math.abs(ref.erb[i] - eng.erb.data[i]));
    for (let i = 0; i < ref.spec.length; i++) maxSpec = Math.max(maxSpec, Math.abs(ref.spec[i] - eng.spec.data[i]));
    console.log(`features: ERB max diff ${maxErb.toExponential(2)}, complex max diff ${maxSpec.toExponential(2)}`);
    assert.ok(maxErb < 1e-3, `ERB features differ by ${maxErb}`);
    assert.ok(maxSpec < 1e-3, `complex features differ by ${maxSpec}`);
  });

  it('and the engine agree within 35 dB SNR on every recording', async () => {
    assert.equal(allFiles.length, 27, `expected the 27 recordings of ${sharedDir}/audio`);
    const dir = tempDir('fc25-e2e-');
    for (const file of allFiles) {
      const out = path.join(dir, 'engine.wav');
      execFileSync(fc25Bin, ['denoise', file, out, '--model', modelDir, '--float', '--quiet']);
      const eng = readWav(out).samples;
      const ref = await enhance(modelDir, readWav(file).samples);
      assert.equal(eng.length, ref.length);
      let s = 0, e = 0;
      for (let i = 0; i < ref.length; i++) { s += ref[i] * ref[i]; e += (ref[i] - eng[i]) ** 2; }
      const snr = 10 * Math.log10(s / e);
      console.log(`${path.basename(file)}: ${snr.toFixed(1)} dB`);
      assert.ok(snr >= 35, `${path.basename(file)}: engine vs reference SNR ${snr.toFixed(1)} dB`);
    }
  });
});
