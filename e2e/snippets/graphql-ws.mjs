// graphql-ws (protocol graphql-transport-ws): the `notifications` and
// `unreadCount` subscriptions. The token goes in the connection_init payload.
// Run, in e2e/ after npm ci: node snippets/graphql-ws.mjs <token> [ws://127.0.0.1:8000/query]
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // Node 20 has no WebSocket of its own; in a browser, leave webSocketImpl out
import { fileURLToPath } from 'node:url';

export function connect({ url = 'ws://127.0.0.1:8000/query', token }) {
  return createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    // A bad token closes the socket with 4403: retrying cannot help.
    shouldRetry: (e) => e?.code !== 4403,
  });
}

// Every notification, live; with `after` (the last id you saw) the ones you
// missed come first, oldest first. Returns a function that stops it.
export function watchNotifications(client, { after, onNotification, onError = console.error }) {
  return client.subscribe(
    {
      query: `subscription ($after: ID) {
        notifications(after: $after) { id message action actionId byUser actionContent affected affectedId createdAt }
      }`,
      variables: { after },
    },
    {
      next: ({ data, errors }) => (errors ? onError(errors) : onNotification(data.notifications)),
      error: onError, // GraphQL errors, or the CloseEvent: e.code 4403 for a bad token
      complete: () => {},
    },
  );
}

// The unread count at once, then on every change.
export function watchUnreadCount(client, { onCount, onError = console.error }) {
  return client.subscribe(
    { query: 'subscription { unreadCount }' },
    {
      next: ({ data, errors }) => (errors ? onError(errors) : onCount(data.unreadCount)),
      error: onError,
      complete: () => {},
    },
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const client = connect({ token: process.argv[2], url: process.argv[3] });
  watchUnreadCount(client, { onCount: (n) => console.log(`unread: ${n}`) });
  watchNotifications(client, { onNotification: (n) => console.log(`${n.id}: ${n.message}`) });
}
