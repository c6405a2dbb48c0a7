// Two tabs of one user in Chromium, each with its own plain socket on the
// inbox change stream (?changes=1): what one tab does to the inbox shows in
// the other, and a live removal reaches both (docs/api.md, "The change
// stream: ?changes=1").

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createPost, reactToPost, register, removeReactionFromPost, startServer } from '../harness.mjs';
import { launch, noChromium, servePage } from '../browser.mjs';

// The page: an inbox kept from the change stream, one <li> per
// notification, marked read or removed as the frames say; window.frames
// keeps every frame, and window.markRead marks notifications read over
// /query.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Inbox</title>
<ul id="inbox"></ul>
<script>
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  window.received = [];
  const socket = new WebSocket(params.get('server') + '/ws/' + encodeURIComponent(token) + '/?changes=1&after=0');
  socket.onmessage = (e) => {
    const f = JSON.parse(e.data);
    window.received.push(f);
    const item = (id) => document.querySelector('li[data-id="' + id + '"]');
    if (f.type === 'notification') {
      const li = document.createElement('li');
      li.dataset.id = f.id;
      li.className = 'unread';
      li.textContent = f.message;
      document.getElementById('inbox').prepend(li);
    } else if (f.type === 'read') {
      f.ids.forEach((id) => item(id)?.classList.replace('unread', 'read'));
    } else if (f.type === 'removed') {
      f.ids.forEach((id) => item(id)?.remove());
    }
  };
  window.markRead = async (ids) => {
    const res = await fetch(params.get('query'), {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: 'mutation ($ids: [ID!]) { markNotificationsRead(ids: $ids) }', variables: { ids } }),
    });
    return res.json();
  };
</script>
`;

let pages;
let browser;
const server = {};
before(async () => {
  if (noChromium) return;
  pages = await servePage({ '/': PAGE });
  Object.assign(server, await startServer({ extraArgs: ['--allowed-origins', pages.origin] }));
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server.stop?.();
  await pages?.close();
});

/** openTab opens the inbox page for token in a new tab. */
async function openTab(t, token) {
  const page = await browser.context.newPage();
  t.after(() => page.close());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${pages.origin}/?` + new URLSearchParams({ server: server.wsURL, query: server.queryURL, token }));
  return { page, errors };
}

/** frame waits for the tab's first frame of this type whose ids are ids, and returns it. */
async function frame(page, type, ids) {
  try {
    const handle = await page.waitForFunction(
      ([type, ids]) => window.received.find((f) => f.type === type && JSON.stringify(f.ids ?? [f.id]) === JSON.stringify(ids)),
      [type, ids],
      { timeout: 10_000 },
    );
    return await handle.jsonValue();
  } catch (err) {
    const received = await page.evaluate(() => window.received).catch(() => 'unknown');
    throw new Error(`timed out waiting for a ${type} frame of ${ids}; the tab received ${JSON.stringify(received)}`, { cause: err });
  }
}

/** shown returns the tab's inbox as "id:class" strings, newest first. */
function shown(page) {
  return page.evaluate(() => [...document.querySelectorAll('#inbox li')].map((li) => `${li.dataset.id}:${li.className}`));
}

test('marking read in one tab shows as read in the other; a removed reaction leaves both', { skip: noChromium }, async (t) => {
  const oliver = await register(server, 'Oliver');
  const john = await register(server, 'John');
  const sarah = await register(server, 'Sarah');
  const post = await createPost(server, oliver, 'Seen in two tabs');
  const tab1 = await openTab(t, oliver.token);
  const tab2 = await openTab(t, oliver.token);

  await reactToPost(server, john, post, 'LOVE');
  await reactToPost(server, sarah, post, 'LIKE');
  const added = [];
  for (const tab of [tab1, tab2]) {
    const frames = await tab.page.waitForFunction(() => window.received.length >= 2 && window.received, null, { timeout: 10_000 });
    added.push((await frames.jsonValue()).map((f) => [f.type, f.by_user, f.unread_count]));
  }
  assert.deepEqual(added[0], [['notification', john.username, 1], ['notification', sarah.username, 2]]);
  assert.deepEqual(added[1], added[0]);
  const [n1, n2] = (await tab1.page.evaluate(() => window.received)).map((f) => f.id);

  // Tab 1 marks both read; tab 2 hears of it.
  const res = await tab1.page.evaluate((ids) => window.markRead(ids), [n1, n2]);
  assert.deepEqual(res, { data: { markNotificationsRead: 2 } });
  for (const tab of [tab2, tab1]) {
    const f = await frame(tab.page, 'read', [n1, n2]);
    assert.equal(f.unread_count, 0);
    assert.match(f.cursor, /^\d+$/);
    assert.deepEqual(await shown(tab.page), [`${n2}:read`, `${n1}:read`]);
  }

  // John takes his reaction back: both tabs drop his notification, live.
  assert.equal(await removeReactionFromPost(server, john, post), true);
  for (const tab of [tab1, tab2]) {
    const f = await frame(tab.page, 'removed', [n1]);
    assert.equal(f.unread_count, 0);
    assert.deepEqual(await shown(tab.page), [`${n2}:read`]);
    assert.deepEqual(tab.errors, []);
  }
});
