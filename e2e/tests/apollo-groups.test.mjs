// Apollo Client keeping a grouped inbox live from inboxChanges (docs/api.md,
// "Grouped notifications"): load notificationGroups, subscribe after its
// cursor, apply each change's groups; the list must stay what
// notificationGroups returns afresh.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gql } from '@apollo/client';

import { Inbox, createPost, follow, reactToPost, register, removeReactionFromPost, useServer } from '../harness.mjs';
import { makeApolloClient } from '../snippets/apollo.mjs';

const server = useServer();

const GROUP = 'key message actorCount sampleActors notificationCount unreadCount latest { id }';
const GROUPS = gql`query { notificationGroups(first: 100) { edges { cursor node { ${GROUP} } } } }`;
const CHANGES = gql`subscription ($after: ID) { inboxChanges(after: $after) { cursor kind groups { ${GROUP} } } }`;

/** apply puts a change's groups into list (newest first): an emptied group leaves it. */
function apply(list, groups) {
  for (const g of groups) {
    const i = list.findIndex((h) => h.key === g.key);
    if (i >= 0) list.splice(i, 1);
    if (g.notificationCount > 0) list.push(g);
  }
  list.sort((a, b) => Number(b.latest.id) - Number(a.latest.id));
}

test('a grouped list kept from inboxChanges equals notificationGroups after reactions and a removal', async (t) => {
  const oliver = await register(server, 'Oliver');
  const [john, sarah, mia] = [await register(server, 'John'), await register(server, 'Sarah'), await register(server, 'Mia')];
  const post = await createPost(server, oliver, 'Grouped in Apollo');
  await follow(server, sarah, oliver.username);

  const client = makeApolloClient({ url: server.queryURL, token: oliver.token });
  t.after(() => client.close());
  const fresh = async () => (await client.query({ query: GROUPS, fetchPolicy: 'no-cache' })).data.notificationGroups.edges;

  const loaded = await fresh();
  assert.equal(loaded.length, 1, 'the follow');
  const list = loaded.map((e) => e.node);
  const changes = new Inbox("Oliver's inboxChanges");
  const sub = client.subscribe({ query: CHANGES, variables: { after: loaded[0].cursor }, fetchPolicy: 'no-cache' }).subscribe({
    next: ({ data, error }) => {
      if (error) return changes.fail(error);
      apply(list, data.inboxChanges.groups);
      changes.push({ kind: data.inboxChanges.kind, list: structuredClone(list) });
    },
    error: changes.fail,
  });
  t.after(() => sub.unsubscribe());

  for (const u of [john, sarah, mia]) await reactToPost(server, u, post, 'LIKE');
  const [, , third] = await changes.count(3, 'three ADDED changes');
  assert.equal(third.kind, 'ADDED');
  assert.equal(third.list[0].message, `${mia.username} and 2 others reacted to your post`);
  assert.deepEqual(third.list, (await fresh()).map((e) => e.node));

  await removeReactionFromPost(server, john, post);
  const [, , , fourth] = await changes.count(4, 'the REMOVED change');
  assert.equal(fourth.kind, 'REMOVED');
  assert.equal(fourth.list[0].message, `${mia.username} and ${sarah.username} reacted to your post`);
  assert.deepEqual(fourth.list[0].sampleActors, [mia.username, sarah.username]);
  assert.deepEqual(fourth.list, (await fresh()).map((e) => e.node));
});
