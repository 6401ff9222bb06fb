/**
 * A lean raw Bayeux client for load generation, identical for both servers:
 * handshake, subscribe, a `/meta/connect` loop, publish. WebSocket with raw
 * `ws` (each frame a JSON array of messages; connect replies come back on
 * the socket), long-polling with `http.request` on a keep-alive agent (one
 * request in flight per connect loop).
 *
 * Frames with no `/meta/` message in them are not parsed: deliveries are
 * found by the marker keys every benchmark message's `data` starts with.
 */
import { Agent, request } from 'node:http';
import { WebSocket, type RawData } from 'ws';
import { SEQ_KEY, TIME_KEY, nowUs, sleep, type TransportKind } from './common.js';

export interface WireMessage {
  channel: string;
  id?: string;
  clientId?: string;
  successful?: boolean;
  error?: string;
  advice?: { reconnect?: string; interval?: number; timeout?: number };
  data?: unknown;
  [key: string]: unknown;
}

export interface SessionHooks {
  /** One delivery of batch `seq`, sent at `sentUs`, received at `nowUs`. */
  delivery(seq: number, sentUs: number, receivedUs: number): void;
  /** Something went wrong that the loop recovered from (counted, not fatal). */
  error(what: string): void;
  /**
   * A reply to a publish (a message with `successful` on a channel that is not `/meta/`).
   * Without this hook publish replies are only checked for errors.
   */
  reply?(id: string, successful: boolean): void;
  /** Every WebSocket frame's text, before the session reads it (the presence bench counts notices with it). */
  frame?(text: string, receivedUs: number): void;
}

export interface Endpoint {
  transport: TransportKind;
  port: number;
  path: string;
}

/** How long any one request may go unanswered (connects are held up to 30 s). */
const REQUEST_TIMEOUT_MS = 45_000;
/** A connect loop gives up after this many handshakes in a row fail. */
const MAX_REHANDSHAKES = 5;

const SEQ_MARK = `"${SEQ_KEY}":`;
const TIME_MARK = `,"${TIME_KEY}":`;

/** Find every benchmark delivery in a JSON text without parsing it. */
export function scanDeliveries(text: string, receivedUs: number, hooks: SessionHooks): void {
  let i = text.indexOf(SEQ_MARK);
  while (i !== -1) {
    let p = i + SEQ_MARK.length;
    let seq = 0;
    let c = text.charCodeAt(p);
    while (c >= 48 && c <= 57) {
      seq = seq * 10 + c - 48;
      c = text.charCodeAt(++p);
    }
    if (text.startsWith(TIME_MARK, p)) {
      p += TIME_MARK.length;
      let t = 0;
      c = text.charCodeAt(p);
      while (c >= 48 && c <= 57) {
        t = t * 10 + c - 48;
        c = text.charCodeAt(++p);
      }
      hooks.delivery(seq, t, receivedUs);
    }
    i = text.indexOf(SEQ_MARK, p);
  }
}

function deliveryOf(message: WireMessage, receivedUs: number, hooks: SessionHooks): boolean {
  const data = message.data as Record<string, unknown> | undefined;
  // The fan-out CHANNEL, or a rooms benchmark channel (/bench/r/<n>).
  if (!message.channel.startsWith('/bench/') || typeof data !== 'object' || data === null) return false;
  const seq = data[SEQ_KEY];
  const t = data[TIME_KEY];
  if (typeof seq === 'number' && typeof t === 'number') hooks.delivery(seq, t, receivedUs);
  return true;
}

function parseMessages(text: string): WireMessage[] {
  const parsed = JSON.parse(text) as WireMessage | WireMessage[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** One Bayeux session over one transport. */
export abstract class Session {
  clientId: string | undefined;
  protected readonly hooks: SessionHooks;
  protected stopped = false;
  /** A `/meta/connect` of this session's loop is in flight (held by the server, or on its way). */
  connecting = false;
  #nextId = 0;
  #subscriptions: string[] = [];
  #handshakeExt: Record<string, unknown> | undefined;

  constructor(hooks: SessionHooks) {
    this.hooks = hooks;
  }

  /** Send one message and resolve to the reply with its id. */
  protected abstract request(message: WireMessage): Promise<WireMessage>;
  /** Send a batch of publishes; replies are checked, not awaited by the caller. */
  abstract publish(messages: WireMessage[]): void;
  abstract close(): void;
  protected abstract get connectionType(): string;
  protected abstract get connectionTypes(): string[];

  protected newId(): string {
    return String(++this.#nextId);
  }

  /** `ext`: the handshake's ext (the presence bench says who the session is in it). */
  async handshake(ext = this.#handshakeExt): Promise<void> {
    this.#handshakeExt = ext;
    const reply = await this.request({
      channel: '/meta/handshake',
      version: '1.0',
      minimumVersion: '1.0',
      supportedConnectionTypes: this.connectionTypes,
      ...(ext ? { ext } : {}),
    });
    if (!reply.successful || typeof reply.clientId !== 'string') throw new Error(`handshake refused: ${reply.error ?? '?'}`);
    this.clientId = reply.clientId;
  }

  /** `ext`: the subscribe's ext (`{ presence: true }`); resolves to the reply. */
  async subscribe(channel: string, ext?: Record<string, unknown>): Promise<WireMessage> {
    const reply = await this.request({ channel: '/meta/subscribe', clientId: this.clientId, subscription: channel, ...(ext ? { ext } : {}) });
    if (!reply.successful) throw new Error(`subscribe refused: ${reply.error ?? '?'}`);
    this.#subscriptions.push(channel);
    return reply;
  }

  /**
   * The connect loop: a new `/meta/connect` as soon as the last one is
   * answered (both servers advise interval 0). Handshakes and subscribes
   * again when told to, a bounded number of times in a row.
   */
  async connectLoop(onRehandshake: () => void): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let reply: WireMessage;
      try {
        this.connecting = true;
        reply = await this.request({ channel: '/meta/connect', clientId: this.clientId, connectionType: this.connectionType });
      } catch (err) {
        this.connecting = false;
        if (this.stopped) return;
        this.hooks.error(`connect: ${(err as Error).message}`);
        if (++failures > MAX_REHANDSHAKES) return;
        await sleep(100);
        continue;
      }
      this.connecting = false;
      if (reply.successful) {
        failures = 0;
        continue;
      }
      if (this.stopped) return;
      this.hooks.error(`connect refused: ${reply.error ?? '?'}`);
      if (++failures > MAX_REHANDSHAKES) return;
      if (reply.advice?.reconnect === 'handshake') {
        try {
          await this.handshake();
          for (const channel of this.#subscriptions.splice(0)) await this.subscribe(channel);
          onRehandshake();
        } catch (err) {
          this.hooks.error(`rehandshake: ${(err as Error).message}`);
          await sleep(100);
        }
      } else {
        await sleep(Math.min(1000, reply.advice?.interval ?? 100));
      }
    }
  }

  /** Publish messages in one request or frame. */
  protected checkPublishReplies(replies: WireMessage[]): void {
    for (const r of replies) {
      if (r.successful === false) this.hooks.error(`publish refused: ${r.error ?? '?'}`);
      if (this.hooks.reply && r.successful !== undefined && !r.channel.startsWith('/meta/')) this.hooks.reply(String(r.id), r.successful);
    }
  }

  stop(): void {
    this.stopped = true;
  }
}

// ---------------------------------------------------------------- WebSocket

export class WsSession extends Session {
  readonly #ws: WebSocket;
  readonly #pending = new Map<string, { resolve: (m: WireMessage) => void; timer: NodeJS.Timeout }>();

  private constructor(ws: WebSocket, hooks: SessionHooks) {
    super(hooks);
    this.#ws = ws;
    ws.on('message', (data) => this.#frame(data));
    ws.on('close', () => this.#failAll('socket closed'));
    ws.on('error', (err) => hooks.error(`socket: ${err.message}`));
  }

  static open(endpoint: Endpoint, hooks: SessionHooks): Promise<WsSession> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${endpoint.port}${endpoint.path}`, { perMessageDeflate: false });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('websocket open timed out'));
      }, 15_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(new WsSession(ws, hooks));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  protected get connectionType(): string {
    return 'websocket';
  }

  protected get connectionTypes(): string[] {
    return ['websocket', 'long-polling'];
  }

  #frame(data: RawData): void {
    const now = nowUs();
    const text = data.toString();
    this.hooks.frame?.(text, now);
    if (!text.includes('"/meta/')) {
      // Deliveries (both servers push them outside connect replies over
      // WebSocket), or the publisher's publish acknowledgements.
      if (text.includes('"successful":false') || (this.hooks.reply && text.includes('"successful"'))) this.checkPublishReplies(parseMessages(text));
      else scanDeliveries(text, now, this.hooks);
      return;
    }
    let messages: WireMessage[];
    try {
      messages = parseMessages(text);
    } catch {
      this.hooks.error('unparseable frame');
      return;
    }
    for (const m of messages) {
      if (deliveryOf(m, now, this.hooks)) continue;
      const waiter = m.id !== undefined ? this.#pending.get(m.id) : undefined;
      if (waiter && m.channel.startsWith('/meta/')) {
        this.#pending.delete(m.id as string);
        clearTimeout(waiter.timer);
        waiter.resolve(m);
      } else if (this.hooks.reply && m.successful !== undefined && !m.channel.startsWith('/meta/')) {
        this.checkPublishReplies([m]);
      } else if (m.successful === false) {
        this.hooks.error(`${m.channel}: ${m.error ?? '?'}`);
      }
    }
  }

  protected request(message: WireMessage): Promise<WireMessage> {
    return new Promise((resolve, reject) => {
      if (this.#ws.readyState !== WebSocket.OPEN) {
        reject(new Error('socket not open'));
        return;
      }
      const id = this.newId();
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${message.channel} timed out`));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { resolve, timer });
      this.#ws.send(JSON.stringify([{ ...message, id }]));
    });
  }

  publish(messages: WireMessage[]): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(messages));
  }

  #failAll(why: string): void {
    for (const [id, waiter] of this.#pending) {
      clearTimeout(waiter.timer);
      this.#pending.delete(id);
      waiter.resolve({ channel: '/meta/unknown', successful: false, error: why, advice: { reconnect: 'none' } });
    }
    this.stopped = true;
  }

  close(): void {
    this.stop();
    this.#ws.terminate();
  }
}

// ---------------------------------------------------------------- long-polling

export class HttpSession extends Session {
  readonly #endpoint: Endpoint;
  readonly #agent: Agent;

  constructor(endpoint: Endpoint, agent: Agent, hooks: SessionHooks) {
    super(hooks);
    this.#endpoint = endpoint;
    this.#agent = agent;
  }

  /**
   * An agent for many sessions: one socket per request in flight, reused.
   * The agent ignores the server's `Keep-Alive: timeout=5` hint (it has no
   * timeout of its own), so a publish after more than 5 s of quiet can reuse
   * a socket the server is closing: #post sends such a request again. An
   * agent timeout is no cure: a reused socket keeps the idle timeout and
   * held connects then time out on the client.
   */
  static agent(): Agent {
    return new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 100_000 });
  }

  protected get connectionType(): string {
    return 'long-polling';
  }

  protected get connectionTypes(): string[] {
    return ['long-polling'];
  }

  /**
   * POST a JSON array of messages; resolves to the response text. A request
   * on a reused keep-alive socket that the server closed as idle meanwhile
   * (ECONNRESET, "socket hang up") never reached it: sent once more, on a
   * new socket, as Node's documentation advises.
   */
  #post(messages: WireMessage[]): Promise<string> {
    const body = JSON.stringify(messages);
    return this.#send(body).catch((err: Error & { code?: string; reusedSocket?: boolean }) => {
      if (err.reusedSocket && err.code === 'ECONNRESET') return this.#send(body);
      throw err;
    });
  }

  #send(body: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.#agent,
          host: '127.0.0.1',
          port: this.#endpoint.port,
          path: this.#endpoint.path,
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = chunks.length === 1 ? (chunks[0] as Buffer).toString() : Buffer.concat(chunks).toString();
            if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            else resolve(text);
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', (err: Error & { reusedSocket?: boolean }) => {
        err.reusedSocket = req.reusedSocket;
        reject(err);
      });
      req.end(body);
    });
  }

  protected async request(message: WireMessage): Promise<WireMessage> {
    const id = this.newId();
    const text = await this.#post([{ ...message, id }]);
    const now = nowUs();
    let reply: WireMessage | undefined;
    for (const m of parseMessages(text)) {
      if (deliveryOf(m, now, this.hooks)) continue;
      if (m.id === id && m.channel === message.channel) reply = m;
      else if (m.successful === false) this.hooks.error(`${m.channel}: ${m.error ?? '?'}`);
    }
    if (!reply) throw new Error(`no reply to ${message.channel}`);
    return reply;
  }

  publish(messages: WireMessage[]): void {
    this.#post(messages).then(
      (text) => this.checkPublishReplies(parseMessages(text)),
      (err: Error) => this.hooks.error(`publish: ${err.message}`),
    );
  }

  close(): void {
    this.stop();
  }
}

export async function openSession(endpoint: Endpoint, hooks: SessionHooks, agent?: Agent): Promise<Session> {
  if (endpoint.transport === 'websocket') return WsSession.open(endpoint, hooks);
  return new HttpSession(endpoint, agent ?? HttpSession.agent(), hooks);
}
