/**
 * `cometd.health()`: 200 when the engine answers, 503 otherwise, for load
 * balancers and Kubernetes probes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OpsSource } from './source.js';
import { checkKeys, type OpsHandler, type OpsNext, readOnly, sendJson, withTimeout } from './http.js';

/** Options of {@link createHealthHandler}. */
export interface HealthOptions {
  /**
   * How long to wait for the engine, in ms, before answering 503. Keep it
   * below the probe's own timeout. Default 2000.
   */
  timeout?: number;
}

/** What a health check found: the body of its answer. */
export interface HealthReport {
  /** `ok` (200), `unavailable` (503: the engine did not answer) or `closing` (503: the server is shutting down). */
  status: 'ok' | 'unavailable' | 'closing';
  /** Why it is not `ok`. */
  error?: string;
}

/** Check the engine once: opened, and answering a cheap call within `timeout` ms. */
export async function checkHealth(server: OpsSource, timeout = 2000): Promise<HealthReport> {
  if (server.closed) return { status: 'closing' };
  try {
    await withTimeout(server.open().then(() => server.options.engine.stats()), timeout, 'the engine');
    return { status: 'ok' };
  } catch (err) {
    return { status: 'unavailable', error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * A handler answering GET and HEAD with 200 `{"status":"ok"}` when the
 * engine is reachable, and 503 `{"status":"unavailable","error":...}`
 * when it is not (or `{"status":"closing"}` once `close()` was called, so
 * a balancer stops sending work during a graceful shutdown). Other methods
 * go to `next`, or get a 405. Throws a `TypeError` naming a bad option.
 */
export function createHealthHandler(server: OpsSource, options: HealthOptions = {}): OpsHandler {
  if (typeof options !== 'object' || options === null) throw new TypeError('health options must be an object');
  checkKeys(options, ['timeout'], 'health');
  const timeout = options.timeout ?? 2000;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 1) throw new TypeError('option timeout must be a positive number of ms');

  // Probes come every few seconds: log changes of state, not every answer.
  let last: HealthReport['status'] = 'ok';
  return function healthHandler(req: IncomingMessage, res: ServerResponse, next?: OpsNext): void {
    if (!readOnly(req, res, next)) return;
    void checkHealth(server, timeout).then((report) => {
      if (report.status !== last) {
        if (report.status === 'unavailable') server.options.logger.warn(`health: engine unavailable: ${report.error ?? ''}`);
        else if (report.status === 'ok') server.options.logger.info('health: engine available again');
        last = report.status;
      }
      sendJson(res, report.status === 'ok' ? 200 : 503, report, req.method === 'HEAD');
    });
  };
}
