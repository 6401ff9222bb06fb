/**
 * Presence by user (issue #21) on the memory engine: `identify`, the
 * `presence` option, `join`/`leave` events, `ext.presence` snapshots and
 * notices on the wire and in the package client, addressing a user, and
 * the refusals.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { bayeux, BayeuxError, type BayeuxOptions, type Message } from '../lib/index.js';
import type { BayeuxClient, PresentUser } from '../lib/client/node.js';
import { testClients } from './helpers/clients.js';
import { handshake, nextEvent, post, startServer, type TestServer } from './helpers/http-server.js';
import { type Msg, openWire, type Wire, wireSession } from './helpers/wire.js';
import { startSwitchProxy } from './helpers/tcp-proxy.js';
import { sleep, waitFor } from './helpers/wait.js';

const { client } = testClients();

/** Who a handshake says it is: `ext.user` (and `ext.name` as info), as a token check would. */
const identify: BayeuxOptions['identify'] = (handshake: Message) => {
  const ext = handshake.ext as { user?: string; name?: string } | undefined;
  if (!ext?.user) return undefined;
  return ext.name === undefined ? ext.user : { id: ext.user, info: { name: ext.name } };
};

const OPTIONS: BayeuxOptions = { identify, presence: ['/chat/**', '/rooms/*'] };

async function setup(t: TestContext, options: BayeuxOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...OPTIONS, ...options });
  t.after(() => server.close());
  return server;
}

/** A package client that handshakes as `user` (with a display name), over `kind`. */
function userClient(server: TestServer, user: string | undefined, kind: 'websocket' | 'long-polling' = 'websocket'): BayeuxClient {
  return client(server.url, {
    transports: [kind],
    extensions: [{
      outgoing: (m) => (m.channel === '/meta/handshake' && user !== undefined ? { ...m, ext: { ...m.ext, user, name: user.toUpperCase() } } : m),
    }],
  });
}

/** Every join and leave event of a server, in order. */
function events(server: TestServer): string[] {
  const seen: string[] = [];
  server.cometd.on('join', (channel, user, info, clientId) => {
    assert.equal(typeof clientId, 'string');
    seen.push(`join ${channel} ${user ?? '-'} ${JSON.stringify(info) ?? '-'}`);
  });
  server.cometd.on('leave', (channel, user) => seen.push(`leave ${channel} ${user ?? '-'}`));
  return seen;
}

const noop = () => undefined;
let rooms = 0;
const fresh = () => `/chat/r${++rooms}`;

describe('presence by user (memory engine)', () => {
  it('one user in three tabs: one join, one entry with three clients, no leave until the last tab goes', async (t) => {
    const server = await setup(t);
    const seen = events(server);
    const channel = fresh();
    const tabs = [userClient(server, 'alice'), userClient(server, 'alice', 'long-polling'), userClient(server, 'alice')];
    for (const tab of tabs) await tab.subscribe(channel, noop);
    const present = await server.cometd.presence(channel);
    assert.equal(present.length, 1);
    assert.equal(present[0]?.user, 'alice');
    assert.deepEqual(present[0]?.info, { name: 'ALICE' });
    assert.deepEqual([...(present[0]?.clients ?? [])].sort(), tabs.map((c) => c.clientId).sort());
    assert.deepEqual(await server.cometd.presenceCount(channel), { users: 1, clients: 3 });
    assert.deepEqual(await server.cometd.sessionsOf('alice').then((ids) => ids.sort()), tabs.map((c) => c.clientId).sort());
    await waitFor(() => seen.length === 1, { timeout: 2000, what: 'the join' });
    assert.deepEqual(seen, [`join ${channel} alice {"name":"ALICE"}`]);
    await tabs[0]?.unsubscribe(channel);
    await tabs[1]?.disconnect();
    await sleep(50);
    assert.deepEqual(seen, [`join ${channel} alice {"name":"ALICE"}`], 'closing two of three tabs is not a leave');
    assert.deepEqual(await server.cometd.presenceCount(channel), { users: 1, clients: 1 });
    await tabs[2]?.disconnect();
    await waitFor(() => seen.length === 2, { timeout: 2000, what: 'the leave' });
    assert.deepEqual(seen[1], `leave ${channel} alice`);
    assert.deepEqual(await server.cometd.presence(channel), []);
    assert.deepEqual(await server.cometd.presenceCount(channel), { users: 0, clients: 0 });
  });

  it('anonymous sessions are one entry each; a wildcard subscription and a channel without presence are not tracked', async (t) => {
    const server = await setup(t);
    const seen = events(server);
    const channel = fresh();
    const a = userClient(server, undefined);
    const b = userClient(server, undefined);
    await a.subscribe(channel, noop);
    await b.subscribe(channel, noop);
    await a.subscribe('/chat/*', noop);
    await a.subscribe('/other/x', noop);
    const present = await server.cometd.presence(channel);
    assert.deepEqual(present.map((p) => p.user), [undefined, undefined]);
    assert.deepEqual(present.map((p) => p.clients.length), [1, 1]);
    assert.deepEqual(await server.cometd.presenceCount(channel), { users: 2, clients: 2 });
    await waitFor(() => seen.length === 2, { timeout: 2000, what: 'two joins' });
    assert.deepEqual(seen, [`join ${channel} - -`, `join ${channel} - -`]);
    await assert.rejects(server.cometd.presence('/other/x'), (err: BayeuxError) => err.toString() === '404:/other/x:no_presence');
    await assert.rejects(server.cometd.presenceCount('/chat/*'), (err: BayeuxError) => err.code === 405);
  });

  for (const kind of ['websocket', 'long-polling'] as const) {
    it(`a package client with presence: true gets the snapshot, then join and leave notices (${kind})`, async (t) => {
      const server = await setup(t);
      const channel = fresh();
      const bob = userClient(server, 'bob');
      await bob.subscribe(channel, noop);
      const watcher = userClient(server, 'carol', kind);
      const joins: Array<[string, PresentUser]> = [];
      const leaves: Array<[string, unknown]> = [];
      watcher.on('join', (ch, user) => joins.push([ch, user]));
      watcher.on('leave', (ch, user) => leaves.push([ch, user]));
      const got: unknown[] = [];
      await watcher.subscribe(channel, (data) => got.push(data), { presence: true });
      const first = await watcher.presence(channel);
      assert.deepEqual(sortUsers(first), [{ user: 'bob', info: { name: 'BOB' } }, { user: 'carol', info: { name: 'CAROL' } }]);
      const dave = userClient(server, 'dave');
      await dave.subscribe(channel, noop);
      await waitFor(() => joins.length === 1, { timeout: 3000, what: "dave's join" });
      assert.deepEqual(joins, [[channel, { user: 'dave', info: { name: 'DAVE' } }]]);
      await bob.disconnect();
      await waitFor(() => leaves.length === 1, { timeout: 3000, what: "bob's leave" });
      assert.deepEqual(leaves, [[channel, { user: 'bob' }]]);
      assert.deepEqual(sortUsers(await watcher.presence(channel)), [{ user: 'carol', info: { name: 'CAROL' } }, { user: 'dave', info: { name: 'DAVE' } }]);
      await server.cometd.publish(channel, 'hello');
      await waitFor(() => got.length === 1, { timeout: 3000, what: 'the message' });
      assert.deepEqual(got, ['hello'], 'notices never reach the handler');
    });
  }

  it('the package client: presence asked for on a channel already subscribed; refused on a channel without presence, the subscription stays', async (t) => {
    const server = await setup(t);
    const channel = fresh();
    const c = userClient(server, 'nia');
    const got: unknown[] = [];
    await c.subscribe(channel, (data) => got.push(data));
    await assert.rejects(c.presence(channel), TypeError);
    await c.subscribe(channel, noop, { presence: true });
    assert.deepEqual(await c.presence(channel), [{ user: 'nia', info: { name: 'NIA' } }]);
    await c.subscribe('/other/plain', (data) => got.push(data));
    await assert.rejects(c.subscribe('/other/plain', noop, { presence: true }), (err: BayeuxError) => err.code === 404);
    await assert.rejects(c.presence('/other/plain'), TypeError);
    await server.cometd.publish('/other/plain', 'still here');
    await server.cometd.publish(channel, 'and here');
    await waitFor(() => got.length === 2, { timeout: 3000, what: 'the messages' });
    assert.deepEqual([...got].sort(), ['and here', 'still here']);
    await assert.rejects(c.subscribe('/chat/*', noop, { presence: true }), TypeError);
  });

  it('the package client whose session expired while cut off subscribes again and reports who came and went meanwhile', async (t) => {
    // 1.5 s: the cut-off client expires while bob, cy and the watcher's next session, which go on connecting, do not (500 ms left a loaded machine little room).
    const server = await setup(t, { maxInterval: 1500, timeout: 2000 });
    const proxy = await startSwitchProxy(server.port);
    t.after(() => proxy.close());
    const channel = fresh();
    const bob = userClient(server, 'bob');
    await bob.subscribe(channel, noop);
    const watcher = client(`http://127.0.0.1:${proxy.port}/cometd`, {
      transports: ['websocket'],
      extensions: [{ outgoing: (m) => (m.channel === '/meta/handshake' ? { ...m, ext: { ...m.ext, user: 'wes' } } : m) }],
    });
    const seen: string[] = [];
    watcher.on('join', (_ch, u) => seen.push(`join ${u.user}`));
    watcher.on('leave', (_ch, u) => seen.push(`leave ${u.user}`));
    await watcher.subscribe(channel, noop, { presence: true });
    const first = watcher.clientId as string;
    const expired = nextEvent<[string, string]>(server, 'disconnect', (id, reason) => id === first && reason === 'timeout', 10_000);
    proxy.down();
    await expired;
    await bob.disconnect();
    const cy = userClient(server, 'cy');
    await cy.subscribe(channel, noop);
    proxy.up();
    await waitFor(() => seen.length === 2, { timeout: 10_000, what: `the differences (have ${seen.join(', ')})` });
    assert.deepEqual(seen.sort(), ['join cy', 'leave bob']);
    assert.notEqual(watcher.clientId, first);
    assert.deepEqual(sortUsers(await watcher.presence(channel)).map((u) => u.user), ['cy', 'wes']);
  });

  it('a client that did not ask gets no notices; one refused by the subscribe middleware gets no presence', async (t) => {
    const server = await setup(t);
    server.cometd.use('/chat/secret', (message, ctx, next) => {
      if (message.channel === '/meta/subscribe') return next(new BayeuxError(403, 'denied'));
      return next();
    });
    const channel = fresh();
    const { w, id } = await wire(server);
    const plain = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: channel });
    assert.equal(plain[0]?.['ext'], undefined, 'no snapshot without ext.presence');
    const refused = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/chat/secret', ext: { presence: true } });
    assert.equal(refused[0]?.['successful'], false);
    assert.equal(refused[0]?.['ext'], undefined);
    const other = userClient(server, 'erin');
    await other.subscribe(channel, noop);
    await other.subscribe('/chat/secret', noop).catch(noop);
    await server.cometd.publish(channel, 'only this');
    const got = await w.waitDelivered(1);
    await sleep(300);
    assert.deepEqual(w.delivered.map((m) => m['data']), ['only this']);
    assert.equal(got[0]?.['ext'], undefined);
  });

  it('ext.presence on the wire: the snapshot, then a batched notice per channel with anonymous sessions as tags', async (t) => {
    const server = await setup(t);
    const channel = fresh();
    const joinedAt: number[] = [];
    server.cometd.on('join', (ch) => ch === channel && joinedAt.push(Date.now()));
    const { w, id } = await wire(server);
    const reply = (await w.send({ channel: '/meta/subscribe', clientId: id, subscription: channel, ext: { presence: true } }))[0] as Msg;
    assert.equal(reply['successful'], true);
    const snapshot = reply['ext'].presence;
    assert.deepEqual(snapshot.count, { users: 1, clients: 1 });
    assert.equal(snapshot.users.length, 1);
    assert.match(snapshot.users[0].session, /^[\w-]{16}$/);
    assert.equal(JSON.stringify(snapshot).includes(id), false, 'no clientId is ever shown');
    const joiners = [userClient(server, 'f1'), userClient(server, 'f2'), userClient(server, undefined)];
    await Promise.all(joiners.map((c) => c.subscribe(channel, noop)));
    const notices = await w.waitDelivered(1);
    const events = () => w.delivered.flatMap((m) => (m['ext']?.presence?.events ?? []) as Array<Record<string, unknown>>);
    // Its own join too (harmless: the snapshot lists it, and a join of someone listed changes nothing).
    await waitFor(() => events().length >= 4, { timeout: 5000, what: `the 4 joins in notices (have ${JSON.stringify(w.delivered)})` });
    await sleep(250);
    const all = events();
    assert.equal(all.length, 4, JSON.stringify(w.delivered));
    // At most one notice per 100 ms (NOTICE_INTERVAL_MS): two when the joins came within 100 ms of each
    // other, one more per 100 ms a loaded machine spread them over.
    const span = Math.max(...joinedAt) - Math.min(...joinedAt);
    assert.equal(joinedAt.length, 4);
    assert.ok(w.delivered.length <= Math.floor(span / 100) + 2, `notices are batched: ${w.delivered.length} for joins over ${span} ms`);
    assert.equal(notices[0]?.['channel'], channel);
    assert.equal(notices[0]?.['data'], undefined);
    assert.deepEqual(all.filter((e) => e['user']).map((e) => e['user']).sort(), ['f1', 'f2']);
    assert.deepEqual(all.filter((e) => e['session']).map((e) => e['session'] === snapshot.users[0].session), [true, false]);
  });

  it('notices go through the outgoing hooks, like every message sent', async (t) => {
    const server = await setup(t);
    server.cometd.outgoing((message) => {
      if ((message.ext as { presence?: unknown } | undefined)?.presence !== undefined && message.channel !== '/meta/subscribe') {
        return { ...message, ext: { ...message.ext, stamped: true } };
      }
      return message;
    });
    const channel = fresh();
    const { w, id } = await wire(server);
    await w.send({ channel: '/meta/subscribe', clientId: id, subscription: channel, ext: { presence: true } });
    await userClient(server, 'hook').subscribe(channel, noop);
    await waitFor(() => w.delivered.some((m) => m['ext']?.presence?.events?.some((e: { user?: string }) => e.user === 'hook')), { timeout: 3000, what: 'the notice' });
    assert.ok(w.delivered.filter((m) => m['ext']?.presence).every((m) => m['ext'].stamped === true));
  });

  it('refuses ext.presence on a wildcard, a list, or a channel without presence, and a value other than true', async (t) => {
    const server = await setup(t);
    const { w, id } = await wire(server);
    const refusal = async (subscription: unknown, presence: unknown = true) =>
      ((await w.send({ channel: '/meta/subscribe', clientId: id, subscription, ext: { presence } }))[0] as Msg)['error'];
    assert.equal(await refusal('/chat/*'), '400:/chat/*:presence_needs_one_channel');
    assert.equal(await refusal(['/chat/a', '/chat/b']), '400:/chat/a /chat/b:presence_needs_one_channel');
    assert.equal(await refusal('/other/a'), '404:/other/a:no_presence');
    assert.equal(await refusal('/chat/a', 'yes'), '400::ext.presence must be true');
    assert.deepEqual(await server.cometd.subscribers('/chat/a'), [], 'nothing was subscribed');
  });
});

describe('a burst of joins', () => {
  it('2,000 users join one room at once: watchers get a few batched notices listing all 2,000, and the server keeps serving', async (t) => {
    // The joiners never connect: a long maxInterval keeps them all present however long a loaded machine takes.
    const server = await setup(t, { maxHandshakeRate: 0, maxInterval: 120_000 });
    const room = '/chat/burst';
    const watchers: Array<{ w: Wire; id: string }> = [];
    for (let i = 0; i < 10; i++) {
      const watcher = await wire(server, { user: `watcher${i}` });
      await watcher.w.send({ channel: '/meta/subscribe', clientId: watcher.id, subscription: room, ext: { presence: true } });
      watchers.push(watcher);
    }
    const bystander = await wire(server);
    await bystander.w.send({ channel: '/meta/subscribe', clientId: bystander.id, subscription: '/other/news' });
    const joins: string[] = [];
    server.cometd.on('join', (channel, user) => channel === room && joins.push(String(user)));
    const started = Date.now();
    const USERS = 2000;
    let next = 0;
    const worker = async () => {
      while (next < USERS) {
        const i = next++;
        const id = await handshake(server.url, { user: `u${i}` });
        const res = await post(server.url, [{ channel: '/meta/subscribe', clientId: id, subscription: room }]);
        assert.equal(res.json?.[0]?.successful, true);
      }
    };
    const burst = Promise.all(Array.from({ length: 40 }, worker));
    // During the burst, the server keeps delivering to others.
    await server.cometd.publish('/other/news', 'during');
    await bystander.w.waitDelivered(1, 10_000);
    await burst;
    const elapsed = Date.now() - started;
    await waitFor(() => joins.length === USERS, { timeout: 10_000, what: `${USERS} joins (have ${joins.length})` });
    assert.deepEqual(await server.cometd.presenceCount(room), { users: USERS + 10, clients: USERS + 10 });
    const joined = (w: Wire) => w.delivered.flatMap((m) => (m['ext']?.presence?.events ?? []) as Array<{ event: string; user?: string }>)
      .filter((e) => e.event === 'join' && e.user?.startsWith('u')).length;
    for (const { w } of watchers) await waitFor(() => joined(w) === USERS, { timeout: 10_000, what: `every join in the notices (have ${joined(w)})` });
    // At most one notice per 100 ms (NOTICE_INTERVAL_MS) per channel, however many joins.
    const bound = Math.ceil((Date.now() - started) / 100) + 2;
    for (const { w } of watchers) {
      const notices = w.delivered.filter((m) => m['ext']?.presence).length;
      assert.ok(notices <= bound, `${notices} notices for ${USERS} joins in ${elapsed} ms: at most ${bound}`);
    }
  });
});

describe('addressing a user', () => {
  it('deliverToUser reaches every tab; disconnectUser ends them all', async (t) => {
    const server = await setup(t);
    const tabs = [userClient(server, 'gus'), userClient(server, 'gus', 'long-polling')];
    const got: unknown[][] = [[], []];
    await Promise.all(tabs.map((c, i) => c.subscribe('/notes/gus', (data) => got[i]?.push(data))));
    const other = userClient(server, 'hal');
    const otherGot: unknown[] = [];
    await other.subscribe('/notes/gus', (data) => otherGot.push(data));
    assert.equal(await server.cometd.deliverToUser('gus', '/notes/gus', { n: 1 }), 2);
    await waitFor(() => got.every((g) => g.length === 1), { timeout: 3000, what: 'both tabs' });
    assert.deepEqual(otherGot, []);
    assert.equal(await server.cometd.deliverToUser('nobody', '/notes/x', 1), 0);
    // The tabs are told to handshake again and may be back under new ids: the old ones must be gone.
    const ids = tabs.map((c) => c.clientId as string);
    const ended = ids.map((id) => nextEvent(server, 'disconnect', (cid) => cid === id));
    assert.equal(await server.cometd.disconnectUser('gus'), 2);
    await Promise.all(ended);
    assert.deepEqual((await server.cometd.sessionsOf('gus')).filter((cid) => ids.includes(cid)), []);
    assert.equal((await server.cometd.sessionsOf('hal')).length, 1);
  });

  it('maxSessionsPerUser refuses the next handshake with 403 too_many_sessions and no retry', async (t) => {
    const server = await setup(t, { maxSessionsPerUser: 2 });
    const { w: w1 } = await wire(server, { user: 'ivy' });
    const { w: w2 } = await wire(server, { user: 'ivy' });
    assert.ok(w1 && w2);
    const w3 = await openWire('long-polling', server.url);
    wires.push(w3);
    const reply = (await w3.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ext: { user: 'ivy' } }))[0] as Msg;
    assert.equal(reply['successful'], false);
    assert.equal(reply['error'], '403:2:too_many_sessions');
    assert.equal(reply['advice']?.reconnect, 'none');
    await wire(server, { user: 'jay' });
    await wire(server);
  });

  it('a session that expires leaves, once; identify that throws or answers nonsense fails the handshake, and the server keeps serving', async (t) => {
    let mode = 'ok';
    const server = await setup(t, {
      // 1 s: the session's subscribe, sent after its connect, must come before it expires (300 ms left a loaded machine little room).
      maxInterval: 1000,
      identify: (m: Message) => {
        if (mode === 'throw') throw new Error('token check failed');
        if (mode === 'bad') return { id: 'a\nb' };
        return (m.ext as { user?: string } | undefined)?.user;
      },
    });
    const seen = events(server);
    const { w, id } = await wire(server, { user: 'kim' });
    await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/rooms/a' });
    await waitFor(() => seen.length === 1, { timeout: 2000, what: 'the join' });
    await waitFor(() => seen.length === 2, { timeout: 5000, what: 'the leave on expiry' });
    assert.deepEqual(seen, ['join /rooms/a kim -', 'leave /rooms/a kim']);
    await sleep(400);
    assert.equal(seen.length, 2, 'once');
    for (const m of ['throw', 'bad']) {
      mode = m;
      const x = await openWire('long-polling', server.url);
      wires.push(x);
      const reply = (await x.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ext: { user: 'kim' } }))[0] as Msg;
      assert.equal(reply['successful'], false);
      assert.equal(reply['error'], '500::server_error');
    }
    mode = 'ok';
    await wire(server, { user: 'kim' });
  });

  it('the identity is counted in maxSessionDataBytes and hidden from ctx.session', async (t) => {
    const server = await setup(t, { maxSessionDataBytes: 100 });
    const { id } = await wire(server, { user: 'lee' });
    const data = server.cometd.session(id);
    assert.deepEqual(await data.all(), {});
    assert.equal(await data.get('\u0000identity'), undefined);
    await assert.rejects(data.set('\u0000identity', 'x'), TypeError);
    await assert.rejects(data.set('big', 'x'.repeat(80)), (err: BayeuxError) => err.code === 413);
    const w = await openWire('long-polling', server.url);
    wires.push(w);
    const reply = (await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ext: { user: 'lee', name: 'x'.repeat(200) } }))[0] as Msg;
    assert.equal(reply['error'], '413:100:session_data_too_large');
  });
});

describe('presence options', () => {
  it('are checked', () => {
    assert.throws(() => bayeux({ presence: ['/meta/x'] }), /option presence/);
    assert.throws(() => bayeux({ presence: ['nope'] }), /option presence/);
    assert.throws(() => bayeux({ identify: 'alice' as never }), /option identify must be a function/);
    assert.throws(() => bayeux({ maxSessionsPerUser: 2 }), /needs the identify option/);
    assert.throws(() => bayeux({ presenceLimit: 0 }), /presenceLimit/);
    const engine = { open() {}, createSession() {}, publish() {}, take() {} };
    assert.throws(() => bayeux({ engine: engine as never, presence: '/chat/**' }), /engine that keeps presence/);
    assert.throws(() => bayeux({ engine: engine as never, identify }), /engine that keeps presence/);
  });

  it('sessionsOf without identify, and bad arguments, are refused', async (t) => {
    const server = await startServer({});
    t.after(() => server.close());
    await assert.rejects(server.cometd.sessionsOf('x'), /needs the identify option/);
    await assert.rejects(server.cometd.presence('/chat/a'), (err: BayeuxError) => err.toString() === '404:/chat/a:no_presence');
    const s2 = await setup(t);
    await assert.rejects(s2.cometd.sessionsOf(''), TypeError);
    await assert.rejects(s2.cometd.deliverToUser('x', '/meta/x', 1), (err: BayeuxError) => err.code === 405);
  });
});

const wires: Wire[] = [];
after(() => {
  for (const w of wires) w.close();
});

/** A raw long-polling wire with a session (handshake `ext` given). */
async function wire(server: TestServer, ext?: Record<string, unknown>): Promise<{ w: Wire; id: string }> {
  const w = await openWire('websocket', server.url);
  wires.push(w);
  return { w, id: await wireSession(w, ext) };
}

function sortUsers(users: PresentUser[]): PresentUser[] {
  return [...users].sort((a, b) => String(a.user).localeCompare(String(b.user)));
}
