/**
 * A TCP proxy on 127.0.0.1 that forwards to a target port and can cut a
 * connection instead of forwarding a chunk from the server, to lose a reply
 * the way a flaky network does.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface CuttingProxy {
  readonly port: number;
  /** How many connections were cut so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

/** `cut(chunk)` decides, for each chunk from the server, whether to drop it and cut both sides. At most `maxCuts` cuts. */
export async function startCuttingProxy(target: number, cut: (chunk: Buffer) => boolean, maxCuts: number): Promise<CuttingProxy> {
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const { upstream, destroy } = pair(client, target, sockets);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (cuts < maxCuts && cut(chunk)) {
        cuts++;
        destroy();
        return;
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get cuts() {
      return cuts;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Connect `client` to `target` on 127.0.0.1; both are tracked in `sockets`, and either closing or failing (or `destroy`) ends both. */
function pair(client: net.Socket, target: number, sockets: Set<net.Socket>): { upstream: net.Socket; destroy: () => void } {
  const upstream = net.connect(target, '127.0.0.1');
  sockets.add(client);
  sockets.add(upstream);
  const destroy = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  for (const s of [client, upstream]) {
    s.on('error', destroy);
    s.on('close', destroy);
  }
  return { upstream, destroy };
}

export interface SwitchProxy {
  readonly port: number;
  /** Cut every connection and refuse new ones until {@link up}. */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 to `target` that can be switched off and on: a network outage for one client only. */
export async function startSwitchProxy(target: number): Promise<SwitchProxy> {
  let on = true;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!on) {
      client.destroy();
      return;
    }
    const { upstream } = pair(client, target, sockets);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    down() {
      on = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    up() {
      on = true;
    },
    async close() {
      on = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface DelayProxy {
  readonly port: number;
  /** From now on, hold what the server sends on the first connection made through the proxy this many ms (0: not at all). */
  delayFirst(ms: number): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 to `target` that can make the server's answers
 * on its first connection late (in order), and only there: a node-redis
 * client connects its command connection before its Pub/Sub duplicate.
 */
export async function startDelayProxy(target: number): Promise<DelayProxy> {
  let delay = 0;
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((client) => {
    const first = accepted++ === 0;
    // The first connection's answers, in order, each with the time it may go.
    const queue: Array<{ chunk: Buffer; due: number }> = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      if (timer) timers.delete(timer);
      timer = undefined;
      while (queue.length > 0 && (queue[0] as { due: number }).due <= Date.now()) client.write((queue.shift() as { chunk: Buffer }).chunk);
      if (queue.length === 0) return;
      timer = setTimeout(pump, (queue[0] as { due: number }).due - Date.now());
      timers.add(timer);
    };
    const { upstream } = pair(client, target, sockets);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (!first) {
        client.write(chunk);
        return;
      }
      queue.push({ chunk, due: Date.now() + delay });
      if (!timer) pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    delayFirst(ms) {
      delay = ms;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
