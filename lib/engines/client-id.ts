/**
 * Session ids: how the shipped engines make them, and how the Server tells
 * a well-formed one from anything else a client may send as `clientId`
 * before the id reaches an engine (where it becomes part of a key name:
 * on Redis, `"deadlines"` or `"<id>:data"` would name an internal key).
 */
import { randomBytes } from 'node:crypto';
import type { Engine } from './engine.js';

/** Random bytes in an id made by {@link newClientId} (160 bits). */
const ID_BYTES = 20;

/** What {@link newClientId} makes: 27 base64url characters (160 bits, no padding). */
const SHIPPED_ID = /^[A-Za-z0-9_-]{27}$/;

/**
 * What any engine's ids may look like, for an engine that does not say
 * (`Engine.isClientId`): the `Engine` contract asks for ids that
 * are URL-safe and carry at least 128 bits of randomness, so at least 22
 * characters (base64url, the densest URL-safe encoding) of RFC 3986's
 * unreserved set, and (a bound of ours) at most 128 of them. Hex, UUIDs,
 * base36 and base64url ids fit; key separators (`:`), hash tags (`{`, `}`),
 * spaces and the short names engines give their own keys do not.
 */
const PLAUSIBLE_ID = /^[A-Za-z0-9._~-]{22,128}$/;

/** Generate a session id: 160 random bits, URL-safe (27 base64url characters). */
export function newClientId(): string {
  return randomBytes(ID_BYTES).toString('base64url');
}

/** Whether `id` has exactly the shape {@link newClientId} produces. */
export function isClientId(id: unknown): id is string {
  return typeof id === 'string' && SHIPPED_ID.test(id);
}

/**
 * The conservative check used for an engine that does not declare the
 * shape of its ids: 22 to 128 characters from `A-Z a-z 0-9 . _ ~ -`.
 */
export function isPlausibleClientId(id: unknown): id is string {
  return typeof id === 'string' && PLAUSIBLE_ID.test(id);
}

/** The check the Server applies to clientIds before they reach `engine`. */
export function clientIdCheck(engine: Pick<Engine, 'isClientId'>): (id: string) => boolean {
  const own = engine.isClientId;
  if (typeof own !== 'function') return isPlausibleClientId;
  return function engineIdCheck(id: string): boolean {
    try {
      return own.call(engine, id) === true;
    } catch {
      return false;
    }
  };
}
