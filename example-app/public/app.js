// The chat page: the package's browser client, served by the middleware itself at /cometd/client.js.
import { BayeuxClient } from '/cometd/client.js';

const $ = (id) => document.getElementById(id);

// `?transport=long-polling` tries the fallback without WebSocket.
const only = new URLSearchParams(location.search).get('transport');
const endpoint = new URL('/cometd', location.href).href;
const client = new BayeuxClient(endpoint, {
  ...(only === 'long-polling' || only === 'websocket' ? { transports: [only] } : {}),
  // Failures of the protocol's own messages (handshake, connect). The page's
  // own publishes show their errors where they are awaited, so each error
  // appears once.
  onError: (message, error) => {
    if (message.channel.startsWith('/meta/')) line('error', `${message.channel}: ${error.message}`);
  },
});
let room;
let user;

function status(text, kind = '') {
  $('status').textContent = text;
  $('status').className = `status ${kind}`.trim();
}

client.on('connected', () => status(`connected (${client.transport ?? '…'})`, 'connected'));
client.on('disconnected', ({ reason }) => status(reason === 'network' ? 'offline, reconnecting…' : 'not joined'));

function line(kind, text, who) {
  const li = document.createElement('li');
  li.className = kind;
  if (who) {
    const b = document.createElement('span');
    b.className = 'who';
    b.textContent = who + ': ';
    li.append(b);
  }
  li.append(document.createTextNode(text));
  $('log').append(li);
  $('log').scrollTop = $('log').scrollHeight;
}

// Messages on the room the server joined this session to (no subscribe of our own).
client.addListener('/chat/*', (data, message) => {
  if (message.channel !== `/chat/${room}`) return;
  if (data.join) line('meta', `${data.user} joined`);
  else if (data.leave) line('meta', `${data.user} left`);
  else line('chat', data.chat, data.user);
});

$('join').addEventListener('submit', async (event) => {
  event.preventDefault();
  user = $('user').value.trim();
  room = $('room').value.trim();
  if (client.state !== 'connected') status('connecting…');
  try {
    await client.publish('/service/join', { user, room });
  } catch (err) {
    line('error', err.message);
    if (client.state !== 'connected') status('not joined');
    return;
  }
  $('join').hidden = true;
  $('say').hidden = false;
  $('text').focus();
});

$('say').addEventListener('submit', async (event) => {
  event.preventDefault();
  const chat = $('text').value;
  if (!chat) return;
  $('text').value = '';
  try {
    await client.publish(`/chat/${room}`, { chat });
    line('chat', chat, user); // the server does not echo our own lines back (broadcastToPublisher: false)
  } catch (err) {
    line('error', err.message);
  }
});

$('who').addEventListener('click', async () => {
  // A /service/ publish is a request: the reply comes back to this client only.
  try {
    const reply = await client.publish('/service/members', { room });
    line('meta', `here: ${reply.data.members.join(', ') || 'nobody'}`);
  } catch (err) {
    line('error', err.message);
  }
});

$('leave').addEventListener('click', async () => {
  try {
    await client.publish('/service/leave', {});
  } catch (err) {
    line('error', err.message);
    return;
  }
  $('say').hidden = true;
  $('join').hidden = false;
});

// A closed tab (or one navigated away) ends its session at once, so the room
// hears "left" now rather than when the session expires (maxInterval, 10 s).
// `pagehide` is the event browsers fire reliably as a page goes (not
// `unload`, and not `beforeunload`, which a page may cancel). There is no
// later turn of the event loop: `client.disconnect()` would queue its
// /meta/disconnect for a timer that never fires, and a plain fetch is
// cancelled with the page. A beacon is sent after the page is gone, over
// HTTP whatever the client's transport (the server takes form posts:
// `message=<JSON>`).
window.addEventListener('pagehide', () => {
  const clientId = client.clientId;
  if (!clientId) return;
  const message = JSON.stringify([{ channel: '/meta/disconnect', clientId }]);
  navigator.sendBeacon(endpoint, new URLSearchParams({ message }));
});
// Back from the back/forward cache: that session is over, start afresh.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) location.reload();
});
