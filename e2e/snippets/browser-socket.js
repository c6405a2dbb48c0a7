// In a web page: the plain socket /ws/<token>/ with the browser's own
// WebSocket. The token is the path segment. A bad token is not refused at the
// handshake, which a page could not tell from a network failure: the socket
// opens and is closed at once with code 4401, reason "invalid access token".
// The page's origin must be the server's own or listed in --allowed-origins.
function connectNotifications({ server = 'ws://127.0.0.1:8000', token, after, onNotification, onClose }) {
  const socket = new WebSocket(`${server}/ws/${encodeURIComponent(token)}/` + (after != null ? `?after=${after}` : ''));
  socket.onmessage = (e) => {
    const data = JSON.parse(e.data);
    if (data.id) onNotification(data); // {"id", "message", "action", "by_user", ...}
  };
  // 4401: bad token or logout (log in again); 4008: too slow, and 1001: server
  // going away (reconnect with after = the last id you saw).
  socket.onclose = (e) => onClose(e.code, e.reason);
  return socket;
}
