// The chat page: the package's browser client, served by the middleware itself at /cometd/client.js.
import { BayeuxClient } from '/cometd/client.js';

const $ = (id) => document.getElementById(id);
const client = new BayeuxClient(new URL('/cometd', location.href).href, {
  onError: (message) => line('error', `${message.channel}: ${message.error}`),
});
let room;
let user;

client.on('connected', () => {
  $('status').textContent = `connected (${client.transport ?? '…'})`;
  $('status').className = 'status connected';
});
client.on('disconnected', () => {
  $('status').textContent = 'offline';
  $('status').className = 'status';
});

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
  try {
    await client.publish('/service/join', { user, room });
  } catch (err) {
    line('error', err.message);
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
  const reply = await client.publish('/service/members', { room });
  line('meta', `here: ${reply.data.members.join(', ') || 'nobody'}`);
});

$('leave').addEventListener('click', async () => {
  await client.publish('/service/leave', {});
  $('say').hidden = true;
  $('join').hidden = false;
});
