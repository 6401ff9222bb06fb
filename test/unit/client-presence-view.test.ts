/**
 * The package client's presence view (lib/client/presence.ts): the
 * snapshot, then notice events applied by version, so notices from
 * several server nodes that arrive out of order still leave the view
 * right. No server: snapshots and notices are written here as the server
 * sends them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { presenceNotice, PresenceView } from '../../lib/client/presence.js';

const users = (view: PresenceView) => view.list().map((u) => u.user ?? `~${u.session}`).sort();

function recorder(): { seen: string[]; changed: (event: string, user: { user?: string; session?: string }) => void } {
  const seen: string[] = [];
  return { seen, changed: (event, user) => seen.push(`${event} ${user.user ?? '~' + user.session}`) };
}

test('a snapshot, then joins and leaves; nothing reported for the first snapshot', () => {
  const view = new PresenceView();
  const { seen, changed } = recorder();
  view.snapshot({ users: [{ user: 'a', info: { n: 1 } }, { session: 's1' }], count: { users: 2, clients: 3 }, version: 4 }, true, changed);
  assert.deepEqual(users(view), ['a', '~s1']);
  assert.deepEqual(view.list().find((u) => u.user === 'a')?.info, { n: 1 });
  view.apply({ events: [{ event: 'join', user: 'b', v: 5 }, { event: 'leave', session: 's1', v: 6 }, { event: 'join', user: 'a', v: 7 }] }, changed);
  assert.deepEqual(users(view), ['a', 'b']);
  assert.deepEqual(seen, ['join b', 'leave ~s1'], 'a join of someone listed changes nothing');
});

test('events at or below the snapshot are in it already', () => {
  const view = new PresenceView();
  const { seen, changed } = recorder();
  view.snapshot({ users: [{ user: 'a' }], version: 10 }, true, changed);
  view.apply({ events: [{ event: 'leave', user: 'a', v: 9 }, { event: 'join', user: 'z', v: 10 }] }, changed);
  assert.deepEqual(users(view), ['a']);
  assert.deepEqual(seen, []);
});

test("a leave that overtook its user's join (another node's notice came first) wins", () => {
  const view = new PresenceView();
  const { seen, changed } = recorder();
  view.snapshot({ users: [], version: 0 }, true, changed);
  view.apply({ events: [{ event: 'leave', user: 'b', v: 2 }] }, changed);
  view.apply({ events: [{ event: 'join', user: 'b', v: 1 }] }, changed);
  assert.deepEqual(users(view), []);
  assert.deepEqual(seen, []);
  // And the other way round: the later join, then the overtaken leave.
  view.apply({ events: [{ event: 'join', user: 'c', v: 4 }] }, changed);
  view.apply({ events: [{ event: 'leave', user: 'c', v: 3 }] }, changed);
  assert.deepEqual(users(view), ['c']);
  assert.deepEqual(seen, ['join c']);
});

test('a new snapshot (after a new session) reports the differences', () => {
  const view = new PresenceView();
  const { seen, changed } = recorder();
  view.snapshot({ users: [{ user: 'a' }, { user: 'b' }], version: 3 }, true, changed);
  view.apply({ events: [{ event: 'leave', user: 'a', v: 9 }] }, changed);
  view.snapshot({ users: [{ user: 'b' }, { user: 'c' }], version: 2 }, false, changed);
  assert.deepEqual(users(view), ['b', 'c']);
  assert.deepEqual(seen, ['leave a', 'join c']);
  // The versions of the old session's notices no longer count.
  view.apply({ events: [{ event: 'leave', user: 'c', v: 3 }] }, changed);
  assert.deepEqual(users(view), ['b']);
});

test('malformed notices and entries are ignored; only messages without data and with ext.presence.events are notices', () => {
  const view = new PresenceView();
  const { seen, changed } = recorder();
  view.snapshot({ users: [{ user: 1 }, 'x', null, { session: 's' }] }, true, changed);
  assert.deepEqual(users(view), ['~s']);
  view.apply({ events: [null, 5, { event: 'join' }, { event: 'dance', user: 'q', v: 1 }] }, changed);
  view.apply('nonsense', changed);
  assert.deepEqual(seen, []);
  assert.equal(presenceNotice({ data: 1, ext: { presence: { events: [] } } }), undefined);
  assert.equal(presenceNotice({ ext: { presence: true } }), undefined);
  assert.deepEqual(presenceNotice({ ext: { presence: { events: [] } } }), { events: [] });
});
