// graphql-ws's createClient (protocol graphql-transport-ws), through
// snippets/graphql-ws.mjs: the notifications and unreadCount subscriptions, a
// bad token, and resuming with `after`.
//
// A subscription without `after` starts "from now", and the protocol has no
// message that says when the server has started it; so a test that acts
// right after subscribing passes `after` (the last id the user has, "0" for
// none), which makes the server deliver everything after that point whether
// it was stored before or after the subscription started.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BAD_TOKEN, Inbox, createPost, describe, follow, notificationIds, reactToPost, register, runSnippet, useServer, within } from '../harness.mjs';
import { connect, watchNotifications, watchUnreadCount } from '../snippets/graphql-ws.mjs';

const server = useServer();

function subscribeNotifications(client, name, after) {
  const inbox = new Inbox(name);
  const stop = watchNotifications(client, { after, onNotification: inbox.push, onError: inbox.fail });
  return { inbox, stop };
}

test('notifications: a reaction arrives with all its fields', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver);
  const client = connect({ url: server.wsQueryURL, token: oliver.token });
  t.after(() => client.dispose());

  const { inbox, stop } = subscribeNotifications(client, "Oliver's notifications", '0');
  t.after(stop);
  const reaction = await reactToPost(server, john, post, 'LOVE');

  const n = await inbox.next(() => true, 'the reaction notification');
  assert.match(n.id, /^\d+$/);
  assert.ok(!Number.isNaN(Date.parse(n.createdAt)), `createdAt ${n.createdAt} is a time`);
  assert.deepEqual({ ...n, id: undefined, createdAt: undefined }, {
    id: undefined,
    createdAt: undefined,
    message: `${john.username} reacted to your post`,
    action: 'REACTION',
    actionId: reaction,
    byUser: john.username,
    actionContent: 'love',
    affected: 'POST',
    affectedId: post,
  });
});

test('unreadCount: the count at once, then every change', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver);
  await reactToPost(server, john, post, 'LIKE'); // one unread before subscribing
  const client = connect({ url: server.wsQueryURL, token: oliver.token });
  t.after(() => client.dispose());

  const counts = new Inbox("Oliver's unreadCount");
  t.after(watchUnreadCount(client, { onCount: counts.push, onError: counts.fail }));
  // The first value comes once the server has subscribed to changes, so the
  // follow below is seen.
  assert.equal(await counts.next(() => true, 'the current count'), 1);

  await follow(server, john, oliver.username);
  assert.equal(await counts.next((c) => c === 2, 'the count to become 2'), 2);

  await server.gql('mutation { markNotificationsRead(all: true) }', {}, oliver.token);
  assert.equal(await counts.next((c) => c === 0, 'the count to become 0 after markNotificationsRead'), 0);
  assert.deepEqual(counts.items, [1, 2, 0]);
});

test('a bad token ends the subscription with close code 4403', async (t) => {
  const client = connect({ url: server.wsQueryURL, token: BAD_TOKEN });
  t.after(() => client.dispose());
  const closed = new Promise((resolve) => client.on('closed', resolve));
  const { inbox } = subscribeNotifications(client, 'the bad token subscription');

  const err = await inbox.next(() => false, 'nothing').then(
    () => assert.fail('the subscription delivered something'),
    (e) => e,
  );
  // The sink's error is the socket's CloseEvent.
  assert.match(err.message, /close 4403/, `the subscription's error: ${err.message}`);
  const event = await within(closed, 'the client\'s "closed" event');
  assert.equal(event.code, 4403, describe(event));
  assert.match(event.reason, /invalid access token/i);
});

test('resume with after: the missed notifications in order, then live ones, no duplicate', async (t) => {
  const oliver = await register(server, 'Oliver');
  const fans = [await register(server, 'Fan'), await register(server, 'Fan'), await register(server, 'Fan'), await register(server, 'Fan')];
  // Three notifications while Oliver is away.
  for (const fan of fans.slice(0, 3)) await follow(server, fan, oliver.username);
  const stored = (await notificationIds(server, oliver)).reverse(); // oldest first
  assert.equal(stored.length, 3);

  const client = connect({ url: server.wsQueryURL, token: oliver.token });
  t.after(() => client.dispose());
  // Oliver saw the first one; he resumes after it.
  const { inbox, stop } = subscribeNotifications(client, "Oliver's resumed notifications", stored[0]);
  t.after(stop);
  const replayed = await inbox.count(2, 'the two missed notifications');
  assert.deepEqual(replayed.map((n) => n.id), stored.slice(1));
  assert.deepEqual(replayed.map((n) => n.byUser), [fans[1].username, fans[2].username]);

  await follow(server, fans[3], oliver.username);
  const live = await inbox.next((n) => n.byUser === fans[3].username, 'the live notification');
  assert.equal(live.message, `${fans[3].username} started following you`);
  assert.ok(BigInt(live.id) > BigInt(stored[2]), 'ids increase');
  assert.deepEqual(inbox.items.map((n) => n.id), [...stored.slice(1), live.id], 'no gap and no duplicate');
});

test('the snippet runs as a program: node snippets/graphql-ws.mjs <token> <url>', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const lines = runSnippet(t, 'graphql-ws.mjs', [oliver.token, server.wsQueryURL]);

  await lines.next((l) => l === 'unread: 0', '"unread: 0"');
  await follow(server, john, oliver.username);
  await lines.next((l) => l === 'unread: 1', '"unread: 1"');
  assert.ok(!lines.items.some((l) => l.startsWith('stderr')), `no errors: ${describe(lines.items)}`);
});
