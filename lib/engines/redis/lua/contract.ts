/**
 * The names of what the Lua scripts and the engine say to each other:
 * hash fields, stream fields, node messages, the kinds of positions a take
 * writes, and the statuses every session script may answer. The values
 * are the wire values (what Redis stores and the scripts test), kept as
 * they are so nodes of two versions read each other during a rolling
 * deploy; the names are what the TypeScript side uses.
 *
 * Each script's own statuses, argument builder and reply parser are next
 * to its Lua text (`session.ts`, `pattern.ts`).
 */

/** Fields of a session's hash, `<bucket base>:<id>` (set in full by CREATE). */
export const SessionField = {
  /** `'1'` if the session uses the ack extension. */
  Ack: 'ack',
  /** Deadline, ms on the Redis clock. */
  Deadline: 'd',
  /** Id of the node that holds the session. */
  Node: 'node',
  /** Generation: grows when the holder changes. */
  Gen: 'gen',
  /** Last batch number sent (acked sessions). */
  Batch: 'batch',
  /** Number of subscriptions. */
  SubCount: 'n',
  /** Session data size, JS characters. */
  DataChars: 'db',
  /** Box position acknowledged (taken). */
  BoxAcked: 'bp',
  /** Box position sent (acked sessions). */
  BoxSent: 'bs',
  /** Stream id of the box's last entry. */
  BoxLast: 'bl',
  /** Bytes the box's entries hold (the sum of `:bi`). */
  BoxBytes: 'bb',
  /** The user the session belongs to (`SessionOptions.user`); absent for an anonymous session. */
  User: 'u',
  /**
   * With shard logs: the node whose seen (`{t0}:seen:<node>`) applies to
   * the session's channels where it is further than their positions in
   * `:subs` (set and removed by POSITIONS, removed by TOUCH_OR_ADOPT).
   */
  SeenNode: 'sn',
} as const;

/** Suffixes of a session's other keys, after `<bucket base>:<id>`. */
export const SessionKey = {
  Subs: ':subs',
  Sent: ':sent',
  Box: ':box',
  BoxIndex: ':bi',
  Data: ':data',
  /** Session data: key → length of key + value in JS characters. */
  DataLengths: ':dl',
} as const;

/** Suffixes of a pattern's keys, after its base `<prefix>{p:<pattern>}` (the base itself is its Pub/Sub channel). */
export const PatternKey = {
  /** Set of its subscribers' ids. */
  Subs: ':subs',
  /** Stream of what was published to it. */
  Log: ':log',
  /** The log's entry sizes, `<stream id> <bytes>`, oldest first. */
  Index: ':index',
  /** Their sum. */
  Bytes: ':bytes',
  /** Stream id of the newest entry. */
  Last: ':last',
  /** Channel history (on the exact channel's base only): `<epoch> <offset> <bytes>`, the channel's position and the characters kept. */
  History: ':h',
  /** Channel history: the kept messages, oldest first, each `<ms> <text>` (its publish time on the Redis clock, the text as delivered). */
  HistoryMessages: ':hm',
  /** Presence (on a presence channel's exact base only): session id → `<user>\n<info>` ('' user: anonymous). */
  PresenceClients: ':pc',
  /** Presence: user → how many of its sessions are present ('' → anonymous sessions). */
  PresenceUsers: ':pu',
} as const;

/** A user's sessions in one bucket: `<bucket base>:u:<user>`, a set of ids. */
export const USER_INDEX = ':u:';

/** Fields of a log or box entry (a stream entry). */
export const StreamField = {
  Message: 'm',
  /** The publish id (one copy per session however many patterns match). */
  Publish: 'u',
  /** Excluded session ids, comma-separated, or `'-'`. */
  Except: 'x',
  /** A shard entry's publishes: `<count>` then per publish ` <channel> <publish id> <except> <length> <message>`. */
  Publishes: 'p',
} as const;

/**
 * What a script tells a session's holder on `<prefix>node:<nodeId>`: the
 * first letter of the message, then a space and the session id.
 */
export const NodeMessage = {
  /** `x <id>`: the session is gone (destroyed or expired). */
  Gone: 'x',
  /** `d <id> <gen>`: another node took the session over at generation `gen`. */
  Moved: 'd',
  /** `b <id> <prev> <sid> <message>`: a message was delivered to its box. */
  Boxed: 'b',
  /** `s <id> <gen> <position> <pattern>`: another node subscribed it. */
  Subscribed: 's',
  /** `u <id> <gen> <pattern>`: another node unsubscribed it. */
  Unsubscribed: 'u',
} as const;
export type NodeMessage = (typeof NodeMessage)[keyof typeof NodeMessage];

/** The kind of a position in a take's write triples (`kind, source, position`; source '' is the box). */
export const PositionKind = {
  /** Acknowledged (taken): `:subs`, `bp`. */
  Acked: 'a',
  /** Sent, not yet acknowledged (acked sessions): `:sent`, `bs`. */
  Sent: 's',
} as const;
export type PositionKind = (typeof PositionKind)[keyof typeof PositionKind];

/**
 * What the prelude's `live()` answers for a session other than live, and
 * so what every session script may answer instead of its own statuses.
 */
export const Gone = {
  /** No such session (never was, or already removed). */
  Unknown: 0,
  /** This call found it past its deadline and removed it: report the expiry. */
  Expired: -1,
  /** Expired by this call, with subscriptions left in the grave to remove from the pattern sets. */
  ExpiredWithGrave: -2,
} as const;

/** The prelude's `live()`, and EXISTS's reply. */
export const SessionStatus = { Live: 1, ...Gone } as const;
export type SessionStatus = (typeof SessionStatus)[keyof typeof SessionStatus];
