/**
 * A round-robin TCP load balancer on 127.0.0.1, as a plain L4 proxy in
 * front of a cluster would be: each new client connection goes to the next
 * backend in turn, with no session affinity at all. A backend that refuses
 * the connection (a dead node) is skipped, and skipped first for
 * `downMs` afterwards; the client's bytes wait until a backend accepted.
 * HTTP keep-alive and WebSocket upgrades pass through untouched, since a
 * connection stays on its backend until either side closes it.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface BalancerOptions {
  /** How long a backend that refused a connection is tried last. Default 1000 ms. */
  downMs?: number;
  /** How long to wait for a backend to accept, ms. Default 2000. */
  connectTimeout?: number;
}

export interface TcpBalancer {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Connections handed to each backend port so far. */
  readonly accepted: ReadonlyMap<number, number>;
  /** Client connections that no backend accepted. */
  readonly refused: number;
  /** Replace the backend list (e.g. after a node restarted on a new port). */
  setBackends(ports: readonly number[]): void;
  /** Close the listener and every connection through it. */
  close(): Promise<void>;
}

export async function startBalancer(backends: readonly number[], options: BalancerOptions = {}): Promise<TcpBalancer> {
  const downMs = options.downMs ?? 1000;
  const connectTimeout = options.connectTimeout ?? 2000;
  let ports = [...backends];
  let next = 0;
  let refused = 0;
  const downUntil = new Map<number, number>();
  const accepted = new Map<number, number>();
  const sockets = new Set<net.Socket>();

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  /** The backends in the order to try them: round robin, those that refused lately last. */
  const order = (): number[] => {
    if (ports.length === 0) return [];
    const start = next % ports.length;
    next = (next + 1) % Math.max(1, ports.length);
    const turn = [...ports.slice(start), ...ports.slice(0, start)];
    const now = Date.now();
    const up = turn.filter((p) => (downUntil.get(p) ?? 0) <= now);
    const down = turn.filter((p) => (downUntil.get(p) ?? 0) > now);
    return [...up, ...down];
  };

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    track(client);
    client.on('error', () => client.destroy());
    const candidates = order();
    const attempt = (i: number): void => {
      const port = candidates[i];
      if (port === undefined || client.destroyed) {
        if (port === undefined) refused++;
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port });
      track(upstream);
      const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), connectTimeout);
      const failed = () => {
        clearTimeout(timer);
        downUntil.set(port, Date.now() + downMs);
        upstream.destroy();
        attempt(i + 1);
      };
      upstream.once('error', failed);
      upstream.once('connect', () => {
        clearTimeout(timer);
        upstream.off('error', failed);
        downUntil.delete(port);
        accepted.set(port, (accepted.get(port) ?? 0) + 1);
        const end = () => {
          client.destroy();
          upstream.destroy();
        };
        upstream.on('error', end);
        client.on('error', end);
        upstream.on('close', end);
        client.on('close', end);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    accepted,
    get refused() {
      return refused;
    },
    setBackends(list) {
      ports = [...list];
      next = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
