// In a web page, on any allowed origin: notifications as server-sent events,
// with the browser's own EventSource, which cannot set headers: the stream
// opens with a one-time ticket, fetched with the token in a header. The
// browser reconnects by itself with Last-Event-ID, but its ticket is used by
// then and the stream is refused (401): EventSource then gives up for good,
// so this opens a new stream, with a new ticket, after the last id seen.
// Nothing is missed and nothing comes twice.
function listenForNotifications({ server = 'http://127.0.0.1:8000', token, onNotification, onClosed }) {
  let source;
  let lastId = null;
  let stopped = false;
  async function open() {
    if (stopped) return;
    try {
      const res = await fetch(`${server}/query`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: 'mutation { socketTicket { ticket } }' }),
      });
      const { data } = await res.json();
      if (!data) return onClosed('invalid access token'); // logged out or expired
      const query = new URLSearchParams({ ticket: data.socketTicket.ticket });
      if (lastId !== null) query.set('after', lastId);
      source = new EventSource(`${server}/events?${query}`);
    } catch {
      setTimeout(open, 3000); // the server is down: try again
      return;
    }
    source.addEventListener('notification', (e) => {
      lastId = e.lastEventId;
      onNotification(JSON.parse(e.data));
    });
    source.addEventListener('closed', (e) => {
      const { reason } = JSON.parse(e.data); // "too slow" and "server shutting down" resume
      if (reason === 'logged out' || reason === 'token expired') {
        stopped = true;
        source.close();
        onClosed(reason);
      }
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) setTimeout(open, 1000);
    });
  }
  open();
  return { close: () => { stopped = true; source?.close(); } };
}
