// In a web page, with the access token in no URL: fetch a one-time socket
// ticket over HTTP, the token in the Authorization header, then open the
// plain socket with the ticket as its path. A ticket opens one socket, once,
// within 60 seconds: fetch a new one for every (re)connect. A used or
// expired ticket is refused as a bad token is (4401 "invalid access token").
async function connectWithTicket({ server = 'http://127.0.0.1:8000', token, after, onNotification, onClose }) {
  const res = await fetch(`${server}/query`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: 'mutation { socketTicket { ticket } }' }),
  });
  const { data, errors } = await res.json();
  if (!data) throw new Error(errors?.[0]?.message ?? `HTTP ${res.status}`);
  const ws = server.replace(/^http/, 'ws');
  const socket = new WebSocket(`${ws}/ws/${data.socketTicket.ticket}/` + (after != null ? `?after=${after}` : ''));
  socket.onmessage = (e) => {
    const d = JSON.parse(e.data);
    if (d.id) onNotification(d);
  };
  // 4401 "logged out": the session ended; "token expired": refresh or log in.
  socket.onclose = (e) => onClose(e.code, e.reason);
  return socket;
}
