/**
 * The presence benchmark's session process (bench/presence.ts): opens
 * WebSocket sessions that say who they are in the handshake's `ext.user`,
 * each with its connect loop, then subscribes them on the parent's word
 * (with or without `ext.presence`), either as fast as a number in flight
 * allows or paced (so many every tick, not waiting for replies). Counts
 * the presence notices every session receives without parsing them: a
 * notice message is one `"events":[`, a join one `"event":"join"`.
 */
import { nowUs, sleep } from './common.js';
import { openSession, type Session } from './wire.js';

/** parent → this process */
export type ToLoad =
  /** Open `n` sessions, users `<user><first + i>` ('' user: anonymous), `concurrency` handshakes in flight. */
  | { type: 'open'; port: number; path: string; n: number; user: string; first: number; concurrency: number }
  /**
   * Subscribe sessions [from, to) (of those opened, in order) to `channel`, or with `rooms`, session i to
   * `channel + (i % rooms)`; `ext`: with `ext.presence`. Paced: `perTick` subscribes sent every `tickMs`
   * without waiting; else `concurrency` in flight.
   */
  | { type: 'subscribe'; from: number; to: number; channel: string; rooms?: number; ext: boolean; concurrency?: number; perTick?: number; tickMs?: number }
  /** Zero every session's notice counts. */
  | { type: 'reset' }
  | { type: 'counts' }
  | { type: 'exit' };

/** this process → parent */
export type FromLoad =
  | { type: 'opened'; sessions: number; failed: number; ms: number }
  /** `firstAt`/`lastAt`: the first subscribe sent, the last reply in (µs, nowUs). */
  | { type: 'subscribed'; ok: number; failed: number; firstAt: number; lastAt: number; cpu: number; error?: string }
  /**
   * Per session (in order): notice messages and join events received since the last reset;
   * `lastEventAt`: when the last notice arrived (µs, nowUs; 0: none).
   */
  | { type: 'counts'; messages: number[]; events: number[]; snapshotUsers: number[]; lastEventAt: number; cpu: number };

if (!process.send) {
  console.error('presence-load.js is started by bench/presence.js over IPC');
  process.exit(2);
}
const send = (m: FromLoad): void => void process.send?.(m);

/** A session and the notices it received since the last reset. */
interface Entry {
  session: Session;
  messages: number;
  events: number;
  /** Users present in the snapshot of its subscribe's reply (`count.users`; NaN: none). */
  snapshotUsers: number;
}
const sessions: Entry[] = [];
let lastEventAt = 0;
let errors = 0;
let lastError = '';

/** This process's CPU time so far, µs. */
function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function count(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

async function open(m: Extract<ToLoad, { type: 'open' }>): Promise<void> {
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < m.n) {
      const i = next++;
      const counts = { messages: 0, events: 0, snapshotUsers: NaN };
      try {
        const session = await openSession({ transport: 'websocket', port: m.port, path: m.path }, {
          delivery() {},
          error(what) {
            errors++;
            lastError = what;
          },
          frame(text, at) {
            if (!text.includes('"events":[')) return;
            counts.messages += count(text, '"events":[');
            counts.events += count(text, '"event":"join"');
            lastEventAt = at;
          },
        });
        await session.handshake(m.user ? { user: `${m.user}${m.first + i}` } : undefined);
        void session.connectLoop(() => undefined);
        slots[i] = Object.assign(counts, { session });
      } catch (err) {
        failed++;
        errors++;
        lastError = (err as Error).message;
      }
    }
  };
  // Sessions keep their order (a slot per index) whatever order they open in.
  const slots: Array<Entry | undefined> = new Array<Entry | undefined>(m.n);
  await Promise.all(Array.from({ length: Math.min(m.concurrency, m.n) }, worker));
  for (const s of slots) if (s) sessions.push(s);
  // Let the first connects land.
  await sleep(200);
  send({ type: 'opened', sessions: sessions.length, failed, ms: performance.now() - t0 });
}

async function subscribe(m: Extract<ToLoad, { type: 'subscribe' }>): Promise<void> {
  const targets = sessions.slice(m.from, m.to);
  const channelOf = (i: number): string => (m.rooms ? `${m.channel}${(m.from + i) % m.rooms}` : m.channel);
  const ext = m.ext ? { presence: true } : undefined;
  let ok = 0;
  let failed = 0;
  let lastAt = 0;
  let error: string | undefined;
  const one = (i: number): Promise<void> =>
    (targets[i] as Entry).session.subscribe(channelOf(i), ext).then(
      (reply) => {
        const snapshot = (reply['ext'] as { presence?: { count?: { users?: number } } } | undefined)?.presence;
        if (snapshot) (targets[i] as Entry).snapshotUsers = snapshot.count?.users ?? NaN;
        ok++;
        lastAt = nowUs();
      },
      (err: Error) => {
        failed++;
        lastAt = nowUs();
        error ??= err.message;
      },
    );
  const firstAt = nowUs();
  if (m.perTick && m.tickMs) {
    const all: Array<Promise<void>> = [];
    for (let i = 0; i < targets.length; ) {
      const tickStart = performance.now();
      for (let k = 0; k < m.perTick && i < targets.length; k++, i++) all.push(one(i));
      await sleep(Math.max(0, m.tickMs - (performance.now() - tickStart)));
    }
    await Promise.all(all);
  } else {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length) await one(next++);
    };
    await Promise.all(Array.from({ length: Math.min(m.concurrency ?? 64, targets.length) }, worker));
  }
  send({ type: 'subscribed', ok, failed, firstAt, lastAt, cpu: cpuNow(), ...(error ? { error } : {}) });
}

process.on('message', (m: ToLoad) => {
  switch (m.type) {
    case 'open':
      void open(m);
      return;
    case 'subscribe':
      void subscribe(m);
      return;
    case 'reset':
      for (const e of sessions) {
        e.messages = 0;
        e.events = 0;
        e.snapshotUsers = NaN;
      }
      lastEventAt = 0;
      return;
    case 'counts':
      if (errors > 0) console.error(`presence load: ${errors} error(s), last: ${lastError}`);
      errors = 0;
      send({ type: 'counts', messages: sessions.map((e) => e.messages), events: sessions.map((e) => e.events), snapshotUsers: sessions.map((e) => e.snapshotUsers), lastEventAt, cpu: cpuNow() });
      return;
    case 'exit':
      for (const e of sessions) e.session.close();
      process.exit(0);
  }
});

process.on('disconnect', () => process.exit(0));
// Never outlive a run.
setTimeout(() => process.exit(0), 20 * 60_000).unref();
