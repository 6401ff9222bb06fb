/**
 * Per-session data (`ctx.session`, `cometd.session(clientId)`): JSON values
 * stored in the engine, so every node sees them, and bounded in size.
 */
import { type Engine, EngineLimitError } from '../engines/engine.js';
import { ProtocolErrors } from '../errors.js';
import { BayeuxError } from '../protocol/error.js';
import type { SessionData } from './types.js';

/** Keys the server keeps its own entries under (the identity, `users.ts`): never shown to or set by the application. */
const RESERVED = '\u0000';

/** A value as stored: its JSON text. */
function serialize(key: string, value: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('session data key must be a non-empty string');
  if (key.startsWith(RESERVED)) throw new TypeError('session data keys starting with \\u0000 are the server\'s own');
  const text = JSON.stringify(value);
  if (typeof text !== 'string') throw new TypeError(`session data ${key}: the value cannot be stored as JSON`);
  return text;
}

function tooLarge(max: number): BayeuxError {
  return ProtocolErrors.sessionDataTooLarge(max);
}

function toObject(entries: Iterable<[string, string]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, text] of entries) {
    if (key.startsWith(RESERVED)) continue;
    Object.defineProperty(out, key, { value: JSON.parse(text) as unknown, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The data of a live session, read and written in the engine. */
export class EngineSessionData implements SessionData {
  readonly #engine: Engine;
  readonly #clientId: string;
  readonly #max: number;

  constructor(engine: Engine, clientId: string, max: number) {
    this.#engine = engine;
    this.#clientId = clientId;
    this.#max = max;
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    if (typeof key === 'string' && key.startsWith(RESERVED)) return undefined;
    const text = await this.#engine.getSessionData(this.#clientId, key);
    if (text === null) throw ProtocolErrors.sessionUnknown();
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async set(key: string, value: unknown): Promise<void> {
    const text = value === undefined ? undefined : serialize(key, value);
    let ok: boolean;
    try {
      ok = await this.#engine.setSessionData(this.#clientId, key, text);
    } catch (err) {
      if (err instanceof EngineLimitError) throw tooLarge(this.#max);
      throw err;
    }
    if (!ok) throw ProtocolErrors.sessionUnknown();
  }

  delete(key: string): Promise<void> {
    return this.set(key, undefined);
  }

  async all(): Promise<Record<string, unknown>> {
    const data = await this.#engine.allSessionData(this.#clientId);
    if (data === null) throw ProtocolErrors.sessionUnknown();
    return toObject(data);
  }
}

/**
 * The data of a session being handshaken: kept here until the engine
 * creates the session with it (`SessionOptions.data`).
 */
export class PendingSessionData implements SessionData {
  readonly entries = new Map<string, string>();
  readonly #max: number;
  #size = 0;

  constructor(max: number) {
    this.#max = max;
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const text = this.entries.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async set(key: string, value: unknown): Promise<void> {
    const old = this.entries.get(key);
    const before = old === undefined ? 0 : key.length + old.length;
    if (value === undefined) {
      this.entries.delete(key);
      this.#size -= before;
      return;
    }
    const text = serialize(key, value);
    const size = this.#size - before + key.length + text.length;
    if (size > this.#max) throw tooLarge(this.#max);
    this.entries.set(key, text);
    this.#size = size;
  }

  delete(key: string): Promise<void> {
    return this.set(key, undefined);
  }

  async all(): Promise<Record<string, unknown>> {
    return toObject(this.entries);
  }
}

/** For a message that has no session (an anonymous publish): every call is refused. */
export const NO_SESSION: SessionData = {
  get: () => Promise.reject(ProtocolErrors.sessionUnknown()),
  set: () => Promise.reject(ProtocolErrors.sessionUnknown()),
  delete: () => Promise.reject(ProtocolErrors.sessionUnknown()),
  all: () => Promise.reject(ProtocolErrors.sessionUnknown()),
};
