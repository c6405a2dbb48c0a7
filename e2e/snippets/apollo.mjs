// Apollo Client: queries and mutations over HTTP (the token in the
// Authorization header), subscriptions over graphql-ws (the token in the
// connection_init payload), chosen by a split link.
// Run, in e2e/ after npm ci: node snippets/apollo.mjs <token> [http://127.0.0.1:8000/query]
import { ApolloClient, HttpLink, InMemoryCache, gql, split } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // Node 20 has no WebSocket of its own; in a browser, leave webSocketImpl out
import { fileURLToPath } from 'node:url';

export function makeApolloClient({ url = 'http://127.0.0.1:8000/query', token }) {
  const httpLink = new HttpLink({ uri: url, headers: { Authorization: `Bearer ${token}` } });
  const wsClient = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    shouldRetry: (e) => e?.code !== 4403, // a bad token: retrying cannot help
  });
  const isSubscription = ({ query }) => {
    const def = getMainDefinition(query);
    return def.kind === 'OperationDefinition' && def.operation === 'subscription';
  };
  const client = new ApolloClient({
    link: split(isSubscription, new GraphQLWsLink(wsClient), httpLink),
    cache: new InMemoryCache(),
  });
  client.close = () => { client.stop(); wsClient.dispose(); };
  return client;
}

export const NOTIFICATIONS = gql`
  subscription Notifications($after: ID) {
    notifications(after: $after) { id message action byUser actionContent affected affectedId }
  }
`;

export const REACT_TO_POST = gql`
  mutation ReactToPost($postId: ID!, $kind: ReactionKind!) {
    reactToPost(postId: $postId, kind: $kind) { id kind }
  }
`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const client = makeApolloClient({ token: process.argv[2], url: process.argv[3] });
  client.subscribe({ query: NOTIFICATIONS }).subscribe({
    next: ({ data, error }) => (error ? console.error(error) : console.log(`${data.notifications.id}: ${data.notifications.message}`)),
    error: console.error,
  });
}
