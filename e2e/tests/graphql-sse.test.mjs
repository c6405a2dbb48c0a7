// graphql-sse's createClient (distinct connections mode: one POST /query per
// subscription, answered with an event stream), through
// snippets/graphql-sse.mjs and snippets/graphql-sse-inbox.mjs, against the
// real server: the notifications, unreadCount and inboxChanges subscriptions
// with an Authorization header, and logout ending a stream.
//
// The server fixes where a subscription without `after` starts before it
// answers, so a test acts once the client's `connected` has fired.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Inbox, createPost, follow, reactToPost, register, runSnippet, useServer, within } from '../harness.mjs';
import { watchNotifications } from '../snippets/graphql-sse.mjs';
import { connect, watchInbox, watchUnreadCount } from '../snippets/graphql-sse-inbox.mjs';

const server = useServer();

/** connected returns a promise of the `connected` callback, and the callback. */
function connectedSignal() {
  let onConnected;
  const connected = new Promise((resolve) => (onConnected = resolve));
  return { connected, onConnected };
}

test('notifications: a reaction arrives, with the Authorization header as the only credential', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver);
  const inbox = new Inbox("Oliver's notifications");
  const { connected, onConnected } = connectedSignal();
  t.after(watchNotifications({ url: server.queryURL, token: oliver.token, onNotification: inbox.push, onConnected, onError: inbox.fail }));
  await within(connected, 'the stream to start');

  await reactToPost(server, john, post, 'LOVE');
  const n = await inbox.next(() => true, 'the reaction notification');
  assert.match(n.id, /^\d+$/);
  assert.equal(n.action, 'REACTION');
  assert.equal(n.byUser, john.username);
  assert.equal(n.message, `${john.username} reacted to your post`);
  assert.ok(!Number.isNaN(Date.parse(n.createdAt)), `createdAt ${n.createdAt} is a time`);
});

test('unreadCount and inboxChanges: the count at once, then each change, resumed with after', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  await follow(server, john, oliver.username); // one notification before subscribing
  const client = connect({ url: server.queryURL, token: oliver.token });
  t.after(() => client.dispose());

  const counts = new Inbox("Oliver's unreadCount");
  t.after(watchUnreadCount(client, { onCount: counts.push, onError: counts.fail }));
  assert.equal(await counts.next(() => true, 'the current count'), 1);

  const changes = new Inbox("Oliver's inbox changes");
  t.after(watchInbox(client, { after: '0', onChange: changes.push, onError: changes.fail }));
  const added = await changes.next((c) => c.kind === 'ADDED', 'the stored ADDED change');
  assert.equal(added.unreadCount, 1);

  await server.gql('mutation { markNotificationsRead(all: true) }', {}, oliver.token);
  const read = await changes.next((c) => c.kind === 'READ', 'the READ change');
  assert.deepEqual(read.notificationIds, [added.notification.id]);
  assert.equal(await counts.next((c) => c === 0, 'the count to become 0'), 0);
  assert.deepEqual(changes.items.map((c) => c.kind), ['ADDED', 'READ'], 'no gap and no duplicate');
});

test('logout ends the stream with UNAUTHENTICATED "logged out"', async (t) => {
  const alice = await register(server, 'Alice');
  const client = connect({ url: server.queryURL, token: alice.token });
  t.after(() => client.dispose());
  const changes = new Inbox("Alice's inbox changes");
  const { connected, onConnected } = connectedSignal();
  t.after(watchInbox(client, { onChange: changes.push, onConnected, onError: changes.fail }));
  await within(connected, 'the stream to start');

  await server.gql('mutation { logout }', {}, alice.token);
  const err = await changes.next(() => false, 'nothing').then(
    () => assert.fail('the subscription delivered something'),
    (e) => e,
  );
  assert.match(err.message, /logged out/, err.message);
  assert.match(err.message, /UNAUTHENTICATED/, err.message);
});

for (const [snippet, expect] of [
  ['graphql-sse.mjs', (john) => new RegExp(`^\\d+: ${john.username} started following you$`)],
  ['graphql-sse-inbox.mjs', () => /^\d+: ADDED \d+$/],
]) {
  test(`the snippet runs as a program: node snippets/${snippet} <token> <url>`, async (t) => {
    const john = await register(server, 'John');
    const oliver = await register(server, 'Oliver');
    const lines = runSnippet(t, snippet, [oliver.token, server.queryURL]);

    await lines.next((l) => l === 'live', 'the stream to start ("live")');
    await follow(server, john, oliver.username);
    const want = expect(john);
    await lines.next((l) => want.test(l), `a line like ${want}`);
  });
}
