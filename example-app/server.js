// The example chat app: express-bayeux used as an application would use it.
// Run with `npm start` (builds the package first). PORT defaults to 8080.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { bayeux, BayeuxError } from 'express-bayeux';

const here = fileURLToPath(new URL('.', import.meta.url));
const port = Number(process.env.PORT ?? 8080);

const app = express();
const cometd = bayeux({ timeout: 25_000, logLevel: process.env.LOG_LEVEL ?? 'info' });

// ACL: chat messages must have a short text and a nickname.
cometd.use('/chat/**', (message) => {
  if (message.channel.startsWith('/meta/')) return;
  const { user, chat } = message.data ?? {};
  if (typeof user !== 'string' || !user || user.length > 40) throw new BayeuxError(400, 'user must be 1-40 characters');
  if (typeof chat !== 'string' || chat.length > 500) throw new BayeuxError(400, 'chat must be at most 500 characters');
});

// A service: who is in a room, as seen by the in-process subscriber below.
const members = new Map(); // room -> Set of nicknames
cometd.service('/service/members', (message) => {
  const room = String(message.data?.room ?? 'demo');
  return { room, members: [...(members.get(room) ?? [])] };
});

// An in-process subscriber, like the Perl server's local clients.
cometd.subscribe('/chat/*', (data, message) => {
  const room = message.channel.split('/')[2];
  if (!members.has(room)) members.set(room, new Set());
  if (data.join) members.get(room).add(data.user);
  if (data.leave) members.get(room).delete(data.user);
});

cometd.on('handshake', (clientId, ctx) => console.log(`handshake over ${ctx.transport}`));
cometd.on('disconnect', (clientId, reason) => console.log(`disconnect (${reason})`));

app.use('/cometd', cometd); // also serves the browser client at /cometd/client.js
app.use(express.static(here + 'public'));
app.get('/healthz', async (_req, res) => res.json(await cometd.stats()));

const server = createServer(app);
cometd.attach(server, { path: '/cometd' });
server.listen(port, () => console.log(`example chat on http://localhost:${port}/ (Bayeux endpoint /cometd)`));

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await cometd.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
