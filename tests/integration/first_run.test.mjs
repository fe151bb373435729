// First run of scripts/run.sh on a machine with no model: it downloads the official one when allowed (checked
// against the release's sums) and serves with it; when it cannot, it says why in one line and serves with the
// classic noise suppressor. The "download" is of a file:// URL: tests reach nothing outside the machine.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { repoRoot, sharedDir, tempDir } from '../support/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const modelFiles = ['enc.onnx', 'erb_dec.onnx', 'df_dec.onnx', 'config.ini'];

// The official archive's layout, made from ../shared's copy of the release (optionally with one file altered).
function archive({ tamper = false } = {}) {
  const dir = tempDir('fc25-archive-');
  fs.mkdirSync(path.join(dir, 'DeepFilterNet3'));
  for (const f of modelFiles) fs.copyFileSync(path.join(sharedDir, 'models/DeepFilterNet3', f), path.join(dir, 'DeepFilterNet3', f));
  if (tamper) fs.appendFileSync(path.join(dir, 'DeepFilterNet3/config.ini'), '\n# changed\n');
  execFileSync('tar', ['-czf', path.join(dir, 'DeepFilterNet3_onnx.tar.gz'), '-C', dir, 'DeepFilterNet3']);
  return `file://${path.join(dir, 'DeepFilterNet3_onnx.tar.gz')}`;
}

// Runs scripts/run.sh (no terminal) until it serves; returns its output, what /api/health says, and stops it.
async function firstRun(env) {
  const data = tempDir();
  const portFile = path.join(tempDir('fc25-port-'), 'port');
  const proc = spawn(path.join(repoRoot, 'scripts/run.sh'), ['--port', '0', '--port-file', portFile, '--data-dir', data],
    { env: { ...process.env, FC25_DENOISER: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  try {
    const end = Date.now() + 120000;
    while (!fs.existsSync(portFile)) {
      if (proc.exitCode !== null) throw new Error(`run.sh exited:\n${out}`);
      if (Date.now() > end) throw new Error(`run.sh did not serve within 120 s:\n${out}`);
      await sleep(100);
    }
    const port = fs.readFileSync(portFile, 'utf8').trim();
    const health = await (await fetch(`http://127.0.0.1:${port}/api/health`)).json();
    return { out, health };
  } finally {
    proc.kill('SIGTERM');
    await exited;
  }
}

const runLines = (out) => out.split('\n').filter((l) => l.startsWith('run: '));

describe('scripts/run.sh with no model', () => {
  it('FC25_FETCH_MODEL=1: downloads the model, checks it, and serves with DeepFilterNet3', async () => {
    const model = path.join(tempDir('fc25-model-'), 'DeepFilterNet3');
    const { out, health } = await firstRun({ FC25_MODEL_DIR: model, FC25_FETCH_MODEL: '1', FC25_MODEL_URL: archive() });
    assert.match(out, /fetch-model: model ready in /);
    for (const f of modelFiles) assert.ok(fs.existsSync(path.join(model, f)), f);
    assert.equal(health.denoiser, 'dfn3', out);
    assert.deepEqual(runLines(out), []);
  });

  it('a download that fails: one line saying why, and the classic suppressor', async () => {
    const model = path.join(tempDir('fc25-model-'), 'DeepFilterNet3');
    const { out, health } = await firstRun({ FC25_MODEL_DIR: model, FC25_FETCH_MODEL: '1',
      FC25_MODEL_URL: 'file:///nonexistent/DeepFilterNet3_onnx.tar.gz' });
    assert.deepEqual(runLines(out).length, 1, out);
    assert.match(runLines(out)[0], /^run: no DeepFilterNet3 model \(curl: \(37\).*\)\. Starting with the classic noise suppressor\.$/);
    assert.equal(health.denoiser, 'classic');
    assert.equal(fs.existsSync(model), false, 'nothing half-made left behind');
  });

  it('an archive whose files are not the release\'s: refused, nothing installed', async () => {
    const model = path.join(tempDir('fc25-model-'), 'DeepFilterNet3');
    const { out, health } = await firstRun({ FC25_MODEL_DIR: model, FC25_FETCH_MODEL: '1',
      FC25_MODEL_URL: archive({ tamper: true }) });
    assert.match(runLines(out)[0], /^run: no DeepFilterNet3 model \(fetch-model: config\.ini has SHA-256 [0-9a-f]{64}, not the release's 415eb925/);
    assert.equal(health.denoiser, 'classic');
    assert.equal(fs.existsSync(path.join(model, 'config.ini')), false);
  });

  it('not asked to download and no terminal to ask on: says how to get the model, serves classic', async () => {
    const model = path.join(tempDir('fc25-model-'), 'DeepFilterNet3');
    const { out, health } = await firstRun({ FC25_MODEL_DIR: model, FC25_FETCH_MODEL: '' });
    assert.match(runLines(out)[0], /^run: no DeepFilterNet3 model \(scripts\/fetch-model\.sh downloads it; FC25_FETCH_MODEL=1 lets this script do it\)\. Starting with the classic noise suppressor\.$/);
    assert.equal(health.denoiser, 'classic');
  });
});
