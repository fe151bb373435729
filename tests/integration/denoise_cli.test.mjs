// `fc25 denoise` on real recordings: lengths and rates kept, output aligned, noise removed, clear refusals.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { readWav, siSdr } from '../../tools/quality/metrics.mjs';
import { fc25Bin, sharedDir, tempDir } from '../support/server.mjs';

const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const vb = (name) => path.join(sharedDir, 'audio/voicebank', name);
const denoise = (args) => spawnSync(fc25Bin, ['denoise', ...args, '--model', modelDir], { encoding: 'utf8' });
const rms = (x) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
const db = (x) => 20 * Math.log10(rms(x));

// The lag (in samples, within +-max) at which b best matches a.
function bestLag(a, b, max = 2000) {
  let best = 0, bestVal = -Infinity;
  const n = Math.min(a.length, b.length) - max;
  for (let lag = -max; lag <= max; lag += 1) {
    let s = 0;
    for (let i = max; i < n; i += 4) s += a[i] * b[i + lag];
    if (s > bestVal) { bestVal = s; best = lag; }
  }
  return best;
}

describe('fc25 denoise', () => {
  const dir = tempDir('fc25-denoise-');

  it('runs on the kernel path it is given, with the same audio; refuses one the processor lacks', () => {
    const fast = path.join(dir, 'p232_013_avx2.wav'), slow = path.join(dir, 'p232_013_portable.wav');
    let r = denoise([vb('p232_013_noisy.wav'), fast, '--isa', 'avx2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /dfn3 \(avx2 kernels, prefetch (on|off), fp32 weights\)/);
    r = denoise([vb('p232_013_noisy.wav'), slow, '--isa', 'portable']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /dfn3 \(portable kernels, prefetch (on|off), fp32 weights\)/);
    const a = readWav(fast).samples, b = readWav(slow).samples;
    // Asking for the weights ahead or not changes when they arrive, not the audio.
    for (const mode of ['on', 'off']) {
      const out = path.join(dir, `p232_013_avx2_prefetch_${mode}.wav`);
      r = denoise([vb('p232_013_noisy.wav'), out, '--isa', 'avx2', '--prefetch', mode]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`dfn3 \\(avx2 kernels, prefetch ${mode}, fp32 weights\\)`));
      assert.deepEqual(readWav(out).samples, a, `prefetch ${mode} gives other audio`);
    }
    r = denoise([vb('p232_013_noisy.wav'), path.join(dir, 'x.wav'), '--prefetch', 'sometimes']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /prefetch 'sometimes' is not auto, on or off/);
    assert.equal(a.length, b.length);
    let signal = 0, diff = 0;
    for (let i = 0; i < a.length; i += 1) { signal += a[i] * a[i]; diff += (a[i] - b[i]) ** 2; }
    const snr = 10 * Math.log10(signal / Math.max(diff, 1e-30));
    assert.ok(snr > 60, `the two paths' outputs differ by more than rounding (${snr.toFixed(1)} dB)`);
    r = denoise([vb('p232_013_noisy.wav'), path.join(dir, 'x.wav'), '--isa', 'neon']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /kernel path 'neon' is not one this processor can run \(portable, avx2(, avx512)?\)/);
  });

  it('with bfloat16 weights, sounds as with float ones: within 35 dB SNR, the same SI-SDR gain to 0.05 dB', () => {
    const fp32 = path.join(dir, 'p232_019_fp32.wav'), bf16 = path.join(dir, 'p232_019_bf16.wav');
    let r = denoise([vb('p232_019_noisy.wav'), fp32, '--float']);
    assert.equal(r.status, 0, r.stderr);
    r = denoise([vb('p232_019_noisy.wav'), bf16, '--float', '--precision', 'bf16']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /dfn3 \(\w+ kernels, prefetch (on|off), bf16 weights, vdpbf16ps (on|off)\)/);
    const a = readWav(fp32).samples, b = readWav(bf16).samples;
    assert.equal(a.length, b.length);
    let signal = 0, diff = 0;
    for (let i = 0; i < a.length; i += 1) { signal += a[i] * a[i]; diff += (a[i] - b[i]) ** 2; }
    const snr = 10 * Math.log10(signal / Math.max(diff, 1e-30));
    assert.ok(snr > 35 && snr < 100, `bf16 against fp32: ${snr.toFixed(1)} dB`);
    const clean = readWav(vb('p232_019_clean.wav')).samples;
    assert.ok(Math.abs(siSdr(clean, b) - siSdr(clean, a)) < 0.05, 'SI-SDR moved by 0.05 dB or more');
    // The GRUs' products widened instead of by vdpbf16ps: the same samples, bit for bit.
    const widened = path.join(dir, 'p232_019_bf16_widened.wav');
    r = denoise([vb('p232_019_noisy.wav'), widened, '--float', '--precision', 'bf16', '--bf16-dot', 'off']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /bf16 weights, vdpbf16ps off\)/);
    assert.deepEqual(readWav(widened).samples, b);
    r = denoise([vb('p232_019_noisy.wav'), bf16, '--precision', 'fp16']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown precision 'fp16' \(expected fp32 or bf16\)/);
  });

  it('denoises a directory of files, several at once, each as it would be alone; a bad one does not stop the rest', () => {
    const inputs = path.join(dir, 'inputs'), outs = path.join(dir, 'outs');
    fs.mkdirSync(inputs);
    fs.mkdirSync(outs);
    const names = ['p232_013_noisy', 'p232_028_noisy', 'p257_003_noisy'];
    for (const n of names) fs.copyFileSync(vb(`${n}.wav`), path.join(inputs, `${n}.wav`));
    fs.writeFileSync(path.join(inputs, 'notes.txt'), 'not audio, and not an audio file name: left alone');
    let r = denoise([inputs, '--out-dir', outs, '--jobs', '2', '--float']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /3 of 3 files -> .*outs \(2 at once\)/);
    assert.deepEqual(fs.readdirSync(outs).sort(), names.map((n) => `${n}.wav`));
    for (const n of names) {
      const alone = path.join(dir, `${n}_alone.wav`);
      assert.equal(denoise([vb(`${n}.wav`), alone, '--float']).status, 0);
      assert.deepEqual(readWav(path.join(outs, `${n}.wav`)).samples, readWav(alone).samples, `${n}: as alone, bit for bit`);
    }
    // A damaged file among good ones: the others are written, the damaged one named, the exit status says so.
    fs.writeFileSync(path.join(inputs, 'broken.wav'), 'RIFF but nothing more');
    fs.rmSync(outs, { recursive: true });
    fs.mkdirSync(outs);
    r = denoise([inputs, '--out-dir', outs, '--float']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /broken\.wav: cannot read it as audio/);
    assert.deepEqual(fs.readdirSync(outs).sort(), names.map((n) => `${n}.wav`));
    // Refused before any work: two inputs of one name, an output directory that is not there, a bad --jobs.
    r = denoise([vb('p232_013_noisy.wav'), path.join(inputs, 'p232_013_noisy.wav'), '--out-dir', outs]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /would both be written to .*p232_013_noisy\.wav/);
    r = denoise([inputs, '--out-dir', path.join(dir, 'nowhere')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /nowhere: no such directory \(--out-dir\)/);
    r = denoise([inputs, '--out-dir', outs, '--jobs', '0']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--jobs: '0' is not a whole number from 1 to 1024/);
  });

  it('improves a noisy VoiceBank recording and keeps it aligned, at 48 kHz', () => {
    const out = path.join(dir, 'p232_013.wav');
    const r = denoise([vb('p232_013_noisy.wav'), out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /dfn3/);
    const clean = readWav(vb('p232_013_clean.wav')), noisy = readWav(vb('p232_013_noisy.wav')), enh = readWav(out);
    assert.equal(enh.rate, 48000);
    assert.equal(enh.samples.length, noisy.samples.length);
    assert.equal(bestLag(clean.samples, enh.samples), 0, 'the output lines up with the input');
    const gain = siSdr(clean.samples, enh.samples) - siSdr(clean.samples, noisy.samples);
    assert.ok(gain > 6, `SI-SDR improved by only ${gain.toFixed(2)} dB`);
  });

  it('keeps the rate and length of a 16 kHz file and mixes stereo to mono', () => {
    const in16 = path.join(dir, 'in16.wav'), st = path.join(dir, 'stereo.wav');
    execFileSync('sox', [vb('p232_019_noisy.wav'), '-r', '16000', in16]);
    execFileSync('sox', [vb('p232_019_noisy.wav'), st, 'remix', '1', '1']);
    const o16 = path.join(dir, 'o16.wav'), ost = path.join(dir, 'ost.flac');
    assert.equal(denoise([in16, o16]).status, 0);
    assert.equal(denoise([st, ost, '--denoiser', 'classic']).status, 0);
    const a = readWav(in16), b = readWav(o16);
    assert.equal(b.rate, 16000);
    assert.equal(b.samples.length, a.samples.length);
    const info = execFileSync('soxi', [ost], { encoding: 'utf8' });
    assert.match(info, /Channels\s*:\s*1/);
    assert.match(info, /Sample Rate\s*:\s*48000/);
  });

  it('passes audio through unchanged with the passthrough backend', () => {
    const out = path.join(dir, 'pass.wav');
    assert.equal(denoise([vb('p232_028_noisy.wav'), out, '--denoiser', 'passthrough']).status, 0);
    const a = readWav(vb('p232_028_noisy.wav')).samples, b = readWav(out).samples;
    assert.equal(b.length, a.length);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    assert.equal(maxDiff, 0, 'PCM16 in, PCM16 out: bit-identical');
  });

  it('removes noise: dfn3 from a real noise recording, classic from steady noise', () => {
    const noise = path.join(sharedDir, 'audio/libdf/noise_freesound_573577.wav');
    const pink = path.join(dir, 'pink.wav');
    // Steady pink noise: what a statistical suppressor is made for (it barely touches impulsive noise).
    execFileSync('sox', ['-n', '-r', '48000', '-c', '1', '-b', '16', pink, 'synth', '5', 'pinknoise', 'vol', '0.1']);
    for (const [backend, input, min] of [['dfn3', noise, 10], ['classic', pink, 6]]) {
      const out = path.join(dir, `noise_${backend}.wav`);
      assert.equal(denoise([input, out, '--denoiser', backend, '--float']).status, 0);
      const drop = db(readWav(input).samples) - db(readWav(out).samples);
      console.log(`${backend}: noise level lowered by ${drop.toFixed(1)} dB on ${path.basename(input)}`);
      assert.ok(drop >= min, `${backend} lowered the noise by only ${drop.toFixed(1)} dB`);
    }
  });

  it('refuses bad input clearly, naming it', () => {
    const txt = path.join(dir, 'text.wav');
    fs.writeFileSync(txt, 'not audio at all');
    const cases = [
      [[path.join(dir, 'missing.wav'), path.join(dir, 'o.wav')], /missing\.wav: no such file/],
      [[txt, path.join(dir, 'o.wav')], /text\.wav: cannot read it as audio/],
      [[vb('p232_013_noisy.wav'), '/no/such/dir/o.wav'], /o\.wav: cannot be written/],
      [[vb('p232_013_noisy.wav'), path.join(dir, 'o.wav'), '--denoiser', 'magic'], /unknown denoiser 'magic'/],
      [[vb('p232_013_noisy.wav'), path.join(dir, 'o.mp9')], /unknown output format/],
    ];
    for (const [args, re] of cases) {
      const r = denoise(args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, re);
    }
    const noModel = spawnSync(fc25Bin, ['denoise', vb('p232_013_noisy.wav'), path.join(dir, 'o.wav'), '--model', path.join(dir, 'nomodel')], { encoding: 'utf8' });
    assert.equal(noModel.status, 2);
    assert.match(noModel.stderr, /nomodel' does not exist/);
    assert.match(noModel.stderr, /DeepFilterNet3_onnx\.tar\.gz/);
  });
});
