/**
 * `cometd.metrics()`: the server's numbers in the Prometheus text format,
 * on prom-client.
 *
 * Gauges and the message counters are read from `server.stats()` when
 * Prometheus scrapes (one engine call per scrape, however many metrics ask).
 * Refusals, drops, engine errors and delivery latencies arrive through a
 * {@link ServerObserver}; on the hot path they only add to numbers and typed
 * arrays, and are handed to prom-client at scrape time.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OpsSource } from './source.js';
import type { ServerObserver } from '../server/observer.js';
import type { Stats } from '../server/types.js';
import { checkKeys, type OpsNext, readOnly, send, withTimeout } from './http.js';
import { describeError } from '../protocol/error.js';

/** Options of {@link createMetricsHandler}. */
export interface MetricsOptions {
  /**
   * The prom-client registry to register the metrics in, to serve them
   * together with the application's own (the handler then serves the whole
   * registry). Default: a new registry of this handler's own.
   */
  registry?: Registry;
  /**
   * Prepended to every metric name. Default `'bayeux_'`.
   */
  prefix?: string;
  /**
   * Upper bounds, in seconds, of the buckets of the publish-to-write latency
   * histogram. Default `[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
   * 0.1, 0.25, 0.5, 1, 2.5]`.
   */
  buckets?: readonly number[];
  /**
   * How long a scrape waits for the engine's counts, in ms; past it the
   * gauges keep their last values and `bayeux_engine_up` is 0. Default 2000.
   */
  timeout?: number;
}

/** The handler {@link createMetricsHandler} returns. */
export interface MetricsHandler {
  (req: IncomingMessage, res: ServerResponse, next?: OpsNext): void;
  /** The registry the metrics are in (the one passed as an option, or the handler's own). */
  readonly registry: Registry;
  /** Stop observing the server and remove the metrics from the registry. */
  close(): void;
}

function noop(): void {}

const DEFAULT_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Distinct refusal codes kept apart; any beyond are counted as `other` (codes are a handful in practice). */
const MAX_CODES = 32;

/**
 * A histogram whose observations are recorded into typed arrays (no
 * allocation, no label hashing) and read by prom-client at scrape time.
 */
class LatencyHistogram extends Histogram {
  readonly #bounds: Float64Array;
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(name: string, help: string, bounds: readonly number[], registry: Registry) {
    super({ name, help, buckets: [...bounds], registers: [registry] });
    this.#bounds = Float64Array.from(bounds);
    this.#counts = new Float64Array(bounds.length);
  }

  /** Record `count` observations of `seconds` (the server may time one copy for several). */
  record(seconds: number, count = 1): void {
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= (bounds[i] as number)) {
        (this.#counts[i] as number) += count;
        break;
      }
    }
    this.#sum += seconds * count;
    this.#count += count;
  }

  /** prom-client's own observe() records here too, so the histogram has one state. */
  override observe(...args: unknown[]): void {
    const value = args.length === 1 ? args[0] : args[1];
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError('observe() needs a finite number');
    this.record(value);
  }

  override async get(): ReturnType<Histogram['get']> {
    return this.#export();
  }

  async getForPromString(): ReturnType<Histogram['get']> {
    return this.#export();
  }

  override reset(): void {
    if (!(#counts in this)) return; // called by prom-client's constructor, before these fields exist
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  #export(): Awaited<ReturnType<Histogram['get']>> {
    const name = `${this.name}_bucket`;
    const values: Awaited<ReturnType<Histogram['get']>>['values'] = [];
    let acc = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      acc += this.#counts[i] as number;
      values.push({ labels: { le: this.#bounds[i] }, value: acc, metricName: name });
    }
    values.push(
      { labels: { le: '+Inf' }, value: this.#count, metricName: name },
      { labels: {}, value: this.#sum, metricName: `${this.name}_sum` },
      { labels: {}, value: this.#count, metricName: `${this.name}_count` },
    );
    return { name: this.name, help: this.help, type: 'histogram' as never, values, aggregator: 'sum', collect: noop };
  }

  declare readonly name: string;
  declare readonly help: string;
}

/**
 * Serve the server's metrics in the Prometheus text format. Mount it where
 * Prometheus scrapes: `app.get('/metrics', cometd.metrics())`. Only GET and
 * HEAD are answered; other methods go to `next` (or get a 405).
 *
 * Metrics (names with the default prefix):
 * - `bayeux_sessions`, `bayeux_subscriptions` (gauges; from the engine,
 *   so cluster-wide on a shared engine such as Redis);
 * - `bayeux_held_connections`, `bayeux_websockets` (gauges; this node);
 * - `bayeux_engine_up` (gauge; 1 when the last scrape reached the engine);
 * - `bayeux_messages_in_total`, `bayeux_messages_out_total`,
 *   `bayeux_dropped_total`, `bayeux_errors_total{code}`,
 *   `bayeux_engine_errors_total` (counters; this node);
 * - `bayeux_handshakes_refused_total{reason}` (`node`: over
 *   `maxHandshakeRate`, `address`: over `handshakeRatePerIp`, `draining`),
 *   `bayeux_rate_limited_total` (messages refused over `rateLimit`),
 *   `bayeux_drained_sessions_total` (sessions handed off by
 *   `close({ drain })`) (counters; this node);
 * - `bayeux_delivery_latency_seconds` (histogram; publish to write on the
 *   subscriber's connection, for messages published on this node). It is
 *   sampled: one delivered copy in 16 is timed, and counted for itself and
 *   the 15 untimed copies before it, so `_count` approximates the copies
 *   written and the buckets the shape of their latencies. Copies of
 *   messages published on other nodes, or more than one to two seconds
 *   earlier, are not counted. To time the messages, the server keeps each
 *   published message for one to two seconds, at most 16 Mi characters
 *   of them (then publishes go untimed until the oldest are let go).
 *
 * Throws a `TypeError` naming a bad option, and prom-client's error when a
 * metric of the same name is already in `registry`.
 */
export function createMetricsHandler(server: OpsSource, options: MetricsOptions = {}): MetricsHandler {
  if (typeof options !== 'object' || options === null) throw new TypeError('metrics options must be an object');
  checkKeys(options, ['registry', 'prefix', 'buckets', 'timeout'], 'metrics');
  const registry = options.registry ?? new Registry();
  if (!(registry instanceof Registry)) throw new TypeError('option registry must be a prom-client Registry');
  const prefix = options.prefix ?? 'bayeux_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new TypeError('option prefix must be a valid metric name prefix');
  }
  const buckets = options.buckets ?? DEFAULT_BUCKETS;
  if (!Array.isArray(buckets) || buckets.length === 0 || !buckets.every((b, i) => typeof b === 'number' && b > 0 && Number.isFinite(b) && (i === 0 || b > (buckets[i - 1] as number)))) {
    throw new TypeError('option buckets must be a non-empty list of increasing positive numbers');
  }
  const timeout = options.timeout ?? 2000;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 1) throw new TypeError('option timeout must be a positive number of ms');

  // Check every name first, so a clash registers nothing rather than half the metrics.
  const names = ['delivery_latency_seconds', 'sessions', 'subscriptions', 'held_connections', 'websockets', 'engine_up',
    'messages_in_total', 'messages_out_total', 'dropped_total', 'engine_errors_total', 'errors_total',
    'handshakes_refused_total', 'rate_limited_total', 'drained_sessions_total'].map((name) => prefix + name);
  for (const name of names) {
    if (registry.getSingleMetric(name)) throw new Error(`A metric with the name ${name} has already been registered.`);
  }

  // ---- what the observer counts (numbers only; handed over at scrape time)
  let dropped = 0;
  let engineErrors = 0;
  let rateLimited = 0;
  let drained = 0;
  const handshakesRefused = new Map<string, number>();
  const refusals = new Map<number | 'other', number>();
  const latency = new LatencyHistogram(
    `${prefix}delivery_latency_seconds`,
    'Time from a publish on this node to the write of a copy on a subscriber\'s connection on this node, in seconds. '
      + 'Sampled: one copy in 16 is timed and counted for itself and the 15 copies before it; '
      + 'copies of messages published on other nodes or more than 1-2 s earlier are not counted',
    buckets,
    registry,
  );

  const observer: ServerObserver = {
    refused(code) {
      const key = refusals.has(code) || refusals.size < MAX_CODES ? code : 'other';
      refusals.set(key, (refusals.get(key) ?? 0) + 1);
    },
    engineError() {
      engineErrors++;
    },
    handshakeRefused(reason) {
      handshakesRefused.set(reason, (handshakesRefused.get(reason) ?? 0) + 1);
    },
    rateLimited() {
      rateLimited++;
    },
    drained() {
      drained++;
    },
    dropped(count) {
      dropped += count;
    },
    delivered(count, latencyMs) {
      latency.record(latencyMs / 1000, count);
    },
  };

  // ---- one stats() per scrape, shared by every metric that needs it
  let last: Stats | undefined;
  let pending: Promise<Stats | undefined> | undefined;
  let up = 0;
  let warned = false;
  function scrapeStats(): Promise<Stats | undefined> {
    pending ??= readStats().finally(() => {
      // Let every collect() of this scrape share it, then forget it.
      setImmediate(() => (pending = undefined));
    });
    return pending;
  }
  async function readStats(): Promise<Stats | undefined> {
    try {
      last = await withTimeout(server.stats(), timeout, 'the engine');
      up = 1;
      warned = false;
    } catch (err) {
      // Once per outage, not once per scrape.
      if (!warned) server.options.logger.warn(`metrics: engine stats unavailable: ${describeError(err)}`);
      warned = true;
      up = 0;
    }
    return last;
  }

  function statGauge(name: string, help: string, pick: (stats: Stats) => number): Gauge {
    return new Gauge({
      name: prefix + name,
      help,
      registers: [registry],
      async collect() {
        const stats = await scrapeStats();
        if (stats) this.set(pick(stats));
      },
    });
  }
  /** A counter that follows a cumulative count of the server's (never goes back). */
  function statCounter(name: string, help: string, pick: (stats: Stats) => number): Counter {
    let seen = 0;
    return new Counter({
      name: prefix + name,
      help,
      registers: [registry],
      async collect() {
        const stats = await scrapeStats();
        if (!stats) return;
        const now = pick(stats);
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  }
  /** A counter fed from a number the observer adds to. */
  function observedCounter(name: string, help: string, read: () => number): Counter {
    let seen = 0;
    return new Counter({
      name: prefix + name,
      help,
      registers: [registry],
      collect() {
        const now = read();
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  }

  // Each registers itself in `registry`.
  statGauge('sessions', 'Sessions in the engine (cluster-wide on a shared engine such as Redis)', (s) => s.sessions);
  statGauge('subscriptions', 'Subscriptions in the engine (cluster-wide on a shared engine such as Redis)', (s) => s.subscriptions);
  statGauge('held_connections', '/meta/connect requests held open on this node', (s) => s.heldConnections);
  statGauge('websockets', 'WebSockets open on this node', (s) => s.sockets);
  new Gauge({
    name: `${prefix}engine_up`,
    help: '1 when the last scrape reached the engine, 0 when it could not',
    registers: [registry],
    async collect() {
      await scrapeStats();
      this.set(up);
    },
  });
  statCounter('messages_in_total', 'Bayeux messages received by this node', (s) => s.messagesIn);
  statCounter('messages_out_total', 'Bayeux messages sent by this node (replies and deliveries)', (s) => s.messagesOut);
  observedCounter('dropped_total', 'Messages dropped for sessions on this node (maxQueue, maxQueueBytes, slow consumers)', () => dropped);
  observedCounter('engine_errors_total', 'Engine calls that failed on this node', () => engineErrors);
  observedCounter('rate_limited_total', 'Messages refused on this node over their session\'s rateLimit', () => rateLimited);
  observedCounter('drained_sessions_total', 'Sessions handed off by a drain of this node (close({ drain }))', () => drained);
  const seenRefusals = new Map<string, number>();
  new Counter({
    name: `${prefix}handshakes_refused_total`,
    help: 'Handshakes refused by this node: over maxHandshakeRate (node), over handshakeRatePerIp (address), or draining',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      for (const [reason, count] of handshakesRefused) {
        const before = seenRefusals.get(reason) ?? 0;
        if (count > before) this.inc({ reason }, count - before);
        seenRefusals.set(reason, count);
      }
    },
  });
  const seenCodes = new Map<number | 'other', number>();
  new Counter({
    name: `${prefix}errors_total`,
    help: 'Bayeux refusals (successful: false) sent by this node, by error code',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      for (const [code, count] of refusals) {
        const before = seenCodes.get(code) ?? 0;
        if (count > before) this.inc({ code: String(code) }, count - before);
        seenCodes.set(code, count);
      }
    },
  });

  const stopObserving = server.observe(observer);

  const handler = function metricsHandler(req: IncomingMessage, res: ServerResponse, next?: OpsNext): void {
    if (!readOnly(req, res, next)) return;
    registry.metrics().then(
      (text) => send(res, 200, registry.contentType, text, req.method === 'HEAD'),
      (err: unknown) => {
        server.options.logger.error(`metrics: ${describeError(err)}`);
        if (next) next(err);
        else send(res, 500, 'text/plain; charset=utf-8', 'metrics unavailable\n');
      },
    );
  } as MetricsHandler;
  Object.defineProperty(handler, 'registry', { value: registry, enumerable: true });
  Object.defineProperty(handler, 'close', {
    value: function close(): void {
      stopObserving();
      for (const name of names) registry.removeSingleMetric(name);
    },
  });
  return handler;
}
