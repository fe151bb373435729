// DeepFilterNet's signal processing (libDF), written from its definitions independently of the C++ engine:
// Vorbis-windowed STFT with analysis normalisation, ERB filterbank, running mean and unit normalisation,
// deep filtering. Used by the reference runner so that comparing the two checks the engine's DSP too.

// Complex FFT of any length made of factors 2, 3, 5 (960 = 2^6 * 3 * 5), recursive Cooley-Tukey.
function fftRec(re, im, n, stride, off, outRe, outIm, outOff, sign) {
  if (n === 1) {
    outRe[outOff] = re[off];
    outIm[outOff] = im[off];
    return;
  }
  const p = n % 2 === 0 ? 2 : n % 3 === 0 ? 3 : 5;
  const m = n / p;
  for (let q = 0; q < p; q++) fftRec(re, im, m, stride * p, off + q * stride, outRe, outIm, outOff + q * m, sign);
  const tRe = new Float64Array(p), tIm = new Float64Array(p);
  for (let k = 0; k < m; k++) {
    for (let q = 0; q < p; q++) {
      const a = (sign * 2 * Math.PI * q * k) / n;
      const xr = outRe[outOff + q * m + k], xi = outIm[outOff + q * m + k];
      tRe[q] = xr * Math.cos(a) - xi * Math.sin(a);
      tIm[q] = xr * Math.sin(a) + xi * Math.cos(a);
    }
    for (let r = 0; r < p; r++) {
      let sr = 0, si = 0;
      for (let q = 0; q < p; q++) {
        const a = (sign * 2 * Math.PI * q * r) / p;
        sr += tRe[q] * Math.cos(a) - tIm[q] * Math.sin(a);
        si += tRe[q] * Math.sin(a) + tIm[q] * Math.cos(a);
      }
      outRe[outOff + r * m + k] = sr;
      outIm[outOff + r * m + k] = si;
    }
  }
}

// sign -1: forward (e^{-i...}), +1: inverse without scaling.
export function fft(re, im, sign = -1) {
  const n = re.length;
  const oRe = new Float64Array(n), oIm = new Float64Array(n);
  fftRec(re, im, n, 1, 0, oRe, oIm, 0, sign);
  return [oRe, oIm];
}

export function vorbisWindow(n) {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = Math.sin((0.5 * Math.PI * (i + 0.5)) / (n / 2));
    w[i] = Math.sin(0.5 * Math.PI * s * s);
  }
  return w;
}

export function erbWidths(sr, fftSize, nbBands, minFreqs) {
  const toErb = (f) => 9.265 * Math.log1p(f / (24.7 * 9.265));
  const toHz = (e) => 24.7 * 9.265 * (Math.exp(e / 9.265) - 1);
  const step = (toErb(sr / 2) - toErb(0)) / nbBands;
  const widths = [];
  let prev = 0, over = 0;
  for (let i = 1; i <= nbBands; i++) {
    const fb = Math.round(toHz(toErb(0) + i * step) / (sr / fftSize));
    let n = fb - prev - over;
    if (n < minFreqs) { over = minFreqs - n; n = minFreqs; } else over = 0;
    widths.push(n);
    prev = fb;
  }
  widths[nbBands - 1] += 1;
  const excess = widths.reduce((a, b) => a + b, 0) - (fftSize / 2 + 1);
  if (excess > 0) widths[nbBands - 1] -= excess;
  return widths;
}

export function normAlpha(sr, hop, tau) {
  const alpha = Math.fround(Math.exp(-(hop / sr) / tau));
  let a = 1, precision = 3;
  while (a >= 1) { a = Math.round(alpha * 10 ** precision) / 10 ** precision; precision++; }
  return a;
}

// STFT of a whole signal (length a multiple of hop): frames[t] = {re, im} of fft/2+1 bins, scaled by wnorm.
export function stft(x, fftSize = 960, hop = 480) {
  const w = vorbisWindow(fftSize);
  const wnorm = 1 / w.reduce((s, v) => s + v * v, 0) * hop / fftSize;
  const frames = [];
  const buf = new Float64Array(fftSize);
  for (let t = 0; t * hop < x.length; t++) {
    // frame t covers samples t*hop - (fftSize - hop) .. t*hop + hop - 1 (zeros before the start)
    for (let i = 0; i < fftSize; i++) {
      const s = t * hop - (fftSize - hop) + i;
      buf[i] = (s >= 0 && s < x.length ? x[s] : 0) * w[i];
    }
    const [re, im] = fft(buf, new Float64Array(fftSize));
    const n = fftSize / 2 + 1;
    frames.push({ re: re.slice(0, n).map((v) => v * wnorm), im: im.slice(0, n).map((v) => v * wnorm) });
  }
  return frames;
}

// Inverse: each frame's real signal (Hermitian extension, unscaled inverse FFT), windowed, overlap-added.
// Output sample t*hop + i comes from frames t and t-1, as the streaming synthesis emits it.
export function istft(frames, fftSize = 960, hop = 480) {
  const w = vorbisWindow(fftSize);
  const out = new Float64Array(frames.length * hop + fftSize);
  for (let t = 0; t < frames.length; t++) {
    const re = new Float64Array(fftSize), im = new Float64Array(fftSize);
    const f = frames[t];
    for (let k = 0; k <= fftSize / 2; k++) { re[k] = f.re[k]; im[k] = f.im[k]; }
    for (let k = 1; k < fftSize / 2; k++) { re[fftSize - k] = f.re[k]; im[fftSize - k] = -f.im[k]; }
    const [y] = fft(re, im, 1);
    for (let i = 0; i < fftSize; i++) out[t * hop + i] += y[i] * w[i];
  }
  // The streaming synthesis of frame t emits samples t*hop .. t*hop+hop-1 of this sum.
  return out.subarray(0, frames.length * hop);
}

// Features as libDF computes them, frame by frame with running normalisation.
export function features(frames, { nbErb = 32, nbDf = 96, widths, alpha }) {
  const T = frames.length;
  const erb = new Float32Array(T * nbErb);
  const spec = new Float32Array(2 * T * nbDf);
  const mean = Array.from({ length: nbErb }, (_, i) => -60 + i * (-30 / (nbErb - 1)));
  const unit = Array.from({ length: nbDf }, (_, i) => 0.001 + i * ((0.0001 - 0.001) / (nbDf - 1)));
  for (let t = 0; t < T; t++) {
    const { re, im } = frames[t];
    let bin = 0;
    for (let b = 0; b < nbErb; b++) {
      let p = 0;
      for (let j = 0; j < widths[b]; j++, bin++) p += (re[bin] ** 2 + im[bin] ** 2) / widths[b];
      const db = 10 * Math.log10(p + 1e-10);
      mean[b] = db * (1 - alpha) + mean[b] * alpha;
      erb[t * nbErb + b] = (db - mean[b]) / 40;
    }
    for (let f = 0; f < nbDf; f++) {
      const mag = Math.hypot(re[f], im[f]);
      unit[f] = mag * (1 - alpha) + unit[f] * alpha;
      const s = Math.sqrt(unit[f]);
      spec[t * nbDf + f] = re[f] / s;
      spec[T * nbDf + t * nbDf + f] = im[f] / s;
    }
  }
  return { erb, spec };
}
