// The plain socket's change stream (/ws/<token>/?changes=1): every change to
// the inbox, live, with the unread count after it. A notification comes with
// "type": "notification"; a removed one (an undone reaction, a deleted
// comment, an unfollow) as "removed", a notification marked read as "read".
// Resume with after: the last cursor you saw.
// Run, in e2e/ after npm ci: node snippets/plain-socket-changes.js <token> [ws://127.0.0.1:8000]
const WebSocket = require('ws'); // in a browser, the page's own WebSocket

function watchChanges({ base = 'ws://127.0.0.1:8000', token, after, onChange, onLive = () => {}, onClose = () => {} }) {
  const query = after ? `?changes=1&after=${after}` : '?changes=1';
  const socket = new WebSocket(`${base}/ws/${encodeURIComponent(token)}/${query}`);
  // The server answers a ping once the socket's stream runs: from then on
  // no change is missed.
  socket.onopen = () => socket.send(JSON.stringify({ type: 'ping' }));
  socket.onmessage = (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'pong') onLive();
    else if (frame.cursor) onChange(frame); // not a user's {"message"} from another tab
  };
  socket.onclose = (e) => onClose(e.code, e.reason); // 4401: bad or expired token, logged out
  return socket;
}

module.exports = { watchChanges };

if (require.main === module) {
  watchChanges({
    token: process.argv[2],
    base: process.argv[3],
    onLive: () => console.log('live'),
    onChange: (c) => {
      const what = c.type === 'notification' ? c.message : c.ids.join(',');
      console.log(`${c.cursor}: ${c.type} ${what} (unread ${c.unread_count})`);
    },
    onClose: (code, reason) => console.log(`closed: ${code} ${reason}`),
  });
}
