/**
 * A load-client process: N subscribers on the benchmark channel, over one
 * transport, each with its own session and connect loop. Counts
 * deliveries and records latencies between the parent's `start` and
 * `stop`, and tells the parent when all of its subscribers have every
 * message of a batch (`done`), which drives the max-throughput window.
 */
import type { Agent } from 'node:http';
import {
  CHANNEL, Histogram, sleep, type ClientSetup, type FromClient, type ToClient,
} from './common.js';
import { HttpSession, openSession, type SessionHooks } from './wire.js';
import { SioSubscriber } from './sio-wire.js';

/** What the load client needs of a subscriber, Bayeux session or Socket.IO socket. */
interface Subscriber {
  readonly connecting: boolean;
  close(): void;
}

/** Handshakes in flight at once during setup. */
const SETUP_CONCURRENCY = 64;
/** Batches tracked for completion at once; older incomplete ones are forgotten. */
const MAX_TRACKED_BATCHES = 2000;
/** Messages in one batch, unless the setup says otherwise. */
let BATCH = 10;

if (!process.send) {
  console.error('client.js is started by bench/run.js over IPC');
  process.exit(2);
}

function send(message: FromClient): void {
  process.send?.(message);
}

const hist = new Histogram();
let measuring = false;
let fromSeq = Infinity;
let toSeq = Infinity;
let received = 0;
let receivedInWindow = 0;
let errors = 0;
let resubscribes = 0;
let expectedPerBatch = 0;
let cpuAtStart = process.cpuUsage();
let cpuInWindow = { user: 0, system: 0 };
const perBatch = new Map<number, number>();
const sessions: Subscriber[] = [];
let lastError = '';

const hooks: SessionHooks = {
  delivery(seq, sentUs, receivedUs) {
    if (measuring) receivedInWindow++;
    if (seq >= fromSeq && seq <= toSeq) {
      received++;
      hist.record(receivedUs - sentUs);
    }
    if (expectedPerBatch === 0) return;
    const n = (perBatch.get(seq) ?? 0) + 1;
    if (n >= expectedPerBatch && expectedPerBatch > 0) {
      perBatch.delete(seq);
      send({ type: 'done', seq, at: receivedUs });
    } else {
      perBatch.set(seq, n);
    }
  },
  error(what) {
    errors++;
    lastError = what;
  },
};

/** Forget batches that will never complete (lost messages), so memory stays bounded. */
setInterval(() => {
  if (perBatch.size <= MAX_TRACKED_BATCHES) return;
  const seqs = [...perBatch.keys()].sort((a, b) => a - b);
  for (const seq of seqs.slice(0, seqs.length - MAX_TRACKED_BATCHES)) perBatch.delete(seq);
}, 1000).unref();

/** `n`: the subscriber's number over all load-client processes, which picks its channel or room (rooms). */
async function subscriber(setup: ClientSetup, agent: Agent | undefined, n: number): Promise<Subscriber> {
  const room = setup.channels ? n % setup.channels : -1;
  if (setup.server === 'sio' || setup.server === 'sio-redis') {
    const socket = await SioSubscriber.open(setup.port, setup.path, hooks);
    await socket.join(room >= 0 ? `r${room}` : 'fanout');
    return socket;
  }
  const session = await openSession({ transport: setup.transport, port: setup.port, path: setup.path }, hooks, agent);
  await session.handshake();
  await session.subscribe(room >= 0 ? `/bench/r/${room}` : CHANNEL);
  void session.connectLoop(() => resubscribes++);
  return session;
}

async function setUp(setup: ClientSetup): Promise<void> {
  setTimeout(() => process.exit(0), setup.lifetimeMs).unref();
  if (setup.batch !== undefined) BATCH = setup.batch;
  const agent = setup.transport === 'long-polling' ? HttpSession.agent() : undefined;
  const deadline = Date.now() + setup.setupTimeoutMs;
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < setup.subscribers && Date.now() < deadline) {
      const n = (setup.first ?? 0) + next++;
      try {
        sessions.push(await subscriber(setup, agent, n));
      } catch (err) {
        failed++;
        hooks.error(`setup: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SETUP_CONCURRENCY, setup.subscribers) }, worker));
  // Rooms: a batch goes to 10 of the channels, not to every subscriber; no `done` then.
  expectedPerBatch = setup.channels ? 0 : sessions.length * BATCH;
  // Let the first connects land (and, on express-bayeux, be answered and re-sent).
  await sleep(300);
  send({ type: 'ready', subscribers: sessions.length, failed });
}

process.on('message', (message: ToClient) => {
  switch (message.type) {
    case 'setup':
      void setUp(message);
      return;
    case 'start':
      hist.reset();
      received = 0;
      receivedInWindow = 0;
      errors = 0;
      fromSeq = message.fromSeq;
      toSeq = Infinity;
      cpuAtStart = process.cpuUsage();
      cpuInWindow = { user: 0, system: 0 };
      measuring = true;
      return;
    case 'stop':
      measuring = false;
      toSeq = message.toSeq;
      cpuInWindow = process.cpuUsage(cpuAtStart);
      return;
    case 'report': {
      const cpu = cpuInWindow;
      if (errors > 0) console.error(`load client: ${errors} error(s), last: ${lastError}`);
      send({
        type: 'report',
        received,
        receivedInWindow,
        hist: hist.toJSON(),
        cpuUser: cpu.user,
        cpuSystem: cpu.system,
        errors,
        resubscribes,
      });
      return;
    }
    case 'status': {
      let connecting = 0;
      for (const s of sessions) if (s.connecting) connecting++;
      send({ type: 'status', sessions: sessions.length, connecting, errors });
      return;
    }
    case 'exit':
      for (const s of sessions) s.close();
      process.exit(0);
  }
});

process.on('disconnect', () => process.exit(0));
