const WebSocket = require('ws');
const notifySocket = new WebSocket('ws://127.0.0.1:8000/ws/123456789/');
notifySocket.onmessage = function (e) {
  const data = JSON.parse(e.data);
  if (data.message) console.log('Message received: ' + data.message);
};
function send_message(message) { notifySocket.send(JSON.stringify({ message: message })); }
