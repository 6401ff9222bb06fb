/**
 * The contract between the engine and its Lua scripts
 * (lib/engines/redis/lua/): every script is a `.lua` file of its own
 * (lua/scripts/) that names its KEYS and ARGV at the top; every status
 * has one meaning per script; the parsers read each reply form into named
 * fields; and the names stand for the values the Lua really writes and
 * tests. No Redis: replies are written here in the form the scripts
 * return them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { NodeMessage, PatternKey, PositionKind, SessionField, SessionKey, SessionStatus, StreamField } from '../../lib/engines/redis/lua/contract.js';
import { LUA_DIR } from '../../lib/engines/redis/lua/files.js';
import { Scripts } from '../../lib/engines/redis/lua/index.js';
import * as pattern from '../../lib/engines/redis/lua/pattern.js';
import * as session from '../../lib/engines/redis/lua/session.js';
import * as presence from '../../lib/engines/redis/lua/presence.js';

/** The `.lua` files in a folder, by name: `touch-or-adopt.lua` → TOUCH_OR_ADOPT. */
function luaFiles(dir: URL): Map<string, string> {
  const files = readdirSync(dir).filter((file) => file.endsWith('.lua')).sort();
  return new Map(files.map((file) => [file.slice(0, -'.lua'.length).toUpperCase().replaceAll('-', '_'), readFileSync(new URL(file, dir), 'utf8')]));
}

/** The files the engine reads: the build's copy, beside the compiled modules. */
const FILES = luaFiles(LUA_DIR);
/** The Lua put in front of scripts; every other file is a script. */
const SHARED = ['SESSION_PRELUDE', 'CHANNEL_HISTORY', 'PRESENCE'];
const LUA = Object.fromEntries([...FILES].filter(([name]) => !SHARED.includes(name)));
const ALL_LUA = [...FILES.values()].join('\n');

/** A file's header: its first lines, while they are comments. */
function header(text: string): string[] {
  const lines = text.split('\n');
  const end = lines.findIndex((line) => !line.startsWith('--'));
  return lines.slice(0, end === -1 ? lines.length : end);
}

test('every .lua file opens with a header naming itself, its KEYS, its ARGV and its reply (shared Lua: what it gives)', () => {
  assert.ok(FILES.size > 0, `.lua files in ${LUA_DIR.href}`);
  for (const [name, text] of FILES) {
    const lines = header(text);
    assert.ok(lines[0]?.startsWith(`-- ${name}`), `${name}: the first line names it`);
    if (SHARED.includes(name)) {
      assert.ok(lines.some((l) => l.startsWith('-- Gives')), `${name}: what it gives`);
      continue;
    }
    assert.ok(lines.some((l) => l.includes('KEYS[1')), `${name}: KEYS`);
    assert.ok(lines.some((l) => l.includes('ARGV[1]')), `${name}: ARGV`);
    assert.ok(lines.some((l) => l.startsWith('-- Reply:')), `${name}: reply`);
  }
});

test('one .lua file per script, each ending its script; every shared file in front of some script', () => {
  assert.equal(Object.keys(LUA).length, Object.keys(Scripts).length, 'one file per script');
  for (const [key, script] of Object.entries(Scripts)) {
    const name = key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
    const own = FILES.get(name);
    assert.ok(own !== undefined, `${key}: scripts/${name.toLowerCase().replaceAll('_', '-')}.lua`);
    assert.ok(script.source.endsWith(`\n${own}`), `${key}: its file is its script's end`);
  }
  for (const name of SHARED) {
    const text = FILES.get(name);
    assert.ok(text !== undefined && Object.values(Scripts).some((script) => script.source.startsWith(`\n${text}\n`)), `${name} is in front of some script`);
  }
  // The exported texts are the files.
  assert.equal(session.CREATE, FILES.get('CREATE'));
  assert.equal(pattern.CHANNEL_HISTORY, FILES.get('CHANNEL_HISTORY'));
});

test('the build has every .lua file of lib/, as it is there (scripts/copy-lua.mjs)', () => {
  const sources = luaFiles(new URL('../../../lib/engines/redis/lua/scripts/', import.meta.url));
  assert.notEqual(LUA_DIR.href, new URL('../../../lib/engines/redis/lua/scripts/', import.meta.url).href, 'the test runs from dist/');
  assert.deepEqual([...FILES.keys()], [...sources.keys()]);
  for (const [name, text] of sources) assert.equal(FILES.get(name), text, `${name}: the copy is the file`);
});

test('each status enum gives every meaning its own name, with the wire values', () => {
  const enums = {
    SessionStatus, CreateStatus: session.CreateStatus, DestroyStatus: session.DestroyStatus,
    SubscribeCheckStatus: session.SubscribeCheckStatus, SubscribeCommitStatus: session.SubscribeCommitStatus,
    RecordTakeStatus: session.RecordTakeStatus, DataSetStatus: session.DataSetStatus, PublishStatus: pattern.PublishStatus,
  };
  for (const [name, values] of Object.entries(enums)) {
    const wire = Object.values(values);
    assert.equal(new Set(wire).size, wire.length, `${name}: one name per value`);
  }
  // The two meanings of 3 and of 0.
  assert.equal(session.SubscribeCheckStatus.AlreadySubscribed, 3);
  assert.equal(session.RecordTakeStatus.StaleGeneration, 3);
  assert.equal(session.CreateStatus.IdTaken, 0);
  assert.equal(SessionStatus.Unknown, 0);
  assert.equal(pattern.PublishStatus.NoSubscribers, 0);
  assert.deepEqual(SessionStatus, { Live: 1, Unknown: 0, Expired: -1, ExpiredWithGrave: -2 });
  assert.equal(session.DestroyStatus.DestroyedWithGrave, 2);
  assert.equal(session.SubscribeCheckStatus.Limit, 4);
  assert.equal(session.DataSetStatus.OverMax, 4);
});

test('the names stand for what the Lua writes and tests', () => {
  for (const field of Object.values(SessionField)) assert.match(ALL_LUA, new RegExp(`'${field}'`), `hash field ${field}`);
  for (const suffix of Object.values(SessionKey)) assert.ok(ALL_LUA.includes(`h .. '${suffix}'`) || ALL_LUA.includes(`'${suffix}'`), `session key ${suffix}`);
  for (const suffix of Object.values(PatternKey)) assert.ok([pattern.CHANNEL_HISTORY, pattern.PUBLISH, pattern.ADD_SUBSCRIBER, pattern.HISTORY, presence.PRESENCE, presence.PRESENCE_COUNT].some((lua) => lua.includes(`'${suffix}'`)), `pattern key ${suffix}`);
  assert.match(pattern.PUBLISH, /'m', message, 'u', pub, 'x', x/);
  assert.deepEqual(StreamField, { Message: 'm', Publish: 'u', Except: 'x', Publishes: 'p' });
  assert.match(pattern.PUBLISH, /'\*', 'p', payload\)/, 'a shard entry: its publishes in one field');
  for (const letter of Object.values(NodeMessage)) assert.match(ALL_LUA, new RegExp(`'${letter} ' \\.\\. id`), `node message ${letter}`);
  assert.match(session.RECORD_TAKE, new RegExp(`kind == '${PositionKind.Acked}'`));
  assert.equal(PositionKind.Sent, 's');
  // Constants the Lua writes as literals.
  assert.ok(pattern.PUBLISH.includes(`local size = #message + #pub + #x + ${pattern.ENTRY_OVERHEAD}\n`), 'ENTRY_OVERHEAD in publish.lua');
  assert.ok(pattern.CHANNEL_HISTORY.includes(`'PX', ttl + ${pattern.HISTORY_POSITION_KEEP})\n`), 'HISTORY_POSITION_KEEP in channel-history.lua');
});

test('arguments are built in the order the headers name them', () => {
  assert.deepEqual(session.createArgs('n:', 'id1', true, 5000, 'node1', 7, undefined, ['k', 'v', '2']), ['n:', 'id1', '1', '5000', 'node1', '7', '', 'k', 'v', '2']);
  assert.deepEqual(session.createArgs('n:', 'id1', false, 5000, 'node1', 0, 'alice', []), ['n:', 'id1', '0', '5000', 'node1', '0', 'alice']);
  assert.deepEqual(pattern.addSubscriberArgs('id1'), ['id1']);
  assert.deepEqual(pattern.addSubscriberArgs('id1', { user: 'u', info: '{}' }), ['id1', 'p', 'u', '{}']);
  assert.deepEqual(pattern.addSubscriberArgs('id1', {}), ['id1', 'p', '', '']);
  // HISTORY: the start padded to ARGV[8], the presence at ARGV[9..11].
  assert.equal(pattern.historyArgs(1, 2, '', 'id', { newest: 3 }, { user: 'u' }).indexOf('p', 5), 8);
  assert.equal(pattern.historyArgs(1, 2, '', 'id', { after: { epoch: 'e', offset: 1 } }, {}).lastIndexOf('p'), 8);
  assert.deepEqual(session.touchOrAdoptArgs('-', 'node1', true, 500), ['-', 'node1', '1', '500', '']);
  assert.deepEqual(session.touchOrAdoptArgs('30000', 'node1', false, 500, 'p:{t0}:seen:'), ['30000', 'node1', '0', '500', 'p:{t0}:seen:']);
  assert.deepEqual(session.subscribeCommitArgs('/a', '1-0', '', 'node1'), ['/a', '1-0', '', 'node1', '']);
  assert.deepEqual(session.recordTakeArgs(3, undefined, ['a', '', '1-0']), ['3', '-', 'a', '', '1-0']);
  assert.deepEqual(session.recordTakeArgs(3, 7, []), ['3', '7']);
  assert.deepEqual(session.dataSetArgs('k', undefined, '100', 1), ['k', '', '1', '100', '1']);
  assert.deepEqual(session.dataSetArgs('k', 'v', '', 2), ['k', 'v', '0', '', '2']);
  assert.deepEqual(session.deliverArgs('m', '10', 'node1', ''), ['m', '10', 'node1', '']);
  assert.deepEqual(session.sweepArgs('n:', 1000), ['n:', '1000']);
  const positions = session.positionsArgs('n:');
  session.pushPositions(positions, 2, 'id1', 4, new Map([['', '1-0'], ['/a', '2-0']]));
  session.pushPositions(positions, 1, 'id2', 1, new Map(), session.joinMark(0));
  assert.deepEqual(positions, ['n:', '', '', '', '', '2', 'id1', '4', '', '2', '', '1-0', '/a', '2-0', '1', 'id2', '1', 'j0', '0']);
  assert.deepEqual(session.positionsArgs('n:', 'node1', { key: 'p:{t0}:seen:node1', position: '5-1023', ttl: 600000 }), ['n:', 'node1', 'p:{t0}:seen:node1', '5-1023', '600000']);
  const later = session.positionsArgs('n:', 'node1');
  session.pushPositions(later, 1, 'id3', 2, new Map());
  session.setPositionsSeen(later, { key: 'k', position: '6-1023', ttl: 600000 });
  assert.deepEqual(later, ['n:', 'node1', 'k', '6-1023', '600000', '1', 'id3', '2', '', '0']);
  const args = pattern.publishArgs('1000', 60000, true, '', '4096', 1, 2);
  pattern.pushPublish(args, [0, 1], 'hé', 'p1', [], { key: 0, size: 100, ttl: 60000, tail: 2 });
  pattern.pushPublish(args, [1], 'x', 'p2', ['a', 'b']);
  // Per publish: its number of keys, their indexes in KEYS (from 1), message, publish id, except, length, history.
  assert.deepEqual(args, [
    '1000', '60000', 'S', '', '4096', '1', '', '2', '', '',
    '2', '1', '2', 'hé', 'p1', '-', '2', '1 100 60000 2',
    '1', '2', 'x', 'p2', 'a,b', '1', '-',
  ]);
  // With a shard: the key prefix and the shard's byte bound, the shard first in KEYS (not named by the publishes); per pattern log the publishes
  // reaching it; the shard's entry as the node built it, its bytes + ENTRY_OVERHEAD, per publish the bytes of its part (UTF-8), the
  // ordinals of the publishes to count, per publish with history its ordinal and history.
  // The publisher's hash: the script publishes nothing when its session is gone.
  const sharded = pattern.publishArgs('', 60000, false, '', '', 1, 3, { prefix: 'bayeux:', maxbytes: '4096' }, 'bayeux:{s3}:abc');
  pattern.pushShardReach(sharded, 3, [[1], [], [1, 2]]);
  const entry = new pattern.ShardEntry();
  entry.add('/a/b', 'm é', 'p3', ['s1'], undefined, true);
  entry.add('/c', 'x', 'p4', [], { key: 3, size: 10, ttl: 5000, tail: 1 }, false);
  entry.add('/d', 'y', 'p5', ['s1', 's2'], undefined, true);
  entry.pushTo(sharded);
  const payload = '3 /a/b p3 s1 3 m é /c p4 - 1 x /d p5 s1,s2 1 y';
  assert.deepEqual(sharded, [
    '', '60000', 'P', '', '', '1', 'bayeux:', '3', '4096', 'bayeux:{s3}:abc', '1,3', '3',
    payload, String(Buffer.byteLength(payload) + pattern.ENTRY_OVERHEAD), '17,11,15', '1,3', '2 4 10 5000 1',
  ]);
  assert.deepEqual(pattern.historyArgs(5, 1000, '', 'id1', { after: { epoch: 'e.1', offset: 3 } }), ['5', '1000', '', 'id1', 'p', 'e.1', '3', '']);
  assert.deepEqual(pattern.historyArgs(5, 1000, '99', 'id1', { newest: 2 }), ['5', '1000', '99', 'id1', 'n', '2', '', '']);
  assert.deepEqual(pattern.historyArgs(5, 1000, '', '', { newest: undefined }), ['5', '1000', '', '', 'n', '', '', '']);
  assert.deepEqual(pattern.historyArgs(5, 1000, '', '', { since: { epoch: 'e', offset: 1 }, limit: 2 }), ['5', '1000', '', '', 's', 'e', '1', '2']);
  assert.deepEqual(pattern.historyArgs(5, 1000, '', '', { since: undefined, limit: undefined }), ['5', '1000', '', '', 's', '', '0', '']);
});

test('TOUCH_OR_ADOPT: gone, short, full with inline subscriptions, full with too many to inline', () => {
  assert.deepEqual(session.parseTouchOrAdopt([-2]), { status: -2, gen: 0, state: undefined });
  assert.deepEqual(session.parseTouchOrAdopt([1, 4]), { status: 1, gen: 4, state: undefined });
  const full = session.parseTouchOrAdopt([1, 5, '1', '3', '7-0', '8-0', ['/a', '1-0', '/b', '2-0'], ['/a', '1-1']]);
  assert.deepEqual(full, {
    status: 1, gen: 5,
    state: { ack: true, batch: 3, boxAcked: '7-0', boxSent: '8-0', subs: [['/a', '1-0'], ['/b', '2-0']], sent: [['/a', '1-1']] },
  });
  const paged = session.parseTouchOrAdopt([1, 5, '0', '0', '0-0', '0-0', false, false]);
  assert.equal(paged.state?.ack, false);
  assert.equal(paged.state?.subs, undefined);
  assert.equal(paged.state?.sent, undefined);
});

test('SUBSCRIBE_COMMIT, UNSUBSCRIBE, SUBSCRIPTIONS, DELIVER', () => {
  assert.deepEqual(session.parseSubscribeCommit([1, 1, 6]), { status: 1, added: true, gen: 6 });
  assert.deepEqual(session.parseSubscribeCommit([1, 0]), { status: 1, added: false, gen: 0 });
  assert.deepEqual(session.parseSubscribeCommit([4]), { status: session.SubscribeCommitStatus.Limit, added: false, gen: 0 });
  assert.deepEqual(session.parseSubscribeCommit([0]), { status: 0, added: false, gen: 0 });
  assert.deepEqual(session.parseUnsubscribe([1, 1]), { status: 1, removed: true });
  assert.deepEqual(session.parseUnsubscribe([1, 0]), { status: 1, removed: false });
  assert.deepEqual(session.parseUnsubscribe([-1]), { status: -1, removed: false });
  assert.deepEqual(session.parseSubscriptions([1, '17', ['/a', '/b']]), { status: 1, cursor: '17', patterns: ['/a', '/b'] });
  assert.deepEqual(session.parseSubscriptions([0]), { status: 0, cursor: '0', patterns: [] });
  assert.deepEqual(session.parseDeliver([1, '9-0', '8-0', 1]), { status: 1, id: '9-0', prev: '8-0', held: true });
  assert.deepEqual(session.parseDeliver([1, '9-0', '8-0', 0]), { status: 1, id: '9-0', prev: '8-0', held: false });
  assert.equal(session.parseDeliver([-2]).status, SessionStatus.ExpiredWithGrave);
});

test('plain statuses, SWEEP, STATS, data, RESTORE_SCAN, ADD_SUBSCRIBER', () => {
  assert.equal(session.parseCreate(1), session.CreateStatus.Created);
  assert.equal(session.parseCreate(0), session.CreateStatus.IdTaken);
  assert.equal(session.parseRecordTake('3'), session.RecordTakeStatus.StaleGeneration);
  assert.equal(session.parseDestroy(2), session.DestroyStatus.DestroyedWithGrave);
  assert.equal(session.parseSubscribeCheck(3), session.SubscribeCheckStatus.AlreadySubscribed);
  assert.equal(session.parseDataSet(4), session.DataSetStatus.OverMax);
  assert.throws(() => session.parseStatus('nope'), /unexpected reply/);
  assert.deepEqual(session.parseSweep(['a', -1, 'b', '-2']), [{ id: 'a', grave: false }, { id: 'b', grave: true }]);
  assert.deepEqual(session.parseStats([3, 10]), { sessions: 3, subscriptions: 10 });
  assert.deepEqual(session.parseStats([3]), { sessions: 3, subscriptions: 0 });
  assert.deepEqual(session.parseDataGet([1, '"v"']), { status: 1, value: '"v"' });
  assert.deepEqual(session.parseDataGet([1, false]), { status: 1, value: undefined });
  assert.deepEqual(session.parseDataGet([1, null]), { status: 1, value: undefined });
  assert.deepEqual(session.parseDataGet([0]), { status: 0, value: undefined });
  assert.deepEqual([...session.parseDataAll([1, ['a', '1', 'b', '2']]).data], [['a', '1'], ['b', '2']]);
  assert.deepEqual([...session.parseDataAll([1, new Map([['a', '1']])]).data], [['a', '1']], 'RESP3 map');
  assert.equal(session.parseDataAll([-1]).status, -1);
  assert.deepEqual(session.parseRestoreScan(['0', 'id1', ['/a', '/b'], 'id2', []]), { cursor: '0', sessions: [{ id: 'id1', patterns: ['/a', '/b'] }, { id: 'id2', patterns: [] }] });
  assert.deepEqual(pattern.parseAddSubscriber(Buffer.from('5-1')), { position: '5-1', joined: 0 });
  assert.deepEqual(pattern.parseAddSubscriber(['5-1', 3]), { position: '5-1', joined: 3 });
  assert.deepEqual(pattern.parseAddSubscriber(['0-0', 0]), { position: '0-0', joined: 0 });
  assert.equal(session.parsePositions('3'), 3);
});

test('PUBLISH: the reply read in place, per key and per publish', () => {
  assert.equal(new pattern.PublishReply([0], 2).status, pattern.PublishStatus.NoSubscribers);
  // Two keys, the second without subscribers; two publishes, the second excluded everyone.
  const reply = new pattern.PublishReply([1, '4-0', '', 3, '5-0', 0, ''], 2);
  assert.equal(reply.status, pattern.PublishStatus.Published);
  assert.equal(reply.prev(0), '4-0');
  assert.equal(reply.prev(1), '');
  assert.equal(reply.firstResult, 3);
  assert.equal(reply.recipients(3), 3);
  assert.equal(reply.id(3), '5-0');
  assert.equal(reply.recipients(5), 0);
  assert.equal(reply.id(5), '');
  // With a shard, a tick logged in one entry and no pattern log reached: { 2, prev, entry, counts asked for } reads as the
  // Published form, each publish in that entry, -1 where no count was asked for; other replies as they are.
  const logged = pattern.publishedForm([pattern.PublishStatus.Logged, '3-0', '9-0'], 3, [false, false]);
  assert.deepEqual(logged, [1, '3-0', '', '', -1, '9-0', -1, '9-0']);
  const shard = new pattern.PublishReply(logged, 3);
  assert.equal(shard.status, pattern.PublishStatus.Published);
  assert.equal(shard.recipients(shard.firstResult + 2), -1);
  assert.equal(shard.id(shard.firstResult + 2), '9-0');
  assert.deepEqual(pattern.publishedForm([2, '3-0', '9-0', 4, 0], 1, [true, false, true]), [1, '3-0', 4, '9-0', -1, '9-0', 0, '9-0']);
  const full = [1, '4-0', '', 3, '5-0', 0, ''];
  assert.equal(pattern.publishedForm(full, 2, [false, false]), full);
  assert.deepEqual(pattern.publishedForm([0], 2, [false, false]), [0]);
  assert.match(pattern.PUBLISH, /local out = \{ 2, prev, id \}/, 'the Lua answers Logged as read here');
});

test('HISTORY and PUBLISH with history: the reply read into named fields; the splice as the Lua does it', () => {
  const reply = pattern.parseHistory(['1765.42', '7', 1, '12-0', 0, '1700000000000 {"a":1,"ext":{"position":{"epoch":"1765.42","offset":6}}}', '1700000000001 x y']);
  assert.deepEqual(reply, {
    epoch: '1765.42', offset: 7, recovered: true, last: '12-0', joined: 0,
    texts: ['{"a":1,"ext":{"position":{"epoch":"1765.42","offset":6}}}', 'x y'],
  });
  assert.deepEqual(pattern.parseHistory(['e', '0', 0, '', 1]), { epoch: 'e', offset: 0, recovered: false, last: '', joined: 1, texts: [] });
  const position = '{"epoch":"e","offset":3}';
  assert.equal(pattern.splice('{"d":"é","ext":{"position":}}', 2, position), '{"d":"é","ext":{"position":{"epoch":"e","offset":3}}}');
  assert.equal(pattern.splice('ab', 0, 'P'), 'abP');
  // PUBLISH's reply: prev per key, results, then the positions, then the cuts.
  const answer = new pattern.PublishReply([1, '4-0', 2, '5-0', position, 2], 1);
  assert.equal(answer.position(answer.firstResult + 2), position);
  assert.deepEqual([...answer.cuts(answer.firstResult + 3)], [2]);
  // The Lua splices as the TypeScript does: tail characters before the end.
  assert.match(pattern.PUBLISH, /string\.sub\(message, 1, #message - tail\) \.\. pos \.\. string\.sub\(message, #message - tail \+ 1\)/);
});

test('presence: REMOVE_SUBSCRIBER, PRESENCE_COUNT, the members kept, USER_SESSIONS', () => {
  assert.equal(presence.parseRemoveSubscriber(0), undefined);
  assert.deepEqual(presence.parseRemoveSubscriber([7, 'alice']), { version: 7, user: 'alice' });
  assert.deepEqual(presence.parseRemoveSubscriber([0, 'alice']), { version: 0, user: 'alice' });
  assert.deepEqual(presence.parseRemoveSubscriber([2, '']), { version: 2, user: undefined });
  assert.deepEqual(presence.parsePresenceCount([3, 4, 9]), { users: 3, clients: 4, version: 9 });
  assert.deepEqual(presence.parseMember('alice\n{"name":"A\\nB"}'), { user: 'alice', info: '{"name":"A\\nB"}' });
  assert.deepEqual(presence.parseMember('bob\n'), { user: 'bob' });
  assert.deepEqual(presence.parseMember('\n'), {});
  assert.deepEqual(presence.parseUserSessions(['a', Buffer.from('b')]), ['a', 'b']);
  assert.deepEqual(presence.presenceArgs(undefined), []);
  // The user index and the hash field: written by CREATE, removed with the session.
  assert.ok(session.CREATE.includes("redis.call('SADD', B .. ':u:' .. ARGV[7], id)"));
  assert.ok(ALL_LUA.includes("redis.call('SREM', B .. ':u:' .. fields[3], id)"));
});
