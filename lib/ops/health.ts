/**
 * `cometd.health()`: 200 when the engine answers, 503 otherwise, for load
 * balancers and Kubernetes probes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OpsSource } from './source.js';
import { checkKeys, type OpsHandler, type OpsNext, readOnly, sendJson, withTimeout } from './http.js';
import { describeError } from '../protocol/error.js';
import type { EngineDataLoss } from '../engines/engine.js';

/** Options of {@link createHealthHandler}. */
export interface HealthOptions {
  /**
   * How long to wait for the engine, in ms, before answering 503. Keep it
   * below the probe's own timeout. Default 2000.
   */
  timeout?: number;
  /**
   * How long, in ms, a check's result answers later requests too. Requests
   * that arrive while a check is under way always share it, so however many
   * probes (or strangers: `express-bayeux serve` exposes `/health` without
   * authentication) call, the engine sees at most one check per `maxAge`.
   * A server that is draining or closing answers so at once, whatever is cached.
   * 0 shares only the check in flight. Default 1000.
   */
  maxAge?: number;
}

/** What a health check found: the body of its answer. */
export interface HealthReport {
  /**
   * `ok` (200), `unavailable` (503: the engine did not answer), `draining`
   * (503: `close({ drain })` is handing the sessions off) or `closing`
   * (503: the server is shutting down).
   */
  status: 'ok' | 'unavailable' | 'draining' | 'closing';
  /** Why it is not `ok`. */
  error?: string;
  /**
   * What the engine found its store lost (a Redis, or a Cluster primary,
   * restarted empty), once it has: how often, and the latest. The node
   * still answers 200 when the engine serves again: every node would see
   * the same loss, and a balancer must not take them all out.
   */
  dataLoss?: EngineDataLoss;
}

/** The check under way for each server, shared by every caller of {@link checkHealth}. */
const inFlight = new WeakMap<OpsSource, Promise<HealthReport>>();

/**
 * Check the engine once: opened, and answering a cheap call (its O(1)
 * `stats()`) within `timeout` ms. Calls made while a check of the same
 * server is under way share it (and its `timeout`).
 */
export function checkHealth(server: OpsSource, timeout = 2000): Promise<HealthReport> {
  const stopping = stoppingReport(server);
  if (stopping) return Promise.resolve(stopping);
  let check = inFlight.get(server);
  if (!check) {
    check = runCheck(server, timeout).finally(() => inFlight.delete(server));
    inFlight.set(server, check);
  }
  return check;
}

/** A server draining or closing answers so at once, whatever the engine says. */
function stoppingReport(server: OpsSource): HealthReport | undefined {
  if (server.closed) return { status: 'closing' };
  if (server.draining === true) return { status: 'draining' };
  return undefined;
}

async function runCheck(server: OpsSource, timeout: number): Promise<HealthReport> {
  try {
    const { engine } = server.options;
    await withTimeout(server.open().then(() => engine.stats()), timeout, 'the engine');
    const dataLoss = engine.dataLoss;
    return dataLoss && dataLoss.count > 0 ? { status: 'ok', dataLoss } : { status: 'ok' };
  } catch (err) {
    return { status: 'unavailable', error: describeError(err) };
  }
}

/**
 * A handler answering GET and HEAD with 200 `{"status":"ok"}` when the
 * engine is reachable, and 503 `{"status":"unavailable","error":...}`
 * when it is not (or `{"status":"draining"}` from the first moment of
 * `close({ drain })`, and `{"status":"closing"}` once the server closes,
 * so a balancer stops sending work during a graceful shutdown). Other methods
 * go to `next`, or get a 405. Concurrent requests share one engine check,
 * and its result is reused for `maxAge` ms. Throws a `TypeError` naming a
 * bad option.
 */
export function createHealthHandler(server: OpsSource, options: HealthOptions = {}): OpsHandler {
  if (typeof options !== 'object' || options === null) throw new TypeError('health options must be an object');
  checkKeys(options, ['timeout', 'maxAge'], 'health');
  const timeout = options.timeout ?? 2000;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 1) throw new TypeError('option timeout must be a positive number of ms');
  const maxAge = options.maxAge ?? 1000;
  if (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge < 0) throw new TypeError('option maxAge must be a number of ms, 0 or more');

  // Probes come every few seconds: log changes of state, not every answer.
  let last: HealthReport['status'] = 'ok';
  let cached: { report: HealthReport; at: number } | undefined;
  function report(): Promise<HealthReport> {
    const stopping = stoppingReport(server);
    if (stopping) return Promise.resolve(stopping);
    if (cached && performance.now() - cached.at < maxAge) return Promise.resolve(cached.report);
    return checkHealth(server, timeout).then((found) => {
      if (found.status === 'ok' || found.status === 'unavailable') cached = { report: found, at: performance.now() };
      return found;
    });
  }
  return function healthHandler(req: IncomingMessage, res: ServerResponse, next?: OpsNext): void {
    if (!readOnly(req, res, next)) return;
    void report().then((found) => {
      if (found.status !== last) {
        if (found.status === 'unavailable') server.options.logger.warn(`health: engine unavailable: ${found.error ?? ''}`);
        else if (found.status === 'ok') server.options.logger.info('health: engine available again');
        last = found.status;
      }
      sendJson(res, found.status === 'ok' ? 200 : 503, found, req.method === 'HEAD');
    });
  };
}
