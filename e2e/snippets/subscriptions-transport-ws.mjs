// subscriptions-transport-ws (the legacy `graphql-ws` subprotocol of older
// Apollo setups). The token goes in connectionParams, sent in connection_init.
// Run, in e2e/ after npm ci: node snippets/subscriptions-transport-ws.mjs <token> [ws://127.0.0.1:8000/query]
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws'; // Node 20 has no WebSocket of its own; in a browser, leave it out
import { fileURLToPath } from 'node:url';

export function watchNotifications({ url = 'ws://127.0.0.1:8000/query', token, after, onNotification, onError = console.error }) {
  const client = new SubscriptionClient(
    url,
    {
      reconnect: true,
      connectionParams: { authorization: `Bearer ${token}` },
      // A bad token: the server answers connection_error, then closes with
      // 4403. Stop, or the client reconnects with the same token forever.
      connectionCallback: (error) => {
        if (error) {
          client.close();
          onError(error);
        }
      },
    },
    WebSocket,
  );
  const subscription = client
    .request({
      query: 'subscription ($after: ID) { notifications(after: $after) { id message action byUser actionContent } }',
      variables: { after },
    })
    .subscribe({
      next: ({ data, errors }) => (errors ? onError(errors) : onNotification(data.notifications)),
      error: onError,
    });
  return () => { subscription.unsubscribe(); client.close(); };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  watchNotifications({ token: process.argv[2], url: process.argv[3], onNotification: (n) => console.log(`${n.id}: ${n.message}`) });
}
