// The example chat app: express-bayeux used as an application would use it.
// Run with `npm start` (builds the package first), or `node example-app/server.js`.
//
//   PORT=8081 npm start                  another port (default 8080; 0 picks a free one)
//   HOST=0.0.0.0 npm start               every interface (default 127.0.0.1, this machine only)
//   node example-app/server.js --port 8081 --host ::1
//
// --port and --host win over PORT and HOST, as in `express-bayeux serve`.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { bayeux, BayeuxError } from 'express-bayeux';

const here = fileURLToPath(new URL('.', import.meta.url));

/** `--name value` or `--name=value` on the command line, else undefined. */
function flag(name) {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return undefined;
}

function fail(line) {
  console.error(`example chat: ${line}`);
  process.exit(1);
}

const portText = flag('port') ?? process.env.PORT ?? '8080';
const host = flag('host') ?? process.env.HOST ?? '127.0.0.1';
if (!/^\d{1,5}$/.test(portText.trim()) || Number(portText) > 65535) fail(`PORT must be a number from 0 to 65535, not "${portText}"`);
const port = Number(portText);

const app = express();
// broadcastToPublisher: false: a sender never gets its own chat line back (the page shows it at once).
const cometd = bayeux({ timeout: 25_000, broadcastToPublisher: false, logLevel: process.env.LOG_LEVEL ?? 'info' });

// Who is in which room, for the "left" line when a session ends without
// leaving (a closed tab, an expired session). One process: a Map is enough.
// On several nodes, use the `identify` and `presence` options instead (join
// and leave events once per user for the whole cluster).
const joined = new Map(); // clientId -> { user, room }

async function announceLeave(clientId) {
  const member = joined.get(clientId);
  if (!member) return;
  joined.delete(clientId);
  await cometd.publish(`/chat/${member.room}`, { user: member.user, chat: '', leave: true }, { except: clientId });
}

// Joining: the nickname goes into the session's data, and the server joins the
// session to the room and tells everyone else.
cometd.service('/service/join', async (message, ctx) => {
  const { user, room } = message.data ?? {};
  if (typeof user !== 'string' || !user.trim() || user.length > 40) throw new BayeuxError(400, 'user must be 1-40 characters');
  if (typeof room !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(room)) throw new BayeuxError(400, 'room must be 1-40 letters, digits, _ or -');
  await ctx.session.set('nick', user.trim());
  await ctx.session.set('room', room);
  await cometd.join(ctx.client, `/chat/${room}`);
  joined.set(ctx.client, { user: user.trim(), room });
  await cometd.publish(`/chat/${room}`, { user: user.trim(), chat: '', join: true }, { except: ctx.client });
  return { room };
});

// ACL: chat messages must have a short text; the nickname is the one the session joined with.
cometd.use('/chat/**', async (message, ctx) => {
  const { chat } = message.data ?? {};
  if (typeof chat !== 'string' || chat.length > 500) throw new BayeuxError(400, 'chat must be at most 500 characters');
  const nick = await ctx.session.get('nick');
  if (!nick) throw new BayeuxError(403, 'join a room first');
  message.data = { ...message.data, user: nick };
});

// Who is here: the room's subscribers, by the nickname in each one's session data.
cometd.service('/service/members', async (message) => {
  const room = String(message.data?.room ?? 'demo');
  const ids = await cometd.subscribers(`/chat/${room}`);
  const nicks = await Promise.all(ids.map((id) => cometd.session(id).get('nick').catch(() => undefined)));
  return { room, members: nicks.filter(Boolean).sort() };
});

// Leaving: out of the room, and everyone else is told.
cometd.service('/service/leave', async (message, ctx) => {
  const room = await ctx.session.get('room');
  if (!room) return { room: null };
  await cometd.leave(ctx.client, `/chat/${room}`);
  await announceLeave(ctx.client);
  await ctx.session.delete('room');
  return { room };
});

// A session's handshake goes over HTTP; its connects then use the transport
// it settled on (WebSocket when it can), which is the one worth logging.
const short = (clientId) => `${clientId.slice(0, 6)}…`; // as the package's own log lines
cometd.on('handshake', (clientId) => console.log(`session ${short(clientId)}: handshake`));
cometd.on('connect', (clientId, ctx) => console.log(`session ${short(clientId)}: connected over ${ctx.transport}`));
cometd.on('disconnect', (clientId, reason) => {
  console.log(`session ${short(clientId)}: disconnect (${reason})`);
  // The session is gone (the page sent /meta/disconnect as it closed, or it expired): tell the room.
  announceLeave(clientId).catch((err) => console.error(`could not announce the leave: ${err.message}`));
});

app.use('/cometd', cometd); // also serves the browser client at /cometd/client.js
// Browsers and tools ask for /favicon.ico whatever the page links to.
app.get('/favicon.ico', (_req, res) => res.type('image/svg+xml').sendFile(here + 'public/favicon.svg'));
app.use(express.static(here + 'public'));
app.get('/healthz', async (_req, res) => res.json(await cometd.stats()));

const server = createServer(app);
cometd.attach(server, { path: '/cometd' });
server.once('error', (err) => {
  if (err.code === 'EADDRINUSE') fail(`port ${port} is in use on ${host}; set PORT=… (or --port …) to another port, e.g. PORT=${port === 8080 ? 8081 : 8080} npm start`);
  if (err.code === 'EACCES') fail(`not allowed to listen on port ${port}; set PORT=… to a port above 1023`);
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') fail(`cannot listen on host ${host}; set HOST=… to an address of this machine (127.0.0.1, 0.0.0.0)`);
  fail(`cannot listen on ${host}:${port}: ${err.message}`);
});
server.listen(port, host, () => {
  const { port: actual } = server.address();
  const shown = host.includes(':') ? `[${host}]` : host;
  const everywhere = host === '0.0.0.0' || host === '::' ? ' (every interface)' : '';
  console.log(`example chat on http://${shown}:${actual}/${everywhere} (Bayeux endpoint /cometd)`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await cometd.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
