// urql: queries and mutations over HTTP (the token in the Authorization
// header), subscriptions through subscriptionExchange over graphql-ws (the
// token in the connection_init payload).
// Run, in e2e/ after npm ci: node snippets/urql.mjs <token> [http://127.0.0.1:8000/query]
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // Node 20 has no WebSocket of its own; in a browser, leave webSocketImpl out
import { fileURLToPath } from 'node:url';

export function makeUrqlClient({ url = 'http://127.0.0.1:8000/query', token }) {
  const wsClient = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    shouldRetry: (e) => e?.code !== 4403, // a bad token: retrying cannot help
  });
  const client = new Client({
    url,
    fetchOptions: { headers: { Authorization: `Bearer ${token}` } },
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return { subscribe: (sink) => ({ unsubscribe: wsClient.subscribe(input, sink) }) };
        },
      }),
    ],
  });
  client.close = () => wsClient.dispose();
  return client;
}

export const NOTIFICATIONS = `
  subscription Notifications($after: ID) {
    notifications(after: $after) { id message action byUser actionContent affected affectedId }
  }
`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const client = makeUrqlClient({ token: process.argv[2], url: process.argv[3] });
  client.subscription(NOTIFICATIONS, {}).subscribe(({ data, error }) =>
    error ? console.error(error.message) : console.log(`${data.notifications.id}: ${data.notifications.message}`));
}
