// README's "Connect a client" section and docs/clients.md show the files of
// e2e/snippets/, which the other tests run: each block that follows a link
// to one of them must be that file, byte for byte, and together they show
// every file exactly once, so the docs show tested code.

import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const e2e = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.join(e2e, '..');

/** section returns the text of doc from the heading line that matches re up to the next heading of level 2. */
function section(doc, re, name) {
  const start = doc.search(re);
  assert.ok(start >= 0, `${name} has no ${re} section`);
  const next = doc.slice(start + 1).search(/^## /m);
  return next < 0 ? doc.slice(start) : doc.slice(start, start + 1 + next);
}

test('README.md "Connect a client" and docs/clients.md show the snippets as they are', async () => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const pages = {
    'README.md "Connect a client"': section(readme, /^## Connect a client\s*$/m, 'README.md'),
    'docs/clients.md': await readFile(path.join(root, 'docs', 'clients.md'), 'utf8'),
  };

  // A link to e2e/snippets/NAME (from docs/: ../e2e/snippets/NAME), then the next fenced block.
  const shown = new Map();
  for (const [page, text] of Object.entries(pages)) {
    for (const m of text.matchAll(/\]\((?:\.\.\/)?e2e\/snippets\/([\w.-]+)\)(?:(?!\n```)[\s\S])*\n```[a-z]*\n([\s\S]*?)```/g)) {
      assert.ok(!shown.has(m[1]), `e2e/snippets/${m[1]} is shown twice (again in ${page})`);
      shown.set(m[1], { page, block: m[2] });
    }
  }
  const files = (await readdir(path.join(e2e, 'snippets'))).sort();
  assert.deepEqual([...shown.keys()].sort(), files, 'README and docs/clients.md together show every snippet file, each once');
  for (const [name, { page, block }] of shown) {
    assert.equal(block, await readFile(path.join(e2e, 'snippets', name), 'utf8'), `${page}'s copy of e2e/snippets/${name} differs from the file`);
  }
});
