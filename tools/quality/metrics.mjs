// Audio quality measures for the denoise reports: WAV reading (PCM16/24/32, float32) and SI-SDR.
import fs from 'node:fs';

export function readWav(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WAVE') throw new Error(`${file}: not a WAV file`);
  let pos = 12, fmt = null, data = null;
  while (pos + 8 <= b.length) {
    const id = b.toString('latin1', pos, pos + 4), size = b.readUInt32LE(pos + 4);
    if (id === 'fmt ') fmt = { format: b.readUInt16LE(pos + 8), channels: b.readUInt16LE(pos + 10), rate: b.readUInt32LE(pos + 12), bits: b.readUInt16LE(pos + 22) };
    if (id === 'data') data = b.subarray(pos + 8, pos + 8 + size);
    pos += 8 + size + (size & 1);
  }
  if (!fmt || !data) throw new Error(`${file}: no fmt or data chunk`);
  const bytes = fmt.bits / 8, frames = Math.floor(data.length / (bytes * fmt.channels));
  const out = new Float32Array(frames);
  const isFloat = fmt.format === 3 || (fmt.format === 0xfffe && fmt.bits === 32 && false);
  for (let i = 0; i < frames; i++) {
    let s = 0;
    for (let c = 0; c < fmt.channels; c++) {
      const o = (i * fmt.channels + c) * bytes;
      if (isFloat) s += data.readFloatLE(o);
      else if (fmt.bits === 16) s += data.readInt16LE(o) / 32768;
      else if (fmt.bits === 24) s += data.readIntLE(o, 3) / 8388608;
      else if (fmt.bits === 32) s += data.readInt32LE(o) / 2147483648;
    }
    out[i] = s / fmt.channels;
  }
  return { rate: fmt.rate, samples: out };
}

// Scale-invariant signal-to-distortion ratio of `est` against `ref` (same length, aligned), in dB.
export function siSdr(ref, est) {
  const n = Math.min(ref.length, est.length);
  let dot = 0, rr = 0;
  for (let i = 0; i < n; i++) { dot += ref[i] * est[i]; rr += ref[i] * ref[i]; }
  const a = dot / rr;
  let t = 0, e = 0;
  for (let i = 0; i < n; i++) { const s = a * ref[i]; t += s * s; e += (est[i] - s) ** 2; }
  return 10 * Math.log10(t / e);
}
