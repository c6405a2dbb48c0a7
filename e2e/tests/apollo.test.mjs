// Apollo Client with a split link (snippets/apollo.mjs): HttpLink for
// queries and mutations, GraphQLWsLink over graphql-ws for subscriptions.
// One user's mutation reaches another user's subscription.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Inbox, createPost, register, useServer } from '../harness.mjs';
import { NOTIFICATIONS, REACT_TO_POST, makeApolloClient } from '../snippets/apollo.mjs';
import { gql } from '@apollo/client';

const server = useServer();

test("a mutation by one user's client reaches another user's subscription", async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver, 'Apollo post');

  const oliverClient = makeApolloClient({ url: server.queryURL, token: oliver.token });
  const johnClient = makeApolloClient({ url: server.queryURL, token: john.token });
  t.after(() => {
    oliverClient.close();
    johnClient.close();
  });

  // A query over the HttpLink, with the token in the Authorization header.
  const me = await johnClient.query({ query: gql`query { me { id username } }` });
  assert.equal(me.data.me.username, john.username);

  // `after: "0"`: everything from the start, so the test does not depend on
  // when the server starts the subscription (see graphql-ws.test.mjs).
  const inbox = new Inbox("Oliver's Apollo subscription");
  const sub = oliverClient.subscribe({ query: NOTIFICATIONS, variables: { after: '0' } }).subscribe({
    next: ({ data, error }) => (error ? inbox.fail(error) : inbox.push(data.notifications)),
    error: inbox.fail,
  });
  t.after(() => sub.unsubscribe());

  const { data } = await johnClient.mutate({ mutation: REACT_TO_POST, variables: { postId: post, kind: 'WOW' } });
  assert.equal(data.reactToPost.kind, 'WOW');

  const n = await inbox.next(() => true, 'the reaction notification');
  assert.equal(n.__typename, 'Notification');
  assert.deepEqual(
    { message: n.message, action: n.action, byUser: n.byUser, actionContent: n.actionContent, affected: n.affected, affectedId: n.affectedId },
    { message: `${john.username} reacted to your post`, action: 'REACTION', byUser: john.username, actionContent: 'wow', affected: 'POST', affectedId: post },
  );
});
