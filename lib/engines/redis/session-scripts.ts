/**
 * Running a session script: KEYS[1] is the session's bucket base, ARGV
 * starts with the node channel prefix and the session id (what
 * `SESSION_PRELUDE` reads), then the script's own arguments (the builders
 * in lua/session.ts). Refused until the engine is open.
 */
import { EngineUnavailableError } from '../engine.js';
import type { Keys } from './keys.js';
import type { Script } from './lua/index.js';
import type { Runner } from './runner.js';

export class SessionScripts {
  readonly #runner: Runner;
  readonly #keys: Keys;
  #open = false;

  constructor(runner: Runner, keys: Keys) {
    this.#runner = runner;
    this.#keys = keys;
  }

  /** The engine opened: scripts may run. */
  opened(): void {
    this.#open = true;
  }

  run(script: Script, clientId: string, args: readonly string[]): Promise<unknown> {
    if (!this.#open) return Promise.reject(new EngineUnavailableError(`Redis engine is not open (${this.#runner.where})`));
    return this.#runner.run(script, this.#keys.bucket(clientId), [this.#keys.nodeChannelPrefix, clientId, ...args]);
  }
}
