// The Pulse GraphQL playground: mounts GraphiQL (loaded before this file,
// with React, ReactDOM and graphql-ws, as UMD globals) on #graphiql.
//
// Queries and mutations go over HTTP POST to the endpoint named in the
// element's data-endpoint attribute, with the headers from GraphiQL's Headers
// editor. Subscriptions go over a websocket to the same URL (ws: or wss:, as
// the page's own scheme) with the graphql-transport-ws protocol, and the
// Authorization header from the Headers editor travels in the connection_init
// payload as {"authorization": "<value>"}; the websocket client is re-created
// whenever that value changes.
//
// This file is served as a script file, never inline, so that the page runs
// under a Content-Security-Policy of script-src 'self'.
(function () {
  'use strict';

  const root = document.getElementById('graphiql');
  const endpoint = root.getAttribute('data-endpoint') || '/query';
  const httpURL = new URL(endpoint, document.baseURI);
  const wsURL = new URL(httpURL.href);
  wsURL.protocol = httpURL.protocol === 'https:' ? 'wss:' : 'ws:';

  // The first tab's document, shown until the person edits it (GraphiQL keeps
  // their tabs in localStorage). It carries the instructions, since the
  // Headers editor holds JSON, which has no comments.
  const defaultQuery = `# The Pulse GraphQL playground: queries, mutations and
# subscriptions against ${httpURL.pathname} on this server.
#
# Most operations need an access token:
#  1. Run "Register" below with a username and password
#     of your own (or "Login" if you registered before).
#  2. Copy the accessToken from the response.
#  3. In the Headers tab below, replace {} with
#       {"Authorization": "Bearer <the accessToken>"}
#     Queries and mutations send it as an HTTP header;
#     subscriptions send it in the websocket's
#     connection_init payload.
#
# To run one of several operations, put the cursor in it
# and press Ctrl+Enter, or use the run button's menu.
# A running subscription shows a stop button.
#
# To watch notifications arrive, run "Notifications",
# then, as another user in a second (private) window,
# follow this user, or comment on or react to a post.

mutation Register {
  register(username: "alice", password: "correct horse battery") {
    accessToken
    user { id username }
  }
}

mutation Login {
  login(username: "alice", password: "correct horse battery") {
    accessToken
  }
}

query Me {
  me { id username followerCount followingCount }
}

mutation CreatePost {
  createPost(body: "Hello, Pulse!") { id createdAt }
}

query MyNotifications {
  notifications(first: 20) {
    unreadCount
    edges { node { id message read createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}

subscription Notifications {
  notifications {
    id
    message
    action
    actionId
    byUser
    actionContent
    affected
    affectedId
    createdAt
  }
}

subscription UnreadCount {
  unreadCount
}
`;

  // authorizationOf returns the value of the Authorization header (any case)
  // in the parsed Headers editor, or null if there is none.
  function authorizationOf(headers) {
    if (!headers) return null;
    for (const [name, value] of Object.entries(headers)) {
      if (name.toLowerCase() === 'authorization' && value != null) return String(value);
    }
    return null;
  }

  // operationKind returns "query", "mutation" or "subscription" for the
  // operation GraphiQL is about to run.
  function operationKind(params, opts) {
    const doc = opts && opts.documentAST;
    if (doc && Array.isArray(doc.definitions)) {
      const ops = doc.definitions.filter((d) => d.kind === 'OperationDefinition');
      const op = params.operationName
        ? ops.find((d) => d.name && d.name.value === params.operationName)
        : ops.length === 1 ? ops[0] : undefined;
      if (op) return op.operation;
    }
    // No parsed document: look at the first keyword, comments removed.
    const m = /^\s*(query|mutation|subscription)\b/.exec(String(params.query || '').replace(/#[^\r\n]*/g, ''));
    return m ? m[1] : 'query';
  }

  // The graphql-ws client and the Authorization value it was created with.
  let ws = null;

  function wsClient(authorization) {
    if (ws && ws.authorization === authorization) return ws.client;
    if (ws) ws.client.dispose();
    const client = graphqlWs.createClient({
      url: wsURL.href,
      connectionParams: authorization === null ? {} : { authorization },
      lazy: true,
      retryAttempts: 3,
      // A close code 4xxx is the server's answer (4403: bad token); retrying
      // would only hide it.
      shouldRetry: (e) => !(e && typeof e.code === 'number' && e.code >= 4000 && e.code < 5000),
    });
    ws = { client, authorization };
    return client;
  }

  // transportError turns what graphql-ws reports to a sink's error (an
  // Error, a CloseEvent or an Event) into an error a person can act on. A
  // plain {message} object, not an Error, so that GraphiQL shows no stack.
  function transportError(err) {
    if (err instanceof Error) return { message: err.message };
    if (err && typeof err.code === 'number') {
      let message = `The websocket to ${wsURL.href} was closed with code ${err.code}` +
        (err.reason ? ` (${err.reason})` : '') + '.';
      if (err.code === 4401 || err.code === 4403) {
        message += ' Check the Authorization header in the Headers tab: it must be "Bearer <accessToken>" with a token from register or login that is still valid, or be left out.';
      }
      return { message };
    }
    if (err && err.type === 'error') return { message: `Could not connect to ${wsURL.href}.` };
    return { message: String(err) };
  }

  // subscribe returns an Observable (the shape GraphiQL accepts) that runs the
  // subscription over graphql-ws until GraphiQL unsubscribes.
  function subscribe(params, authorization) {
    return {
      subscribe(observer) {
        const dispose = wsClient(authorization).subscribe(params, {
          next: (result) => observer.next(result),
          error: (err) => {
            if (Array.isArray(err)) {
              // The server's "error" message: GraphQL errors, shown as a result.
              observer.next({ errors: err });
              observer.complete();
              return;
            }
            observer.error(transportError(err));
          },
          complete: () => observer.complete(),
        });
        return { unsubscribe: dispose };
      },
    };
  }

  // post runs a query or mutation over HTTP and returns the response body,
  // whatever the status (a 401 carries a GraphQL error). Failures become
  // GraphQL errors: a bad header, no connection, a body that is not JSON.
  async function post(params, headers) {
    const h = new Headers({
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json, application/json',
    });
    for (const [name, value] of Object.entries(headers || {})) {
      if (value == null) continue;
      try {
        h.set(name, String(value));
      } catch (e) {
        return { errors: [{ message: `Headers tab: cannot send ${JSON.stringify(name)}: ${e.message}` }] };
      }
    }
    let resp, text;
    try {
      resp = await fetch(httpURL.href, {
        method: 'POST',
        headers: h,
        body: JSON.stringify(params),
        credentials: 'same-origin',
      });
      text = await resp.text();
    } catch (e) {
      return { errors: [{ message: `Could not reach ${httpURL.href}: ${e.message}` }] };
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      return { errors: [{ message: `HTTP ${resp.status} ${resp.statusText}: ${text.slice(0, 1000)}` }] };
    }
  }

  function fetcher(params, opts) {
    const headers = (opts && opts.headers) || {};
    if (operationKind(params, opts) === 'subscription') {
      return subscribe(params, authorizationOf(headers));
    }
    return post(params, headers);
  }

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery,
      // Empty, not a placeholder: a placeholder token would be sent, and the
      // server refuses a bad token with 401, schema fetch included.
      defaultHeaders: '{}',
      defaultEditorToolsVisibility: 'headers',
      isHeadersEditorEnabled: true,
      // shouldPersistHeaders is left unset: headers (access tokens) are not
      // kept in localStorage, and GraphiQL's settings dialog offers the
      // "Persist headers" switch (false here would hide it).
    }),
  );
})();
