// Measures for judging recordings: level, and the long-term spectral envelope (which does not depend on where a
// looped capture started, so it needs no alignment).
import { fft } from '../../tools/reference/dsp.mjs';
import { readWav } from '../../tools/quality/metrics.mjs';

export { readWav };

// RMS level in dBFS of the samples (optionally only from..to seconds).
export function rmsDb(samples, rate = 48000, from = 0, to = Infinity) {
  const a = Math.floor(from * rate), b = Math.min(samples.length, Math.floor(to * rate));
  let sum = 0;
  for (let i = a; i < b; i++) sum += samples[i] * samples[i];
  return 10 * Math.log10(sum / Math.max(1, b - a) + 1e-20);
}

// Long-term average spectrum in third-octave bands from 100 Hz to 8 kHz, in dB (Hann-windowed 960-sample frames,
// power averaged over every frame loud enough to be more than the recording's silence).
export function ltasDb(samples, rate = 48000) {
  const n = 960, hop = 480;
  const win = Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  const power = new Float64Array(n / 2 + 1);
  let frames = 0;
  for (let s = 0; s + n <= samples.length; s += hop) {
    let e = 0;
    for (let i = 0; i < n; i++) e += samples[s + i] * samples[s + i];
    if (e / n < 1e-9) continue;  // digital silence (e.g. before the audio arrived)
    const re = new Float64Array(n), im = new Float64Array(n);
    for (let i = 0; i < n; i++) re[i] = samples[s + i] * win[i];
    const [fr, fi] = fft(re, im);
    for (let k = 0; k <= n / 2; k++) power[k] += fr[k] * fr[k] + fi[k] * fi[k];
    frames++;
  }
  const bands = [];
  for (let c = 100; c <= 8000; c *= 2 ** (1 / 3)) {
    const lo = c / 2 ** (1 / 6), hi = c * 2 ** (1 / 6);
    let p = 0;
    for (let k = Math.ceil((lo * n) / rate); k <= Math.floor((hi * n) / rate); k++) p += power[k];
    bands.push(10 * Math.log10(p / Math.max(1, frames) + 1e-20));
  }
  return bands;
}

export function pearson(a, b) {
  const n = Math.min(a.length, b.length);
  const ma = a.slice(0, n).reduce((x, y) => x + y, 0) / n, mb = b.slice(0, n).reduce((x, y) => x + y, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
