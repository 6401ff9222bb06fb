/**
 * The sessions this node holds: those created, touched or taken here. It
 * keeps a copy of each (local-session.ts, `LocalSession`) fed by the logs it follows and by
 * the session's box, rebuilds that copy from Redis when it takes a session
 * over (its positions, then the logs after them), answers takes from it,
 * and hears on its node channel what other nodes did to its sessions.
 */
import { EngineUnavailableError, type TakeResult } from '../engine.js';
import { list, text } from './replies.js';
import { MAX_PAGES, PAGE } from './scan.js';
import { LocalSession, makeEntry, SETTLED, type Entry } from './local-session.js';
import { compareIds, type Keys } from './keys.js';
import { entryOf, type FanOut, type PatternLogs } from './log.js';
import { NodeMessage, SessionKey, SessionStatus } from './lua/contract.js';
import { Scripts } from './lua/index.js';
import { pairs, parseRecordTake, parseTouchOrAdopt, recordTakeArgs, RecordTakeStatus, touchOrAdoptArgs, type TouchOrAdoptReply, type TouchState } from './lua/session.js';
import type { CallOrder } from './order.js';
import type { LazyPositions } from './positions.js';
import type { ExpiryReports } from './expiry.js';
import type { Runner } from './runner.js';
import type { SessionScripts } from './session-scripts.js';
import type { EngineSettings } from './settings.js';
import type { Wakes } from './wakes.js';

/** The parts the local sessions use, each a named class (engine.ts builds them). */
export interface LocalSessionsParts {
  readonly runner: Runner;
  readonly keys: Keys;
  /** Session scripts (ARGV: node channel prefix, id, then the script's). */
  readonly scripts: SessionScripts;
  readonly logs: PatternLogs;
  readonly order: CallOrder;
  readonly wakes: Wakes;
  readonly positions: LazyPositions;
  readonly settings: EngineSettings;
  /** Where the expiries scripts report go. */
  readonly expiry: ExpiryReports;
  readonly nodeId: string;
}

/** Hands a followed log's entries to the sessions held here, and wakes those that got something (PatternLogs' `FanOut`). */
export class SessionFanOut implements FanOut {
  readonly #settings: EngineSettings;
  readonly #wakes: Wakes;

  constructor(settings: EngineSettings, wakes: Wakes) {
    this.#settings = settings;
    this.#wakes = wakes;
  }

  fanOut(sessions: LocalSession | ReadonlySet<LocalSession>, pattern: string, entries: readonly Entry[]): void {
    const limits = this.#settings.queue;
    const wakes = this.#wakes;
    if (!(sessions instanceof Set)) {
      // A channel's lone subscriber (the common case): no iterator.
      const session = sessions as LocalSession;
      if (session.applyLog(pattern, entries, limits)) wakes.session(session);
      return;
    }
    for (const session of sessions as ReadonlySet<LocalSession>) if (session.applyLog(pattern, entries, limits)) wakes.session(session);
  }
}

/** Bound on the ids remembered in LocalSessions.#strays. */
const MAX_STRAYS = 10_000;

/**
 * How long a session held here must still have before its deadline for
 * its local copy to be trusted without Redis (a lazy take, `exists`): a
 * session closer to expiry asks Redis, which may have expired it already.
 */
export const LOCAL_TRUST_MS = 1000;

export class LocalSessions {
  readonly #sessions = new Map<string, LocalSession>();
  /**
   * Sessions an `s` or `u` came for before this node had their copy at
   * that generation: this node may be taking the session over, with the
   * touch's answer (its subscriptions as they were) not read yet. Their
   * next load reads the subscriptions again instead of using the answer's.
   */
  readonly #strays = new Set<string>();
  readonly #c: LocalSessionsParts;

  constructor(parts: LocalSessionsParts) {
    this.#c = parts;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(clientId: string): LocalSession | undefined {
    return this.#sessions.get(clientId);
  }

  /** A session created here. */
  created(clientId: string, ack: boolean, deadline: number): void {
    this.#sessions.set(clientId, new LocalSession(clientId, ack, 1, 0, '0-0', deadline));
  }

  /** A touch script answered (live): keep, load or adopt the session here. */
  async touched(clientId: string, reply: TouchOrAdoptReply, local: LocalSession | undefined, deadline: number): Promise<void> {
    const gen = reply.gen;
    if (reply.state) await this.#load(clientId, gen, reply.state, deadline);
    else if (local && local.gen === gen && !local.gone) local.deadline = deadline;
    else await this.#adopt(clientId, deadline);
  }

  /** A subscription was added (by this node; `gen` the holder's generation then). */
  subscribed(clientId: string, gen: number, pattern: string, position: string): void {
    const session = this.#sessions.get(clientId);
    if (session && session.gen === gen) this.#catchUp(session, pattern, position);
  }

  unsubscribed(clientId: string, pattern: string): void {
    const session = this.#sessions.get(clientId);
    if (session) this.#unfollow(session, pattern);
  }

  /** A deliver to a session this node holds was appended to its box after `prev`. */
  async delivered(clientId: string, prev: string, entry: Entry): Promise<void> {
    const session = this.#sessions.get(clientId);
    if (session) await this.#boxEntry(session, prev, entry);
  }

  /**
   * Whether a session script found the session live. Not a pure check:
   * for any other status it forgets the local copy and, when the script
   * expired the session, reports the expiry (and buries its grave).
   */
  checkLive(clientId: string, status: number): boolean {
    if (status === SessionStatus.Live) return true;
    this.forget(clientId);
    if (status === SessionStatus.Expired || status === SessionStatus.ExpiredWithGrave) {
      void this.#c.expiry.expired(clientId, status === SessionStatus.ExpiredWithGrave);
    }
    return false;
  }

  wake(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session) this.#c.wakes.session(session);
    else this.#c.wakes.id(clientId);
  }

  /** Stop holding a session here. */
  forget(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (!session) return;
    session.gone = true;
    this.#sessions.delete(clientId);
    for (const pattern of session.patterns()) this.#c.logs.unfollow(session, pattern);
  }

  /** Forget the sessions nobody touched since `before` (ms since the epoch). */
  forgetIdle(before: number): void {
    for (const [id, session] of this.#sessions) if (session.deadline < before) this.forget(id);
  }

  /** The engine closes. */
  clear(): void {
    for (const session of this.#sessions.values()) session.gone = true;
    this.#sessions.clear();
    this.#strays.clear();
  }

  // ------------------------------------------------------------------------- takes

  take(clientId: string, ack: number | undefined): Promise<TakeResult | null> {
    return this.#take(clientId, ack, 0);
  }

  /**
   * The WebSocket pushes of a tick. A session held here without acks is
   * taken from memory, without a promise per session: its new positions
   * are written by the next flush (positions.ts).
   */
  async takeMany(clientIds: readonly string[]): Promise<Array<TakeResult | null>> {
    const results = new Array<TakeResult | null>(clientIds.length);
    const until = Date.now() + LOCAL_TRUST_MS;
    let waiting: Promise<unknown>[] | undefined;
    for (let i = 0; i < clientIds.length; i++) {
      const id = clientIds[i] as string;
      const session = this.#sessions.get(id);
      const taken = session && session.takes === 0 ? this.#takeLazily(session, until) : undefined;
      if (taken) results[i] = taken;
      else (waiting ??= []).push(this.#take(id, undefined, 0, true).then((result) => (results[i] = result)));
    }
    if (waiting) await Promise.all(waiting);
    return results;
  }

  async #take(clientId: string, ack: number | undefined, attempt: number, push = false): Promise<TakeResult | null> {
    let found = this.#sessions.get(clientId);
    if (push && found && found.takes === 0) {
      // The common case, a WebSocket push: from memory, without waiting for anything.
      const result = this.#takeLazily(found, Date.now() + LOCAL_TRUST_MS);
      if (result) return result;
    }
    if (!found || found.gone) {
      found = (await this.#adopt(clientId)) ?? undefined;
      if (!found) return null;
    }
    const session = found;
    const { logs, runner } = this.#c;
    session.takes++;
    const run = session.lock.then(async (): Promise<TakeResult | null | 'stale'> => {
      await session.ready;
      await logs.settled(session.patterns());
      if (session.gone) return 'stale';
      const lazy = push && !session.ack && session.deadline > Date.now() + LOCAL_TRUST_MS && runner.healthy;
      this.#advance(session);
      const prepared = session.prepare(ack, this.#c.settings.queue, lazy);
      if (lazy) {
        session.commit(prepared);
        this.#c.positions.add(session);
        return { messages: prepared.messages, dropped: prepared.dropped };
      }
      const status = parseRecordTake(await this.#c.scripts.run(Scripts.recordTake, clientId, recordTakeArgs(session.gen, prepared.batch, prepared.writes)));
      if (status === RecordTakeStatus.StaleGeneration) return 'stale';
      if (status !== RecordTakeStatus.Recorded) {
        this.forget(clientId);
        this.checkLive(clientId, status);
        return null;
      }
      if (session.gone) return 'stale';
      session.commit(prepared);
      const result: TakeResult = { messages: prepared.messages, dropped: prepared.dropped };
      if (prepared.batch !== undefined) result.batch = prepared.batch;
      return result;
    });
    session.lock = run.catch(() => undefined).finally(() => {
      // No take is chained after this one: the next may start from a shared settled promise.
      if (--session.takes === 0) session.lock = SETTLED;
    });
    const result = await run;
    if (result !== 'stale') return result;
    if (this.#sessions.get(clientId) === session) this.forget(clientId);
    if (attempt >= 2) throw new EngineUnavailableError(`Redis engine: session ${clientId.slice(0, 4)}… keeps moving between nodes`);
    return this.#take(clientId, ack, attempt + 1, push);
  }

  /**
   * A push's take of a session held here, ready and without acks, that
   * lives past `until` (ms); undefined when it must go the long way.
   */
  #takeLazily(session: LocalSession, until: number): TakeResult | undefined {
    if (session.gone || session.ack || session.loads > 0 || session.deadline <= until || !this.#c.runner.healthy) return undefined;
    if (this.#c.logs.busy(session.patterns())) return undefined;
    this.#advance(session);
    const result = session.takeLazily(this.#c.settings.queue);
    this.#c.positions.add(session);
    return result;
  }

  /**
   * With shard logs: the session has every entry this node applied (it is
   * not loading or catching up), so its channels' positions move up to
   * the shard's last, even those that got nothing: a take writes them, and
   * a node that takes the session over reads the shard from there, not
   * from where a quiet channel's subscription started.
   */
  #advance(session: LocalSession): void {
    if (session.pending !== undefined || session.loads > 0) return;
    const last = this.#c.logs.shardLast;
    if (last !== undefined) session.advanceChannels(last);
  }

  // ------------------------------------------------------------------------- taking a session over

  /** Take the session over: this node becomes its holder and rebuilds its queue. */
  async #adopt(clientId: string, deadline?: number): Promise<LocalSession | null> {
    const reply = parseTouchOrAdopt(await this.#c.scripts.run(Scripts.touchOrAdopt, clientId, touchOrAdoptArgs('-', this.#c.nodeId, true, PAGE, this.#c.positions.seenPrefix)));
    if (!this.checkLive(clientId, reply.status)) return null;
    // A live TOUCH_OR_ADOPT with full = '1' always sends the state.
    return this.#load(clientId, reply.gen, reply.state as TouchState, deadline ?? this.#sessions.get(clientId)?.deadline ?? Date.now() + this.#c.settings.retention);
  }

  /** Rebuild a session's queue from a touch reply: its positions, then the logs after them. */
  async #load(clientId: string, gen: number, state: TouchState, deadline: number): Promise<LocalSession> {
    const { keys, logs, runner } = this.#c;
    // A subscribe or unsubscribe on another node may have come after the touch's answer was made.
    const reread = this.#strays.delete(clientId);
    this.forget(clientId);
    const session = new LocalSession(clientId, state.ack, gen, state.batch, state.boxAcked, deadline);
    this.#sessions.set(clientId, session);
    session.loads++;
    session.pending = [];
    const loading = (async () => {
      try {
        const base = `${keys.bucket(clientId)}:${clientId}`;
        const subs = !reread && state.subs ? state.subs : await this.#scan(base + SessionKey.Subs);
        const sent = !session.ack ? [] : !reread && state.sent ? state.sent : await this.#scan(base + SessionKey.Sent);
        for (const [pattern, position] of subs) session.follow(pattern, position);
        if (session.ack) {
          session.sentIs('', state.boxSent);
          for (const [pattern, position] of sent) session.sentIs(pattern, position);
        }
        await Promise.all(subs.map(([pattern]) => logs.follow(session, pattern)));
        const box = base + SessionKey.Box;
        // In call order with publishes and delivers: those answered before these reads are in session.pending first.
        const [boxEntries, read] = await this.#c.order.ordered(Promise.all([
          runner.command(box, ['XRANGE', box, `(${session.box.id}`, '+'], true).then((r) => list(r).map((item) => entryOf('', item))),
          logs.readEach(subs),
        ]));
        this.#applyRead(session, mergeLogs([boxEntries, ...read]));
        if (session.ack && session.batch > 0) {
          // What was sent in the last batch goes first, as it was sent.
          const sentFirst = session.queue.filter((e) => compareIds(e.id, session.sentOf(e.src) ?? '0-0') <= 0);
          const rest = session.queue.filter((e) => compareIds(e.id, session.sentOf(e.src) ?? '0-0') > 0);
          session.queue = sentFirst.concat(rest);
          session.sent = sentFirst.length;
        }
      } finally {
        this.#loaded(session);
      }
    })();
    const ready = loading.catch(() => undefined);
    session.ready = ready;
    try {
      await loading;
    } catch (err) {
      this.forget(clientId);
      throw runner.unavailable(err);
    }
    // Settled, and no catch-up came after it: the shared settled promise does the same.
    if (session.ready === ready) session.ready = SETTLED;
    return session;
  }

  /**
   * Apply what a catch-up read from the logs, before what was announced
   * meanwhile (session.pending): a source's read entries are applied up to
   * the first one that was also announced, which then comes in the order
   * it was announced, after the operations that came before it.
   */
  #applyRead(session: LocalSession, entries: readonly Entry[]): void {
    const announced = new Set<string>();
    for (const entry of session.pending ?? []) announced.add(`${entry.src} ${entry.id}`);
    const stopped = new Set<string>();
    const last = new Map<string, Entry>();
    const limits = this.#c.settings.queue;
    for (const entry of entries) {
      if (stopped.has(entry.src)) continue;
      if (announced.has(`${entry.src} ${entry.id}`)) {
        stopped.add(entry.src);
        continue;
      }
      session.apply(entry, limits, true);
      last.set(entry.src, entry);
    }
    for (const [src, entry] of last) if (src !== '') this.#c.logs.caughtUp(src, entry, session);
  }

  /** A hash's fields and values, a page at a time. */
  async #scan(key: string): Promise<ReadonlyArray<readonly [string, string]>> {
    const result: Array<[string, string]> = [];
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = list(await this.#c.runner.command(key, ['HSCAN', key, cursor, 'COUNT', String(PAGE)], true));
      cursor = text(reply[0]);
      result.push(...pairs(reply[1]));
      if (cursor === '0') break;
    }
    return result;
  }

  /** A load or catch-up ended: apply what arrived meanwhile. */
  #loaded(session: LocalSession): void {
    session.loads--;
    if (session.loads > 0) return;
    const pending = session.pending ?? [];
    session.pending = undefined;
    let reached = false;
    const limits = this.#c.settings.queue;
    for (const entry of pending) if (session.apply(entry, limits)) reached = true;
    if (reached || session.queue.length > 0) this.#c.wakes.session(session);
  }

  /** A held session follows a new pattern from `position`: listen, then read what the log got since. */
  #catchUp(session: LocalSession, pattern: string, position: string): void {
    const { logs } = this.#c;
    session.follow(pattern, position);
    // SUBSCRIBE_COMMIT stopped it following this node's seen: it joins again once it keeps up with this one too.
    this.#c.positions.subscribed(session);
    session.loads++;
    session.pending ??= [];
    const previous = session.ready;
    const ready = (async () => {
      try {
        await logs.follow(session, pattern);
        const entries = await this.#c.order.ordered(logs.read(pattern, position));
        await previous;
        this.#applyRead(session, entries);
      } catch (err) {
        // Start over from Redis on the next take: the session's copy here may miss messages.
        this.#c.runner.failed('following a pattern', err);
        this.forget(session.id);
      } finally {
        this.#loaded(session);
      }
    })();
    session.ready = ready;
    // Once settled, and if no catch-up came after it, the shared settled promise does the same.
    void ready.then(() => {
      if (session.ready === ready) session.ready = SETTLED;
    });
  }

  #unfollow(session: LocalSession, pattern: string): void {
    session.unfollow(pattern);
    this.#c.logs.unfollow(session, pattern);
  }

  async #boxEntry(session: LocalSession, prev: string, entry: Entry): Promise<void> {
    const limits = this.#c.settings.queue;
    if (prev !== session.box.id && compareIds(prev, session.box.id) > 0 && !session.pending) {
      // Something was delivered before this that has not reached us yet: read it from the box.
      const box = `${this.#c.keys.bucket(session.id)}:${session.id}${SessionKey.Box}`;
      const items = list(await this.#c.runner.command(box, ['XRANGE', box, `(${session.box.id}`, entry.id], true));
      for (const item of items) if (session.apply(entryOf('', item), limits)) this.#c.wakes.session(session);
      return;
    }
    if (session.apply(entry, limits)) this.#c.wakes.session(session);
  }

  // ------------------------------------------------------------------------- notifications

  /** `x <id>` gone; `d <id> <gen>` taken over; `b <id> <prev> <sid> <message>` delivered; `s <id> <gen> <pos> <pattern>`; `u <id> <gen> <pattern>` */
  nodeMessage(message: string): void {
    const kind = message.slice(0, 1);
    const idEnd = message.indexOf(' ', 2);
    const id = idEnd < 0 ? message.slice(2) : message.slice(2, idEnd);
    const rest = idEnd < 0 ? '' : message.slice(idEnd + 1);
    const session = this.#sessions.get(id);
    switch (kind) {
      case NodeMessage.Gone:
        this.forget(id);
        this.wake(id);
        return;
      case NodeMessage.Moved:
        if (session && session.gen < Number(rest)) this.forget(id);
        return;
      case NodeMessage.Boxed: {
        if (!session) return;
        const a = rest.indexOf(' ');
        const b = rest.indexOf(' ', a + 1);
        if (a < 0 || b < 0) return;
        const entry = makeEntry('', rest.slice(a + 1, b), rest.slice(b + 1), '', undefined);
        this.#boxEntry(session, rest.slice(0, a), entry).catch((err: unknown) => this.#c.runner.failed('reading a box', err));
        return;
      }
      case NodeMessage.Subscribed: {
        const [gen, position, pattern] = rest.split(' ');
        if (session && pattern && position && session.gen === Number(gen) && !session.follows(pattern)) this.#catchUp(session, pattern, position);
        else if (!session || session.gen < Number(gen)) this.#stray(id);
        return;
      }
      case NodeMessage.Unsubscribed: {
        const [gen, pattern] = rest.split(' ');
        if (session && pattern && session.gen === Number(gen)) this.#unfollow(session, pattern);
        else if (!session || session.gen < Number(gen)) this.#stray(id);
        return;
      }
    }
  }

  #stray(clientId: string): void {
    if (this.#strays.size >= MAX_STRAYS) this.#strays.delete(this.#strays.values().next().value as string);
    this.#strays.add(clientId);
  }

  /**
   * The Pub/Sub connection came back. Node messages sent to this node
   * meanwhile are lost: a subscribe, unsubscribe or deliver made on
   * another node, a takeover. So the copies here may be wrong (a copy that
   * missed an `s` would never hear of that channel): every held session is
   * forgotten and woken, and the take that answers the wake rebuilds it
   * from Redis (#adopt). Positions lazy takes left unwritten are flushed
   * first.
   */
  resubscribed(): void {
    void this.#c.positions.flush();
    const now = Date.now();
    const woken: string[] = [];
    for (const [id, session] of [...this.#sessions]) {
      if (session.deadline > now) woken.push(id);
      this.forget(id);
    }
    this.#c.logs.resync();
    for (const id of woken) this.#c.wakes.id(id);
  }
}

/**
 * Logs read for a load (the box, each followed log), merged: each log's
 * entries keep their order; between logs the earlier millisecond first,
 * and in the same millisecond one node's publishes in the order it made
 * them (its publish ids count up; a stream id's sequence says nothing
 * across logs, a shard's least of all).
 */
export function mergeLogs(logs: ReadonlyArray<readonly Entry[]>): Entry[] {
  const lists = logs.filter((l) => l.length > 0);
  if (lists.length <= 1) return lists.length === 0 ? [] : [...(lists[0] as readonly Entry[])];
  const at = lists.map(() => 0);
  const out: Entry[] = [];
  for (;;) {
    let best = -1;
    let head: Entry | undefined;
    for (let i = 0; i < lists.length; i++) {
      const entry = (lists[i] as readonly Entry[])[at[i] as number];
      if (entry !== undefined && (head === undefined || comesBefore(entry, head))) {
        best = i;
        head = entry;
      }
    }
    if (head === undefined) return out;
    out.push(head);
    at[best] = (at[best] as number) + 1;
  }
}

function comesBefore(a: Entry, b: Entry): boolean {
  if (a.ms !== b.ms) return a.ms < b.ms;
  const dot = a.pub.lastIndexOf('.');
  if (dot > 0 && b.pub.length > dot && b.pub.charCodeAt(dot) === 46 && a.pub.startsWith(b.pub.slice(0, dot + 1))) {
    return parseInt(a.pub.slice(dot + 1), 36) < parseInt(b.pub.slice(dot + 1), 36);
  }
  return false;
}
