// docs/ARCHITECTURE.md names only what is there: its folder table lists exactly the folders of src/ and of bench/
// (and nothing that does not exist), every file it names exists, and every function or type it quotes is in the
// code. What the doc says about them is for a reader to check; that it names real things is checked here.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(join(root, 'docs/ARCHITECTURE.md'), 'utf8');

const folders = (dir) => readdirSync(join(root, dir), { withFileTypes: true })
  .filter((e) => e.isDirectory()).map((e) => `${dir}/${e.name}/`).sort();

// Every file under `dir` (recursively), as paths from the root.
const filesUnder = (dir) => readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));

// The folder table: the first fenced block. A row starts at the line's first column with one or more folders
// ("tests/integration/, tests/e2e/"); indented lines continue the row above.
const table = doc.match(/^```\n([\s\S]*?)^```/m)[1];
const rows = table.split('\n').filter((l) => /^\S/.test(l));
const listed = rows.flatMap((l) => l.match(/^[\w.-]+\/(?:[\w.-]+\/)*(?:,\s*[\w.-]+\/(?:[\w.-]+\/)*)*/)[0].split(/,\s*/));

const sourceText = (dir) => filesUnder(dir).filter((f) => /\.(cpp|hpp|h)$/.test(f))
  .map((f) => readFileSync(f, 'utf8')).join('\n');
const srcText = sourceText('src');
const hasWord = (text, word) => new RegExp(`\\b${word}\\b`).test(text);

describe('docs/ARCHITECTURE.md', () => {
  it('lists exactly the folders of src/ and of bench/, and only folders that exist', () => {
    assert.ok(rows.length > 10, 'the folder table was not found');
    assert.deepEqual(listed.filter((f) => f.startsWith('src/')).sort(), folders('src'));
    assert.deepEqual(listed.filter((f) => f.startsWith('bench/')).sort(), folders('bench'));
    for (const f of listed) {
      assert.ok(existsSync(join(root, f)) && statSync(join(root, f)).isDirectory(), `the table lists ${f}: no such folder`);
    }
  });

  it('names only files that exist', () => {
    // Paths with a folder: from the root, from src/, or (in the engine's section) from src/denoise/.
    const paths = [...doc.matchAll(/(?<![\w/.{}-])((?:[\w.-]+\/)+[\w.-]+\.(?:cpp|hpp|h|md|mjs|sh|txt|supp))(?![\w/])/g)]
      .map((m) => m[1]);
    assert.ok(paths.length >= 2, `too few file paths found: ${paths}`);
    for (const p of paths) {
      assert.ok(['', 'src/', 'src/denoise/'].some((base) => existsSync(join(root, base, p))), `the doc names ${p}: no such file`);
    }
    // A bare source file name (`broadcasts.cpp`) is a file somewhere in the tree.
    const names = new Set(['src', 'bench', 'tools', 'tests', 'scripts'].flatMap(filesUnder).map((f) => f.split('/').pop()));
    const bare = [...doc.matchAll(/(?<![\w/.-])([\w-]+\.(?:cpp|hpp|mjs|sh))(?![\w/])/g)].map((m) => m[1]);
    for (const n of bare) assert.ok(names.has(n), `the doc names ${n}: no such file`);
  });

  it('quotes only functions and types that are in the code', () => {
    // `core::EventSink`, `StreamRegistry::stop_session(session_id, reason)`: the last name is in src/, and when the
    // first one is a folder's namespace (core, presence, ...), in that folder.
    const planes = new Set(folders('src').map((f) => f.split('/')[1]));
    const qualified = [...doc.matchAll(/`((?:[A-Za-z_]\w*::)+([A-Za-z_]\w*))(?:\([^`]*\))?`/g)];
    assert.ok(qualified.length >= 5, 'too few quoted names found');
    for (const [, name, last] of qualified) {
      const first = name.split('::')[0];
      const text = planes.has(first) ? sourceText(`src/${first}`) : srcText;
      assert.ok(hasWord(text, last), `the doc quotes ${name}: no ${last} in ${planes.has(first) ? `src/${first}` : 'src'}`);
    }
    // `reconcile()`, `latency_samples()`: a function of that name is in src/.
    for (const [, name] of doc.matchAll(/`([A-Za-z_]\w*)\([^`]*\)`/g)) {
      assert.ok(new RegExp(`\\b${name}\\s*\\(`).test(srcText), `the doc quotes ${name}(): no such function in src`);
    }
  });
});
