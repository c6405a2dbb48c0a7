// subscriptions-transport-ws's SubscriptionClient (the legacy `graphql-ws`
// subprotocol), through snippets/subscriptions-transport-ws.mjs, with the
// token in connectionParams. `after` makes the test independent of when the
// server starts the subscription (see graphql-ws.test.mjs).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BAD_TOKEN, Inbox, createComment, createPost, register, useServer } from '../harness.mjs';
import { watchNotifications } from '../snippets/subscriptions-transport-ws.mjs';

const server = useServer();

test('SubscriptionClient receives a comment notification', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver);

  const inbox = new Inbox("Oliver's legacy subscription");
  const stop = watchNotifications({ url: server.wsQueryURL, token: oliver.token, after: '0', onNotification: inbox.push, onError: inbox.fail });
  t.after(stop);
  const comment = await createComment(server, john, post, 'First!');

  const n = await inbox.next(() => true, 'the comment notification');
  assert.match(n.id, /^\d+$/);
  assert.deepEqual({ ...n, id: undefined }, {
    id: undefined,
    message: `${john.username} commented on your post`,
    action: 'COMMENT',
    byUser: john.username,
    actionContent: 'First!',
  });
  assert.ok(comment);
});

test('a bad token is reported to connectionCallback', async (t) => {
  const inbox = new Inbox('the bad token subscription');
  const stop = watchNotifications({ url: server.wsQueryURL, token: BAD_TOKEN, onNotification: inbox.push, onError: inbox.fail });
  t.after(stop);
  const err = await inbox.next(() => false, 'nothing').then(
    () => assert.fail('the subscription delivered something'),
    (e) => e,
  );
  assert.match(err.message, /invalid access token/);
});
