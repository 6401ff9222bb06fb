/** Every script the engine runs, with its SHA1 for EVALSHA. */
import { createHash } from 'node:crypto';
import { SESSION_PRELUDE } from './prelude.js';
import * as session from './session.js';
import * as pattern from './pattern.js';
import * as presence from './presence.js';

export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/**
 * A script made of `parts` (the texts of its `.lua` files, shared Lua
 * first), each after a line break as the template strings they were
 * began with one: the session scripts' and ADD_SUBSCRIBER's sources and
 * SHA1s stayed the same when their Lua moved into files.
 */
function script(name: string, ...parts: string[]): Script {
  const source = parts.map((part) => `\n${part}`).join('');
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

const onSession = (name: string, body: string) => script(name, SESSION_PRELUDE, body);

export const Scripts = {
  create: onSession('create', session.CREATE),
  exists: onSession('exists', session.EXISTS),
  touchOrAdopt: onSession('touchOrAdopt', session.TOUCH_OR_ADOPT),
  destroy: onSession('destroy', session.DESTROY),
  subscribeCheck: onSession('subscribeCheck', session.SUBSCRIBE_CHECK),
  subscribeCommit: onSession('subscribeCommit', session.SUBSCRIBE_COMMIT),
  unsubscribe: onSession('unsubscribe', session.UNSUBSCRIBE),
  subscriptions: onSession('subscriptions', session.SUBSCRIPTIONS),
  deliver: onSession('deliver', session.DELIVER),
  recordTake: onSession('recordTake', session.RECORD_TAKE),
  positions: onSession('positions', session.POSITIONS),
  sweep: onSession('sweep', session.SWEEP),
  stats: onSession('stats', session.STATS),
  dataGet: onSession('dataGet', session.DATA_GET),
  dataSet: onSession('dataSet', session.DATA_SET),
  dataAll: onSession('dataAll', session.DATA_ALL),
  restoreScan: onSession('restoreScan', session.RESTORE_SCAN),
  publish: script('publish', pattern.CHANNEL_HISTORY, pattern.PUBLISH),
  addSubscriber: script('addSubscriber', presence.PRESENCE, pattern.ADD_SUBSCRIBER),
  history: script('history', pattern.CHANNEL_HISTORY, presence.PRESENCE, pattern.HISTORY),
  removeSubscriber: script('removeSubscriber', presence.PRESENCE, presence.REMOVE_SUBSCRIBER),
  presenceCount: script('presenceCount', presence.PRESENCE_COUNT),
  userSessions: onSession('userSessions', presence.USER_SESSIONS),
} as const;
