// The example chat app: express-bayeux used as an application would use it.
// Run with `npm start` (builds the package first). PORT defaults to 8080.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { bayeux, BayeuxError } from 'express-bayeux';

const here = fileURLToPath(new URL('.', import.meta.url));
const port = Number(process.env.PORT ?? 8080);

const app = express();
// broadcastToPublisher: false: a sender never gets its own chat line back (the page shows it at once).
const cometd = bayeux({ timeout: 25_000, broadcastToPublisher: false, logLevel: process.env.LOG_LEVEL ?? 'info' });

// Joining: the nickname goes into the session's data, and the server joins the
// session to the room and tells everyone else.
cometd.service('/service/join', async (message, ctx) => {
  const { user, room } = message.data ?? {};
  if (typeof user !== 'string' || !user.trim() || user.length > 40) throw new BayeuxError(400, 'user must be 1-40 characters');
  if (typeof room !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(room)) throw new BayeuxError(400, 'room must be 1-40 letters, digits, _ or -');
  await ctx.session.set('nick', user.trim());
  await ctx.session.set('room', room);
  await cometd.join(ctx.client, `/chat/${room}`);
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
  await cometd.publish(`/chat/${room}`, { user: await ctx.session.get('nick'), chat: '', leave: true }, { except: ctx.client });
  await ctx.session.delete('room');
  return { room };
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
