// The plain socket's change stream (/ws/<token>/?changes=1) with `ws`,
// through snippets/plain-socket-changes.js: a reaction and its removal
// arrive live, in order, each with the unread count after it; and the
// snippet runs as a program, as README's tour runs it.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { Inbox, createPost, reactToPost, register, removeReactionFromPost, runSnippet, useServer, within } from '../harness.mjs';

const { watchChanges } = createRequire(import.meta.url)('../snippets/plain-socket-changes.js');

const server = useServer();

test('a reaction and its removal arrive live, each with the unread count after it', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver, 'A post');

  const changes = new Inbox("Oliver's changes");
  let onLive;
  const live = new Promise((resolve) => (onLive = resolve));
  const socket = watchChanges({
    base: server.wsURL,
    token: oliver.token,
    onChange: changes.push,
    onLive,
    onClose: (code, reason) => changes.fail(new Error(`the socket closed: ${code} ${reason}`)),
  });
  t.after(() => socket.close());
  await within(live, 'the pong that says the stream runs');

  await reactToPost(server, john, post, 'LOVE');
  const added = await changes.next((c) => c.type === 'notification', 'the reaction notification');
  assert.equal(added.message, `${john.username} reacted to your post`);
  assert.equal(added.cursor, added.id, 'an added notification\'s cursor is its id');
  assert.equal(added.unread_count, 1);

  await removeReactionFromPost(server, john, post);
  const removed = await changes.next((c) => c.type === 'removed', 'the removal');
  assert.deepEqual(removed.ids, [added.id]);
  assert.equal(removed.unread_count, 0);
  assert.ok(BigInt(removed.cursor) > BigInt(added.cursor), `cursor ${removed.cursor} comes after ${added.cursor}`);
  assert.deepEqual(changes.items.map((c) => c.type), ['notification', 'removed'], 'no gap and no duplicate');
});

test('the snippet runs as a program: node snippets/plain-socket-changes.js <token> <ws url>', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver, 'A post');
  const lines = runSnippet(t, 'plain-socket-changes.js', [oliver.token, server.wsURL]);

  await lines.next((l) => l === 'live', 'the stream to start ("live")');
  await reactToPost(server, john, post, 'LAUGH');
  const want = new RegExp(`^(\\d+): notification ${john.username} reacted to your post \\(unread 1\\)$`);
  const id = want.exec(await lines.next((l) => want.test(l), `a line like ${want}`))[1];
  await removeReactionFromPost(server, john, post);
  const removed = new RegExp(`^\\d+: removed ${id} \\(unread 0\\)$`);
  await lines.next((l) => removed.test(l), `a line like ${removed}`);
});
