// The plain socket from a web page in Chromium, with the browser's own
// WebSocket, through snippets/browser-socket.js. The page is served by a
// tiny HTTP server on another port, i.e. another origin, which the pulse
// server is started to allow with --allowed-origins.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { BAD_TOKEN, createPost, reactToPost, register, startServer, within } from '../harness.mjs';
import { launch, noChromium, servePage as serveFiles } from '../browser.mjs';

const snippet = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'snippets', 'browser-socket.js');

// The page: it loads the snippet, connects with the server and token from
// its query string, and shows (and keeps in window.events) what happens.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Notifications</title>
<h1>Notifications</h1>
<ul id="log"></ul>
<script src="/browser-socket.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  window.events = [];
  function show(event) {
    window.events.push(event);
    const li = document.createElement('li');
    li.textContent = JSON.stringify(event);
    document.getElementById('log').append(li);
  }
  const socket = connectNotifications({
    server: params.get('server'),
    token: params.get('token'),
    onNotification: (n) => show({ kind: 'notification', notification: n }),
    onClose: (code, reason) => show({ kind: 'close', code, reason }),
  });
  // A ping, answered once the server runs the socket (its notification feed
  // open): after the pong, nothing that happens to the user is missed.
  socket.addEventListener('open', () => {
    show({ kind: 'open' });
    socket.send(JSON.stringify({ type: 'ping' }));
  });
  socket.addEventListener('message', (e) => {
    if (JSON.parse(e.data).type === 'pong') show({ kind: 'pong' });
  });
  socket.addEventListener('error', () => show({ kind: 'error' }));
</script>
`;

/** servePage serves PAGE at / and the snippet; returns its origin and close. */
async function servePage() {
  return serveFiles({ '/': PAGE, '/browser-socket.js': await readFile(snippet) });
}

// One setup for the file, in order, and its teardown in reverse order.
let page1; // a page server on an origin the server allows
let page2; // one on an origin it does not
let browser;
const server = {};
before(async () => {
  if (noChromium) return;
  page1 = await servePage();
  page2 = await servePage();
  Object.assign(server, await startServer({ extraArgs: ['--allowed-origins', page1.origin] }));
  browser = await launch();
});
after(async () => {
  const errors = [];
  for (const step of [() => browser?.close(), () => server.stop?.(), () => page1?.close(), () => page2?.close()]) {
    await Promise.resolve().then(step).catch((err) => errors.push(err));
  }
  if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors, errors.map((e) => e.message).join('; '));
});

/** openPage opens the page at origin for token, in a fresh tab. */
async function openPage(t, origin, token) {
  const page = await browser.context.newPage();
  t.after(() => page.close());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${origin}/?` + new URLSearchParams({ server: server.wsURL, token }));
  return { page, errors };
}

/** pageEvent waits for the page's first event of this kind and returns it. */
async function pageEvent(page, kind) {
  try {
    const handle = await page.waitForFunction((k) => window.events.find((e) => e.kind === k), kind, { timeout: 10_000 });
    return await handle.jsonValue();
  } catch (err) {
    const events = await page.evaluate(() => window.events).catch(() => 'unknown');
    throw new Error(`timed out waiting for the page's "${kind}" event; its events: ${JSON.stringify(events)}`, { cause: err });
  }
}

test('a bad token: page script sees close code 4401 and reason "invalid access token"', { skip: noChromium }, async (t) => {
  const { page, errors } = await openPage(t, page1.origin, BAD_TOKEN);
  const close = await pageEvent(page, 'close');
  assert.deepEqual(close, { kind: 'close', code: 4401, reason: 'invalid access token' });
  const events = await page.evaluate(() => window.events);
  assert.equal(events[0].kind, 'open', 'the handshake succeeded, so that the page can read the close code');
  assert.ok(!events.some((e) => e.kind === 'notification'), 'no notification');
  assert.deepEqual(errors, []);
});

test('a good token: the page receives a notification', { skip: noChromium }, async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver, 'Seen in a browser');
  const { page, errors } = await openPage(t, page1.origin, oliver.token);
  await pageEvent(page, 'pong');

  const reaction = await reactToPost(server, john, post, 'SAD');
  const { notification: n } = await pageEvent(page, 'notification');
  assert.match(n.id, /^\d+$/);
  assert.deepEqual({ ...n, id: undefined, created_at: undefined }, {
    id: undefined,
    message: `${john.username} reacted to your post`,
    action: 'reaction',
    action_id: reaction,
    by_user: john.username,
    action_content: 'sad',
    affected: 'post',
    affected_id: post,
    created_at: undefined,
  });
  // And the page shows it.
  await within(page.getByText(`${john.username} reacted to your post`).waitFor(), 'the page to show the notification');
  assert.deepEqual(errors, []);
});

test('a page on an origin not in --allowed-origins cannot open the socket', { skip: noChromium }, async (t) => {
  const oliver = await register(server, 'Oliver');
  const { page } = await openPage(t, page2.origin, oliver.token);
  const close = await pageEvent(page, 'close');
  // The handshake is refused (HTTP 403), which a browser reports as 1006.
  assert.equal(close.code, 1006);
  const events = await page.evaluate(() => window.events);
  assert.ok(!events.some((e) => e.kind === 'open'), `the socket never opened: ${JSON.stringify(events)}`);
  assert.match(server.log(), /plain socket refused.*status=403.*origin=http:\/\/127\.0\.0\.1/);
});
