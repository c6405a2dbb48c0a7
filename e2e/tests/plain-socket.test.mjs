// The plain socket /ws/<token>/ with `ws`, through the script existing
// clients run today: docs/api.md's, byte for byte (snippets/plain-socket.js),
// with only its URL pointed at this server and a real token.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import vm from 'node:vm';
import { test } from 'node:test';

import { Inbox, createComment, createPost, reactToComment, register, useServer, within } from '../harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const snippetPath = path.join(here, '..', 'snippets', 'plain-socket.js');
const SEED_URL = "'ws://127.0.0.1:8000/ws/123456789/'";

const server = useServer();

/**
 * runSeedScript runs snippets/plain-socket.js as it is, but for its URL, in a
 * context of its own (as if it were its own program), and returns its
 * notifySocket and send_message, what it printed, and every frame its
 * socket received.
 */
async function runSeedScript(name, url) {
  const source = await readFile(snippetPath, 'utf8');
  assert.ok(source.includes(SEED_URL), `${snippetPath} no longer has the URL ${SEED_URL}`);
  const printed = new Inbox(`${name}'s console`);
  const context = vm.createContext({
    require: createRequire(snippetPath),
    console: { log: (...args) => printed.push(args.join(' ')), error: (...args) => printed.push(args.join(' ')) },
  });
  vm.runInContext(source.replace(SEED_URL, JSON.stringify(url)), context, { filename: snippetPath });
  const socket = vm.runInContext('notifySocket', context);
  const sendMessage = vm.runInContext('send_message', context);

  const frames = new Inbox(`${name}'s socket`);
  const closed = new Promise((resolve) => socket.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })));
  socket.addEventListener('message', (e) => frames.push(JSON.parse(e.data)));
  closed.then((c) => frames.fail(new Error(`${name}'s socket closed: ${c.code} ${c.reason}`)));
  await within(
    new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve);
      socket.addEventListener('error', (e) => reject(new Error(`${name}'s socket: ${e.message}`)));
    }),
    `${name}'s socket to open`,
  );
  return { socket, sendMessage, printed, frames, closed };
}

/**
 * ready waits until the server runs the socket: it answers a ping only once
 * the socket's notification feed is open, so anything that happens after
 * that reaches it. (The handshake completes before the token is checked, so
 * "open" alone does not say that.)
 */
async function ready(client, name) {
  client.socket.send(JSON.stringify({ type: 'ping' }));
  await client.frames.next((f) => f.type === 'pong', `the pong answering ${name}'s ping`);
}

function close(...clients) {
  return Promise.all(
    clients.map((c) => {
      if (c.socket.readyState === c.socket.CLOSED) return null;
      c.socket.close();
      return within(c.closed, 'the socket to close');
    }),
  );
}

test("the snippet is docs/api.md's script, byte for byte", async () => {
  const apiMD = path.join(here, '..', '..', 'docs', 'api.md');
  const block = /```js\n([\s\S]*?)```/.exec(await readFile(apiMD, 'utf8'));
  assert.ok(block, `no js block in ${apiMD}`);
  assert.equal(await readFile(snippetPath, 'utf8'), block[1], `the first js block of ${apiMD} is not ${snippetPath}`);
});

test('the seed script receives a reaction notification with every key of docs/api.md', async () => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver, 'A post');
  const comment = await createComment(server, oliver, post, 'My own comment');

  const client = await runSeedScript('Oliver', server.plainSocketURL(oliver.token));
  try {
    await ready(client, 'Oliver');
    const reaction = await reactToComment(server, john, comment, 'LAUGH');

    const n = await client.frames.next((f) => 'id' in f, 'the reaction notification');
    assert.deepEqual(Object.keys(n).sort(), [
      'action', 'action_content', 'action_id', 'affected', 'affected_id', 'by_user', 'created_at', 'id', 'message',
    ]);
    assert.match(n.id, /^\d+$/, 'id is a string of digits');
    const { id, created_at: createdAt, ...rest } = n;
    assert.deepEqual(rest, {
      message: `${john.username} reacted to your comment`,
      action: 'reaction',
      action_id: reaction,
      by_user: john.username,
      action_content: 'laugh',
      affected: 'comment',
      affected_id: comment,
    });
    assert.match(createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'created_at is RFC 3339 in UTC');
    assert.ok(Math.abs(Date.parse(createdAt) - Date.now()) < 60_000, `created_at ${createdAt} is now`);

    // And the script itself printed it, as it does for its users.
    await client.printed.next((line) => line === `Message received: ${john.username} reacted to your comment`, 'the script to print the message');
  } finally {
    await close(client);
  }
});

test("send_message reaches the same user's second socket, not another user's", async () => {
  const ann = await register(server, 'Ann');
  const bob = await register(server, 'Bob');
  const tab1 = await runSeedScript("Ann's first tab", server.plainSocketURL(ann.token));
  const tab2 = await runSeedScript("Ann's second tab", server.plainSocketURL(ann.token));
  const other = await runSeedScript('Bob', server.plainSocketURL(bob.token));
  try {
    await Promise.all([ready(tab1, 'tab 1'), ready(tab2, 'tab 2'), ready(other, 'Bob')]);

    tab1.sendMessage('hello from tab 1');

    const inTab2 = await tab2.frames.next((f) => 'message' in f, "send_message's message in Ann's second tab");
    assert.deepEqual(inTab2, { message: 'hello from tab 1' });
    const inTab1 = await tab1.frames.next((f) => 'message' in f, "send_message's message back in the sender's tab");
    assert.deepEqual(inTab1, { message: 'hello from tab 1' });
    await tab2.printed.next((l) => l === 'Message received: hello from tab 1', 'the second tab to print it');

    // Bob's socket: a ping round trip after Ann's tabs got the message; had
    // it been sent to Bob too, it would have come before the pong.
    other.socket.send(JSON.stringify({ type: 'ping' }));
    await other.frames.count(2, "the pong answering Bob's second ping");
    assert.deepEqual(other.frames.items, [{ type: 'pong' }, { type: 'pong' }], 'Bob got only his pongs');
    assert.deepEqual(other.printed.items, [], 'Bob printed nothing');
  } finally {
    await close(tab1, tab2, other);
  }
});
