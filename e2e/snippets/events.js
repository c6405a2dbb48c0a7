// In a web page on the server's origin: the notification stream with the
// browser's own EventSource. EventSource cannot set headers, so the stream
// opens with a one-time ticket (the socketTicket mutation).
const events = new EventSource(`/events?ticket=${ticket}`);
events.addEventListener('notification', (e) => {
  const n = JSON.parse(e.data); // the plain socket's frame; e.lastEventId is n.id
  console.log(`#${e.lastEventId}: ${n.message}`);
});
events.addEventListener('closed', (e) => console.log('closed:', JSON.parse(e.data).reason));
