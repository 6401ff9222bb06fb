/**
 * The floor for WebSocket fan-out: a bare `ws` server, not a Bayeux
 * server. It speaks just enough Bayeux for the load clients (handshake,
 * subscribe, a held `/meta/connect` answered after 30 s, publish) and
 * writes what express-bayeux writes: the messages published to a channel
 * in one event-loop turn go out in one frame per subscriber (express-bayeux
 * flushes once per turn, on setImmediate), serialized once into one Buffer
 * that every subscribed socket is sent. No sessions, no queues, no
 * validation, no extensions, no slow-consumer policy: what is left is the
 * cost of `ws` and the kernel, the least any Node WebSocket server pays.
 */
import type { Server as HttpServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, WebSocket, type RawData } from 'ws';

interface Message {
  channel: string;
  id?: string;
  subscription?: string;
  data?: unknown;
}

/** How long a `/meta/connect` is held, ms. */
const HOLD_MS = 30_000;

export function attachWsFloor(http: HttpServer, path: string): void {
  const wss = new WebSocketServer({ server: http, path, perMessageDeflate: false });
  const channels = new Map<string, Set<WebSocket>>();
  const held = new Map<WebSocket, { id: string | undefined; at: number }>();
  /** This turn's messages per channel, each serialized once. */
  let pending = new Map<string, string[]>();

  const flush = (): void => {
    const turn = pending;
    pending = new Map();
    for (const [channel, list] of turn) {
      const subscribers = channels.get(channel);
      if (!subscribers || subscribers.size === 0) continue;
      const frame = Buffer.from('[' + list.join(',') + ']');
      for (const s of subscribers) if (s.readyState === WebSocket.OPEN) s.send(frame, { binary: false });
    }
  };

  // Answer held connects when they are due, as a Bayeux server would on its timeout.
  setInterval(() => {
    const now = Date.now();
    for (const [ws, c] of held) {
      if (now - c.at < HOLD_MS) continue;
      held.delete(ws);
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify([{ channel: '/meta/connect', id: c.id, successful: true, advice: { reconnect: 'retry', interval: 0, timeout: HOLD_MS } }]));
    }
  }, 1000).unref();

  http.on('request', (_req, res) => {
    res.statusCode = 404;
    res.end();
  });

  wss.on('connection', (ws) => {
    const mine = new Set<string>();
    ws.on('close', () => {
      held.delete(ws);
      for (const c of mine) channels.get(c)?.delete(ws);
    });
    ws.on('message', (raw: RawData) => {
      let messages: Message[];
      try {
        const parsed = JSON.parse(raw.toString()) as Message | Message[];
        messages = Array.isArray(parsed) ? parsed : [parsed];
      } catch {
        return;
      }
      const replies: object[] = [];
      for (const m of messages) {
        switch (m.channel) {
          case '/meta/handshake':
            replies.push({
              channel: m.channel, id: m.id, version: '1.0', successful: true, clientId: randomBytes(12).toString('hex'),
              supportedConnectionTypes: ['websocket'], advice: { reconnect: 'retry', interval: 0, timeout: HOLD_MS },
            });
            break;
          case '/meta/connect':
            held.set(ws, { id: m.id, at: Date.now() });
            break;
          case '/meta/subscribe': {
            const c = String(m.subscription);
            let set = channels.get(c);
            if (!set) channels.set(c, (set = new Set()));
            set.add(ws);
            mine.add(c);
            replies.push({ channel: m.channel, id: m.id, successful: true, subscription: c });
            break;
          }
          default:
            if (m.channel.startsWith('/meta/')) {
              replies.push({ channel: m.channel, id: m.id, successful: true });
              break;
            }
            {
              if (pending.size === 0) setImmediate(flush);
              let list = pending.get(m.channel);
              if (!list) pending.set(m.channel, (list = []));
              list.push(JSON.stringify({ channel: m.channel, data: m.data, id: m.id }));
              replies.push({ channel: m.channel, id: m.id, successful: true });
            }
        }
      }
      if (replies.length > 0) ws.send(JSON.stringify(replies));
    });
  });
}
