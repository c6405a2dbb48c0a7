// The README's "Connect a client" section shows the files of e2e/snippets/,
// which the other tests run: each block that follows a link to one of them
// must be that file, byte for byte, so the README shows tested code.

import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const e2e = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const readme = path.join(e2e, '..', 'README.md');

test('README.md "Connect a client" shows the snippets as they are', async (t) => {
  const text = await readFile(readme, 'utf8');
  const start = text.search(/^## Connect a client\s*$/m);
  if (start < 0) {
    t.skip(`${readme} has no "## Connect a client" section`);
    return;
  }
  const next = text.slice(start + 1).search(/^## /m);
  const section = next < 0 ? text.slice(start) : text.slice(start, start + 1 + next);

  // A link to e2e/snippets/NAME, then the next fenced block.
  const shown = new Map();
  for (const m of section.matchAll(/\]\(e2e\/snippets\/([\w.-]+)\)(?:(?!\n```)[\s\S])*\n```[a-z]*\n([\s\S]*?)```/g)) {
    assert.ok(!shown.has(m[1]), `e2e/snippets/${m[1]} is shown twice`);
    shown.set(m[1], m[2]);
  }
  const files = (await readdir(path.join(e2e, 'snippets'))).sort();
  assert.deepEqual([...shown.keys()].sort(), files, 'the section shows every snippet file, each once');
  for (const [name, block] of shown) {
    assert.equal(block, await readFile(path.join(e2e, 'snippets', name), 'utf8'), `the README's copy of e2e/snippets/${name} differs from the file`);
  }
});
