// Quality on real data: the six VoiceBank+DEMAND pairs through `fc25 denoise`.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import { voicebankTable } from '../../tools/quality/report.mjs';
import { fc25Bin, sharedDir, tempDir } from '../support/server.mjs';

describe('denoising quality', () => {
  it('improves every VoiceBank pair, as much as the reference runner and the official model do', async () => {
    const model = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
    const { rows, mean } = await voicebankTable({ fc25: fc25Bin, model, shared: sharedDir, work: tempDir('fc25-quality-') });
    assert.equal(rows.length, 6);
    for (const r of rows) {
      console.log(`${r.file}: ${r.noisy.toFixed(2)} -> ${r.enhanced.toFixed(2)} dB (${r.gain >= 0 ? '+' : ''}${r.gain.toFixed(2)})`);
      assert.ok(r.gain > 5, `${r.file} improved by only ${r.gain.toFixed(2)} dB`);
    }
    console.log(`mean improvement ${mean.gain.toFixed(2)} dB (reference runner ${mean.refGain.toFixed(2)} dB)`);
    assert.ok(Math.abs(mean.gain - mean.refGain) <= 0.2, 'the engine must equal the reference runner within 0.2 dB');
    // An independent run of the official model measured +11.9 dB mean on these pairs.
    assert.ok(Math.abs(mean.gain - 11.9) <= 0.3, `mean improvement ${mean.gain.toFixed(2)} dB, expected about 11.9`);
  });
});
