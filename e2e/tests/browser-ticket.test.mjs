// A web page that never puts the access token in a URL: it fetches a socket
// ticket with the token in a header and opens /ws/<ticket>/, through
// snippets/browser-ticket.js, in Chromium. The page is served from another
// origin, which the server is started to allow. The server's log must show
// neither the token nor the ticket.

import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { createPost, reactToPost, register, startServer, within } from '../harness.mjs';
import { launch, noChromium } from '../browser.mjs';

const snippet = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'snippets', 'browser-ticket.js');

// The page: the test hands it the token by a call, not in its URL.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Notifications</title>
<script src="/browser-ticket.js"></script>
<script>
  window.events = [];
  window.start = (server, token) =>
    connectWithTicket({
      server,
      token,
      onNotification: (n) => window.events.push({ kind: 'notification', notification: n }),
      onClose: (code, reason) => window.events.push({ kind: 'close', code, reason }),
    }).then((socket) => {
      socket.addEventListener('open', () => socket.send(JSON.stringify({ type: 'ping' })));
      socket.addEventListener('message', (e) => {
        if (JSON.parse(e.data).type === 'pong') window.events.push({ kind: 'pong' });
      });
      return socket.url.split('/ws/')[1].replace(/\\/$/, ''); // the ticket, for the test
    });
</script>
`;

let pageServer;
let browser;
const server = {};
before(async () => {
  if (noChromium) return;
  const js = await readFile(snippet);
  pageServer = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    if (pathname === '/') res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (pathname === '/browser-ticket.js') res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(js);
    else res.writeHead(404).end();
  });
  await new Promise((resolve, reject) => pageServer.listen(0, '127.0.0.1', resolve).on('error', reject));
  const origin = `http://127.0.0.1:${pageServer.address().port}`;
  Object.assign(server, await startServer({ extraArgs: ['--allowed-origins', origin, '--log-level', 'debug'] }));
  server.origin = origin;
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server.stop?.();
  if (pageServer) {
    await within(new Promise((resolve) => { pageServer.close(resolve); pageServer.closeAllConnections(); }), 'the page server to close');
  }
});

/** pageEvent waits for the page's first event of this kind and returns it. */
async function pageEvent(page, kind) {
  const handle = await page.waitForFunction((k) => window.events.find((e) => e.kind === k), kind, { timeout: 10_000 });
  return handle.jsonValue();
}

test('a page opens the plain socket with a ticket; no URL and no log line holds the token or the ticket', { skip: noChromium }, async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver, 'Seen through a ticket');

  const page = await browser.context.newPage();
  t.after(() => page.close());
  const urls = [];
  const errors = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.origin}/`);
  const ticket = await page.evaluate(([s, tok]) => window.start(s, tok), [server.httpURL, oliver.token]);
  await pageEvent(page, 'pong');

  await reactToPost(server, john, post, 'WOW');
  const { notification } = await pageEvent(page, 'notification');
  assert.equal(notification.message, `${john.username} reacted to your post`);

  // The ticket was used: a second socket with it is refused as a bad token is.
  const refused = await page.evaluate((url) => new Promise((resolve) => {
    const s = new WebSocket(url);
    s.onclose = (e) => resolve({ code: e.code, reason: e.reason });
  }), `${server.wsURL}/ws/${ticket}/`);
  assert.deepEqual(refused, { code: 4401, reason: 'invalid access token' });

  assert.ok(ticket.length >= 22, `a ticket of at least 128 bits: ${ticket}`);
  assert.ok(urls.some((u) => u.includes(ticket)), `the socket's URL holds the ticket: ${urls}`);
  for (const u of urls) assert.ok(!u.includes(oliver.token), `a URL holds the token: ${u}`);
  assert.deepEqual(errors, []);

  // Stopped, so that every close line is written.
  await page.close();
  await server.stop();
  const log = server.log();
  assert.match(log, /plain socket open/);
  assert.ok(!log.includes(oliver.token), 'the token appears in the server log');
  assert.ok(!log.includes(ticket), 'the ticket appears in the server log');
});
