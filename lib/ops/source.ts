/**
 * What the operations handlers read of the protocol server: the numbers
 * and events users also get (`stats()`, `on`/`off`), plus what only
 * operators need (observing the delivery path, opening and asking the
 * engine, the logger). The `Server` class satisfies it; the handlers never
 * import it.
 */
import type { Engine } from '../engines/engine.js';
import type { Logger } from '../options.js';
import type { ServerObserver } from '../server/observer.js';
import type { ServerEvents, Stats } from '../server/types.js';

/** The protocol server as the metrics, admin and health handlers see it. */
export interface OpsSource {
  /** True once `close()` was called. */
  readonly closed: boolean;
  /** True while `close({ drain })` hands the node's sessions off. */
  readonly draining?: boolean;
  /** The engine (asked directly for its own stats and subscriber counts) and the logger. */
  readonly options: { readonly engine: Engine; readonly logger: Logger };
  /** Open the engine, or wait for it to be open (a failed open is tried again on the next call). */
  open(): Promise<void>;
  /** The same numbers as `cometd.stats()`. */
  stats(): Promise<Stats>;
  /** Report what the server does to `observer`; returns a function that stops it. */
  observe(observer: ServerObserver): () => void;
  on<K extends keyof ServerEvents>(event: K, listener: (...args: ServerEvents[K]) => void): unknown;
  off<K extends keyof ServerEvents>(event: K, listener: (...args: ServerEvents[K]) => void): unknown;
}
