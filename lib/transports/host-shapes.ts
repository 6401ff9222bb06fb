/**
 * Giving requests their final shape before the host's router runs.
 *
 * Express (4 and 5) changes the prototype of every request and response
 * (`Object.setPrototypeOf`) and then adds its routing fields to them
 * (`res.locals`, `req.next`, `req.baseUrl`, `req.params`, ...); reading a
 * body adds `_eventsCount`. In V8 (Node 20) an object that gets a new
 * property after its prototype changed gets a hidden class of its own. So
 * behind Express every request and response carried a hidden class and a
 * descriptor array of its own (about 1 KiB each, for as long as a connect
 * is held), and every property access in Node's HTTP code saw a new shape
 * per request: megamorphic, several times slower than on a bare `http`
 * server.
 *
 * The cure is for those fields to exist before the prototype changes: then
 * the router's writes change values, not shapes, and all requests share
 * one hidden class again. `attach(server)` puts a first `request` listener
 * on the server that does this, for requests under the mount path only:
 * it adds the own data properties that earlier requests the transports
 * answered had gained since the `request` event (learned from the first
 * requests, at most `MAX_KEYS` per object), each with the value it reads
 * as at that point: `undefined`, or what Node's own prototypes give (the
 * `0` of `_eventsCount`), so every read stays what it was. A field the
 * host's own prototypes define (an Express `app.request` method or
 * getter) is never learned: an own field would hide it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUnderMount } from './mount.js';

/** Most properties learned per object (request, response). */
const MAX_KEYS = 32;
/** Learning stops after this many answered requests in a row brought nothing new. */
const SETTLED_AFTER = 64;

class Learned {
  /** Own keys at the `request` event (the first one seen). */
  base: Set<PropertyKey> | undefined;
  /** The prototype at the `request` event: Node's own class. */
  baseProto: object | null = null;
  readonly keys: PropertyKey[] = [];

  /** Note the own data properties `target` gained since the `request` event; true if any was new. */
  learn(target: object): boolean {
    const base = this.base;
    if (!base) return false;
    let added = false;
    for (const key of Reflect.ownKeys(target)) {
      if (base.has(key) || this.keys.includes(key) || this.keys.length >= MAX_KEYS) continue;
      const descriptor = Object.getOwnPropertyDescriptor(target, key);
      // Accessors and read-only fields are left to whoever defined them.
      if (!descriptor || !('value' in descriptor) || !descriptor.writable || !descriptor.configurable) continue;
      if (!this.#plainInherited(Object.getPrototypeOf(target) as object | null, key)) continue;
      this.keys.push(key);
      added = true;
    }
    return added;
  }

  /**
   * Whether an own `key` set early reads as the prototypes would: no
   * prototype the host put above Node's class defines it, and Node's own
   * chain has at most a plain value for it.
   */
  #plainInherited(proto: object | null, key: PropertyKey): boolean {
    let above = true;
    for (let p = proto; p !== null; p = Object.getPrototypeOf(p) as object | null) {
      if (p === this.baseProto) above = false;
      const descriptor = Object.getOwnPropertyDescriptor(p, key);
      if (descriptor) return !above && 'value' in descriptor;
    }
    return true;
  }

  /** Add the learned fields `target` does not have yet, with the values they read as. */
  prepare(target: object): void {
    const fields = target as Record<PropertyKey, unknown>;
    // Reading the field gives what the prototype chain says; writing it makes an own field with that value.
    // eslint-disable-next-line no-self-assign
    for (const key of this.keys) if (!Object.hasOwn(target, key)) fields[key] = fields[key];
  }
}

export class HostShapes {
  readonly #req = new Learned();
  readonly #res = new Learned();
  readonly #path: () => string | undefined;
  #quiet = 0;

  /** @param path the mount path, once known: only requests under it are shaped. */
  constructor(path: () => string | undefined) {
    this.#path = path;
  }

  /** The server's first `request` listener. */
  readonly prepare = (req: IncomingMessage, res: ServerResponse): void => {
    if (!this.#req.base) {
      this.#req.base = new Set(Reflect.ownKeys(req));
      this.#req.baseProto = Object.getPrototypeOf(req) as object | null;
      this.#res.base = new Set(Reflect.ownKeys(res));
      this.#res.baseProto = Object.getPrototypeOf(res) as object | null;
      return;
    }
    if (this.#req.keys.length + this.#res.keys.length === 0 || !isUnderMount(req.url, this.#path())) return;
    try {
      this.#req.prepare(req);
      this.#res.prepare(res);
    } catch {
      // A throw here would escape into Node's HTTP parser and end the process.
      // Nothing in Node or Express throws on these writes; should a host's
      // objects ever do, shaping stops and requests go on as they come.
      this.#req.keys.length = 0;
      this.#res.keys.length = 0;
      this.#quiet = SETTLED_AFTER;
    }
  };

  /**
   * Learn what this request and its response gained since the `request`
   * event: called when a transport takes a request over (the host's fields)
   * and after it answered (the fields Node's `writeHead` adds).
   */
  learn(req: IncomingMessage, res: ServerResponse): void {
    if (this.#quiet >= SETTLED_AFTER || !this.#req.base) return;
    const added = this.#req.learn(req);
    const addedRes = this.#res.learn(res);
    this.#quiet = added || addedRes ? 0 : this.#quiet + 1;
  }
}
