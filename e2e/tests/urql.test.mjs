// urql's Client with subscriptionExchange over graphql-ws
// (snippets/urql.mjs): a subscription receives a notification; a query over
// the fetchExchange carries the token in the Authorization header.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Inbox, follow, register, useServer } from '../harness.mjs';
import { NOTIFICATIONS, makeUrqlClient } from '../snippets/urql.mjs';

const server = useServer();

test('urql receives a notification through subscriptionExchange', async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const client = makeUrqlClient({ url: server.queryURL, token: oliver.token });
  t.after(() => client.close());

  const me = await client.query('query { me { username } }', {}).toPromise();
  assert.equal(me.error, undefined, me.error?.message);
  assert.equal(me.data.me.username, oliver.username);

  // `after: "0"`: see graphql-ws.test.mjs.
  const inbox = new Inbox("Oliver's urql subscription");
  const sub = client.subscription(NOTIFICATIONS, { after: '0' }).subscribe(({ data, error }) =>
    error ? inbox.fail(error) : inbox.push(data.notifications));
  t.after(() => sub.unsubscribe());

  await follow(server, john, oliver.username);
  const n = await inbox.next(() => true, 'the follow notification');
  assert.match(n.id, /^\d+$/);
  assert.deepEqual(
    { message: n.message, action: n.action, byUser: n.byUser, actionContent: n.actionContent, affected: n.affected, affectedId: n.affectedId },
    { message: `${john.username} started following you`, action: 'FOLLOWING', byUser: john.username, actionContent: null, affected: null, affectedId: null },
  );
});
