// graphql-sse: the `unreadCount` and `inboxChanges` subscriptions, each one
// POST /query that answers with an event stream. A subscription ends with
// an error, then complete, when the session logs out ("logged out") or its
// token expires ("token expired"), and with SLOW_CONSUMER (resume with
// extensions.after) when the client does not keep up.
// Run, in e2e/ after npm ci: node snippets/graphql-sse-inbox.mjs <token> [http://127.0.0.1:8000/query]
import { createClient } from 'graphql-sse';
import { fileURLToPath } from 'node:url';

export function connect({ url = 'http://127.0.0.1:8000/query', token }) {
  return createClient({
    url,
    headers: { Authorization: `Bearer ${token}` },
    // A refused stream (HTTP 401, 429) is retried like a lost one, this
    // many times, backing off from 1 s.
    retryAttempts: 2,
  });
}

// The unread count at once, then on every change.
export function watchUnreadCount(client, { onCount, onError = console.error }) {
  return client.subscribe(
    { query: 'subscription { unreadCount }' },
    { next: ({ data, errors }) => (errors ? onError(errors) : onCount(data.unreadCount)), error: onError, complete: () => {} },
  );
}

// Every change to the inbox (ADDED, REMOVED, READ) after `after` (a cursor
// you saw), then live; without `after`, from the moment onConnected is called.
export function watchInbox(client, { after, onChange, onConnected = () => {}, onError = console.error }) {
  return client.subscribe(
    {
      query: `subscription ($after: ID) {
        inboxChanges(after: $after) { cursor kind notificationIds unreadCount notification { id message } }
      }`,
      variables: { after },
    },
    { next: ({ data, errors }) => (errors ? onError(errors) : onChange(data.inboxChanges)), error: onError, complete: () => {} },
    { connected: onConnected },
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const client = connect({ token: process.argv[2], url: process.argv[3] });
  watchUnreadCount(client, { onCount: (n) => console.log(`unread: ${n}`) });
  watchInbox(client, {
    onConnected: () => console.log('live'),
    onChange: (c) => console.log(`${c.cursor}: ${c.kind} ${c.notificationIds.join(',')}`),
  });
}
