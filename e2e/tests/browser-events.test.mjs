// Server-sent events in Chromium, with the browser's own EventSource and no
// library: snippets/events.js on a page of the server's own origin, and
// snippets/browser-events.js on a page of another origin, which goes on
// across a server killed with SIGKILL and restarted on its SQLite file: the
// page records every id, and ends with every stored notification, once, in
// order.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { createComment, createPost, notificationIds, register, startServer, within } from '../harness.mjs';
import { launch, noChromium, servePage } from '../browser.mjs';

const snippets = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'snippets');

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Notifications</title>
<script src="/browser-events.js"></script>
<script>
  window.ids = [];
  window.endings = [];
  window.start = (server, token) => {
    listenForNotifications({
      server,
      token,
      onNotification: (n) => window.ids.push(n.id),
      onClosed: (reason) => window.endings.push(reason),
    });
  };
</script>
`;

let pages;
let browser;
let dir;
let server = {};
before(async () => {
  if (noChromium) return;
  pages = await servePage({ '/': PAGE, '/browser-events.js': await readFile(path.join(snippets, 'browser-events.js')) });
  dir = await mkdtemp(path.join(tmpdir(), 'pulse-e2e-events-'));
  server = await startServer({ dir, extraArgs: ['--allowed-origins', pages.origin] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server.stop?.();
  await pages?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** waitFor waits until fn, run in the page, returns a truthy value. */
async function waitFor(page, fn, arg, what) {
  await within(page.waitForFunction(fn, arg, { timeout: 20_000 }), what, 25_000);
}

test('snippets/events.js: a page of the server opens /events with a ticket and logs each notification', { skip: noChromium }, async (t) => {
  const oliver = await register(server, 'Oliver');
  const john = await register(server, 'John');
  const post = await createPost(server, oliver, 'Streamed');
  const { socketTicket } = await server.gql('mutation { socketTicket { ticket } }', {}, oliver.token);

  const page = await browser.context.newPage();
  t.after(() => page.close());
  const logged = [];
  page.on('console', (m) => logged.push(m.text()));
  const opened = page.waitForResponse((r) => r.url().includes('/events?'));
  await page.goto(`${server.httpURL}/healthz`); // the server's origin
  await page.evaluate(`const ticket = ${JSON.stringify(socketTicket.ticket)};\n${await readFile(path.join(snippets, 'events.js'), 'utf8')}`);
  const res = await within(opened, 'the stream to open');
  assert.equal(res.status(), 200);
  assert.equal(res.headers()['content-type'], 'text/event-stream');

  await createComment(server, john, post, 'first');
  const [id] = await notificationIds(server, oliver);
  await within(
    (async () => {
      while (!logged.includes(`#${id}: ${john.username} commented on your post`)) await new Promise((r) => setTimeout(r, 50));
    })(),
    () => `the page to log notification ${id} (it logged ${JSON.stringify(logged)})`,
  );
});

test('snippets/browser-events.js: every notification once, in order, across a server killed and restarted', { skip: noChromium }, async (t) => {
  const oliver = await register(server, 'Oliver');
  const john = await register(server, 'John');
  const post = await createPost(server, oliver, 'Across a restart');

  const page = await browser.context.newPage();
  t.after(() => page.close());
  const streams = [];
  page.on('request', (r) => {
    if (r.url().includes('/events?')) streams.push(r.url());
  });
  await page.goto(`${pages.origin}/`);
  const opened = page.waitForResponse((r) => r.url().includes('/events?'));
  await page.evaluate(([s, tok]) => window.start(s, tok), [server.httpURL, oliver.token]);
  assert.equal((await within(opened, 'the stream to open')).status(), 200);

  for (const body of ['one', 'two', 'three']) await createComment(server, john, post, body);
  await waitFor(page, (n) => window.ids.length >= n, 3, 'three notifications before the kill');

  // A crash, then a restart on the same address and SQLite file; what
  // happens before the page is back must reach it too.
  await server.kill();
  server = await startServer({ dir, addr: server.addr, extraArgs: ['--allowed-origins', pages.origin] });
  for (const body of ['four', 'five']) await createComment(server, john, post, body);
  await waitFor(page, (n) => window.ids.length >= n, 5, 'the notifications made while the page was away');
  await createComment(server, john, post, 'six');
  await waitFor(page, (n) => window.ids.length >= n, 6, 'a live notification after the restart');
  await new Promise((r) => setTimeout(r, 300)); // room for a duplicate to show

  const stored = (await notificationIds(server, oliver)).reverse();
  assert.equal(stored.length, 6);
  assert.deepEqual(await page.evaluate(() => window.ids), stored);
  // The browser tried to reconnect by itself, with the used ticket, before
  // the snippet opened a stream with a new one after the last id seen.
  assert.ok(streams.length >= 3, `stream requests: ${streams.length}`);
  assert.equal(streams[1], streams[0]);
  assert.match(streams.at(-1), new RegExp(`after=${stored[2]}(&|$)`));
  assert.deepEqual(await page.evaluate(() => window.endings), []);
});
