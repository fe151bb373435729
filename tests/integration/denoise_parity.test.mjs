// The engine's networks against ONNX Runtime: fed the same features, every output of the three official graphs
// must match, frame by frame, over whole files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { readNpy } from '../../tools/reference/npy.mjs';
import { runGraphs } from '../../tools/reference/run-graphs.mjs';
import { repoRoot, sharedDir, tempDir } from '../support/server.mjs';

const buildDir = process.env.FC25_BUILD_DIR || path.join(repoRoot, 'build');
const probe = path.join(buildDir, 'tools/denoise-probe/fc25-denoise-probe');
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const noisyFiles = ['voicebank', 'dns', 'libdf'].flatMap((d) => fs.readdirSync(path.join(sharedDir, 'audio', d))
  .filter((f) => /noisy/.test(f)).map((f) => path.join(sharedDir, 'audio', d, f)));

describe('network parity with ONNX Runtime', () => {
  it('has the probe, the model and the test audio', () => {
    assert.ok(fs.existsSync(probe), `probe not built at ${probe}`);
    assert.ok(fs.existsSync(path.join(modelDir, 'enc.onnx')), `no model at ${modelDir}`);
    assert.equal(noisyFiles.length, 13, `expected 13 noisy files under ${sharedDir}/audio`);
  });

  for (const file of noisyFiles) {
    it(`matches every stage within 1e-3 on ${path.basename(file)}`, async () => {
      const dir = tempDir('fc25-parity-');
      execFileSync(probe, ['features', file, path.join(dir, 'feat')]);
      execFileSync(probe, ['stages', '--model', modelDir, '--in', path.join(dir, 'feat'), '--out', path.join(dir, 'engine')]);
      const feats = { feat_erb: readNpy(path.join(dir, 'feat/feat_erb.npy')), feat_spec: readNpy(path.join(dir, 'feat/feat_spec.npy')) };
      const ref = await runGraphs(modelDir, feats);
      const report = [];
      for (const name of ['e0', 'e1', 'e2', 'e3', 'emb', 'c0', 'lsnr', 'm', 'coefs']) {
        const eng = readNpy(path.join(dir, 'engine', `${name}.npy`));
        assert.deepEqual(eng.shape, ref[name].shape, `${name} shape`);
        let max = 0;
        for (let i = 0; i < eng.data.length; i++) max = Math.max(max, Math.abs(eng.data[i] - ref[name].data[i]));
        report.push(`${name} ${max.toExponential(1)}`);
        assert.ok(max <= 1e-3, `${name}: max abs difference ${max} over ${ref[name].shape[2] ?? ref[name].shape[1]} frames`);
      }
      console.log(`${path.basename(file)}: ${report.join(', ')}`);
    });
  }
});
