/**
 * `cometd.admin()`: a live admin page, served from the package. Mount it
 * behind your own authentication:
 *
 * ```ts
 * app.use('/admin', requireAdmin, cometd.admin());
 * ```
 *
 * Under the mount it answers `/` (the page; a request for the mount path
 * without its trailing slash is redirected to it), `/admin.js`,
 * `/admin.css` and `/data.json` (what the page polls once a second).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OpsSource } from './source.js';
import { ADMIN_CSS, ADMIN_HTML, ADMIN_JS } from './admin-page.js';
import { AdminData, type AdminDataOptions } from './admin-data.js';
import { checkKeys, type OpsNext, positiveInt, readOnly, send, sendJson } from './http.js';
import { describeError } from '../protocol/error.js';

/** Options of {@link createAdminHandler}. */
export type AdminOptions = AdminDataOptions;

/** The handler {@link createAdminHandler} returns. */
export interface AdminHandler {
  (req: IncomingMessage, res: ServerResponse, next?: OpsNext): void;
  /** Stop sampling and observing the server. */
  close(): void;
}

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Serve the admin page. It shows, live: sessions, subscriptions, held
 * connections, WebSockets, messages in and out per second (a chart of the
 * last `history` seconds), the busiest channels with their subscriber
 * counts, recent disconnects with their reasons, and the node. Throws a
 * `TypeError` naming a bad option.
 */
export function createAdminHandler(server: OpsSource, options: AdminOptions = {}): AdminHandler {
  if (typeof options !== 'object' || options === null) throw new TypeError('admin options must be an object');
  checkKeys(options, ['history', 'topChannels', 'trackedChannels', 'recentDisconnects', 'timeout'], 'admin');
  const data = new AdminData(server, {
    history: positiveInt(options.history, 'history', 300),
    topChannels: positiveInt(options.topChannels, 'topChannels', 10),
    trackedChannels: positiveInt(options.trackedChannels, 'trackedChannels', 500),
    recentDisconnects: positiveInt(options.recentDisconnects, 'recentDisconnects', 50),
    timeout: positiveInt(options.timeout, 'timeout', 2000),
  });

  const handler = function adminHandler(req: IncomingMessage, res: ServerResponse, next?: OpsNext): void {
    if (!readOnly(req, res, next)) return;
    const head = req.method === 'HEAD';
    const { pathname, search } = new URL(req.url ?? '/', 'http://x');
    const file = pathname.slice(pathname.lastIndexOf('/') + 1);
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    switch (file) {
      case '': {
        // Relative URLs in the page need the trailing slash (Express strips the mount from req.url).
        const original = new URL((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/', 'http://x');
        if (!original.pathname.endsWith('/')) {
          res.statusCode = 302;
          res.setHeader('Location', `${original.pathname}/${search}`);
          res.end();
          return;
        }
        res.setHeader('Content-Security-Policy', CSP);
        send(res, 200, 'text/html; charset=utf-8', ADMIN_HTML, head);
        return;
      }
      case 'admin.js':
        send(res, 200, 'text/javascript; charset=utf-8', ADMIN_JS, head);
        return;
      case 'admin.css':
        send(res, 200, 'text/css; charset=utf-8', ADMIN_CSS, head);
        return;
      case 'data.json':
        data.snapshot().then(
          (snapshot) => sendJson(res, 200, snapshot, head),
          (err: unknown) => {
            server.options.logger.error(`admin: ${describeError(err)}`);
            sendJson(res, 500, { error: 'admin data unavailable' }, head);
          },
        );
        return;
      default:
        if (next) next();
        else send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
    }
  } as AdminHandler;
  Object.defineProperty(handler, 'close', { value: function close(): void { data.close(); } });
  return handler;
}
