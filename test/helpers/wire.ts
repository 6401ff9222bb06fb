/**
 * A raw Bayeux wire client for protocol tests, over long-polling (POST) or a
 * raw WebSocket, so the same cases run on both transports.
 */
import WebSocket from 'ws';
import { post } from './http-server.js';
import { waitFor } from './wait.js';

export type Kind = 'long-polling' | 'websocket';
export type Msg = Record<string, any>;

export interface Wire {
  readonly kind: Kind;
  /** Send messages; resolve with the replies to those of them that have ids (all of them for long-polling). */
  send(messages: Msg | Msg[], timeoutMs?: number): Promise<Msg[]>;
  /** Non-reply messages received so far (deliveries). */
  readonly delivered: Msg[];
  /** Wait until `n` deliveries arrived in total. */
  waitDelivered(n: number, ms?: number): Promise<Msg[]>;
  close(): void;
}

let ids = 0;
function withIds(messages: Msg[]): Msg[] {
  return messages.map((m) => (m['id'] === undefined && typeof m === 'object' && m !== null ? { ...m, id: 'w' + ++ids } : m));
}

function split(all: Msg[], delivered: Msg[]): Msg[] {
  const replies: Msg[] = [];
  for (const m of all) {
    if (typeof m?.['channel'] === 'string' && (m['channel'].startsWith('/meta/') || 'successful' in m)) replies.push(m);
    else delivered.push(m);
  }
  return replies;
}

export async function openWire(kind: Kind, url: string): Promise<Wire> {
  const delivered: Msg[] = [];
  const waitDelivered = async (n: number, ms = 5000) => {
    await waitFor(() => delivered.length >= n, { timeout: ms, what: `${n} deliveries (have ${delivered.length})`, every: 5 });
    return delivered;
  };
  if (kind === 'long-polling') {
    return {
      kind,
      delivered,
      waitDelivered,
      async send(messages, timeoutMs = 10_000) {
        const list = withIds(Array.isArray(messages) ? messages : [messages]);
        const res = await post(url, list, 'application/json', timeoutMs);
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text}`);
        return split(res.json as Msg[], delivered);
      },
      close() {},
    };
  }
  const ws = new WebSocket(url.replace(/^http/, 'ws'));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const replies: Msg[] = [];
  let closed = false;
  ws.on('close', () => (closed = true));
  ws.on('message', (data) => {
    const parsed = JSON.parse(String(data)) as Msg[];
    for (const r of split(parsed, delivered)) replies.push(r);
  });
  return {
    kind,
    delivered,
    waitDelivered,
    async send(messages, timeoutMs = 10_000) {
      const list = withIds(Array.isArray(messages) ? messages : [messages]);
      ws.send(JSON.stringify(list));
      const want = list.map((m) => m['id']).filter((id) => id !== undefined);
      const answered = () => want.every((id) => replies.some((r) => r['id'] === id));
      // A closed socket gets no more replies: stop waiting (a held connect would otherwise keep the test process up for its whole timeout).
      await waitFor(() => closed || answered(), { timeout: timeoutMs, what: 'replies ' + want.join(','), every: 5 });
      if (!answered()) throw new Error(`socket closed before the replies ${want.join(',')}`);
      return want.map((id) => {
        const i = replies.findIndex((r) => r['id'] === id);
        return replies.splice(i, 1)[0] as Msg;
      });
    },
    close() {
      ws.close();
    },
  };
}

/** Handshake on a wire; returns the clientId. */
export async function wireHandshake(wire: Wire, ext?: Msg): Promise<string> {
  const [reply] = await wire.send({
    channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [wire.kind], ...(ext ? { ext } : {}),
  });
  if (!reply?.['successful']) throw new Error('handshake failed: ' + JSON.stringify(reply));
  return reply['clientId'] as string;
}

/** Handshake and send the first (immediately answered) connect. */
export async function wireSession(wire: Wire, ext?: Msg): Promise<string> {
  const clientId = await wireHandshake(wire, ext);
  await wire.send({ channel: '/meta/connect', clientId, connectionType: wire.kind, advice: { timeout: 0 } });
  return clientId;
}

/**
 * A bare WebSocket to the endpoint and every message it receives, for frames
 * `openWire` cannot send: malformed ones, or batches a test composes itself.
 */
export async function rawSocket(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; received: Msg[] }> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
  const received: Msg[] = [];
  ws.on('message', (d) => received.push(...(JSON.parse(String(d)) as Msg[])));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, received };
}
