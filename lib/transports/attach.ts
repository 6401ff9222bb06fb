/**
 * What `cometd.attach(server, options)` takes, and running its
 * connect-style middleware on an upgrade request: what a host sees of the
 * WebSocket transport, kept apart from the sockets themselves so the
 * public types do not reach into the transport.
 */
import { type IncomingMessage, ServerResponse } from 'node:http';

/**
 * Connect-style middleware (`express-session`, passport, your own) run on a
 * WebSocket upgrade request before the socket is accepted. It gets the
 * upgrade request and a `ServerResponse` that is never sent: headers it
 * sets with `Set-Cookie` go out on the `101` answer. Calling `next(err)`
 * (or throwing, or rejecting) refuses the upgrade with `err.status` (or
 * `err.statusCode`; default 500); ending the response without calling
 * `next` refuses it with `res.statusCode` (403 if that is below 400).
 * One that does neither within `upgradeTimeout` (a `bayeux()` option,
 * default 10 s) has the upgrade refused with 503; if the client goes away
 * while it runs, the connection is closed at once.
 */
export type UpgradeMiddleware = {
  // A method signature, so Express and connect middleware typed on their own request types fit.
  handle(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): unknown;
}['handle'];

/** Options of `cometd.attach(server, options)`. */
export interface AttachOptions {
  /**
   * The path to accept upgrades on (and any path under it). Default: the
   * path the middleware was mounted at, as learned from the first HTTP
   * request it handled (Express `req.baseUrl`, connect `req.originalUrl`);
   * until then, upgrades are left to other listeners and a warning is logged
   * once. Pass it whenever WebSocket may be the first thing a client tries.
   */
  path?: string;
  /** Middleware run on each upgrade request, in order, before the socket is accepted. Default: none. */
  middleware?: UpgradeMiddleware | readonly UpgradeMiddleware[];
}

/** `AttachOptions` checked: the path without trailing slashes, the middleware as a list. */
export interface CheckedAttachOptions {
  path: string | undefined;
  middleware: readonly UpgradeMiddleware[];
}

/** Check what was given to `attach()`; throws a `TypeError` naming a bad option. */
export function checkAttachOptions(options: AttachOptions): CheckedAttachOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('attach options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'path' && key !== 'middleware') throw new TypeError(`unknown attach option ${key}`);
  }
  const { path, middleware: given } = options;
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw new TypeError('attach option path must start with /');
  }
  const middleware: readonly UpgradeMiddleware[] = given === undefined ? [] : Array.isArray(given) ? given : [given as UpgradeMiddleware];
  if (!middleware.every((fn) => typeof fn === 'function')) {
    throw new TypeError('attach option middleware must be a function (req, res, next) or a list of them');
  }
  return { path: path === undefined ? undefined : path.replace(/\/+$/, '') || '/', middleware };
}

/** The status an upgrade middleware's error asks for. */
function errorStatus(err: unknown): number {
  const e = (err ?? {}) as { status?: unknown; statusCode?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  return status >= 400 && status <= 599 ? status : 500;
}

/**
 * Run connect-style middleware on an upgrade request. Resolves with the
 * headers to add to the `101` answer (`Set-Cookie` from a session
 * middleware), or with the status to refuse the upgrade with.
 */
export function runUpgradeMiddleware(stack: readonly UpgradeMiddleware[], req: IncomingMessage): Promise<string[] | number> {
  return new Promise(function upgradeMiddleware(resolve) {
    const res = new ServerResponse(req);
    let done = false;
    let finishing: (() => void) | undefined;
    const settle = (outcome: string[] | number): void => {
      if (done) return;
      done = true;
      resolve(outcome);
    };
    // The innermost end(): a middleware that ends the response refuses the upgrade;
    // our own end() (after the chain) lets wrappers such as express-session save first.
    const end = function end(this: ServerResponse): ServerResponse {
      if (finishing) finishing();
      else settle(res.statusCode >= 400 ? res.statusCode : 403);
      return res;
    };
    res.end = end as ServerResponse['end'];
    let index = 0;
    const next = (err?: unknown): void => {
      if (done || finishing) return;
      if (err !== undefined && err !== null) {
        settle(errorStatus(err));
        return;
      }
      const fn = stack[index++];
      if (!fn) {
        finishing = () => settle(setCookies(res));
        try {
          res.end();
        } catch {
          settle(500);
        }
        return;
      }
      try {
        const result: unknown = fn(req, res, next);
        if (result instanceof Promise) result.catch((e: unknown) => next(e ?? new Error('upgrade middleware rejected')));
      } catch (e) {
        next(e ?? new Error('upgrade middleware threw'));
      }
    };
    next();
  });
}

function setCookies(res: ServerResponse): string[] {
  const value = res.getHeader('set-cookie');
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [String(value)];
  return list.map((cookie) => `Set-Cookie: ${cookie}`);
}
