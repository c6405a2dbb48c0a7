// graphql-sse (distinct connections mode): the `notifications` subscription
// as one POST /query, with the Authorization header queries use.
// Run, in e2e/ after npm ci: node snippets/graphql-sse.mjs <token> [http://127.0.0.1:8000/query]
import { createClient } from 'graphql-sse';
import { fileURLToPath } from 'node:url';

// Every notification, live, from the moment onConnected is called. Returns a
// function that stops it.
export function watchNotifications({ url = 'http://127.0.0.1:8000/query', token, onNotification, onConnected = () => {}, onError = console.error }) {
  const client = createClient({ url, headers: { Authorization: `Bearer ${token}` } });
  const stop = client.subscribe(
    { query: 'subscription { notifications { id message action byUser createdAt } }' },
    {
      next: ({ data, errors }) => (errors ? onError(errors) : onNotification(data.notifications)),
      error: onError, // a bad token: HTTP 401, after the client's retries
      complete: () => {}, // after an error such as "logged out" (UNAUTHENTICATED)
    },
    { connected: onConnected },
  );
  return () => {
    stop();
    client.dispose();
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  watchNotifications({
    token: process.argv[2],
    url: process.argv[3],
    onConnected: () => console.log('live'),
    onNotification: (n) => console.log(`${n.id}: ${n.message}`),
  });
}
