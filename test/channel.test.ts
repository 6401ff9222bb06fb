import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expand } from '../lib/server/expand.js';
import * as server from '../lib/index.js';
import * as client from '../lib/client/index.js';
import {
  channelMatches as matches, isMeta, isPublishable, isService, isValidChannel, isValidPattern, isWildcard, MAX_CHANNEL_LENGTH, overlaps,
} from '../lib/protocol/channel.js';

const NAMES = ['/a', '/chat/demo', '/a-b_c!~()$@.x/y', '/A9/b.c', '/meta/connect', '/service/echo', '/' + 'x'.repeat(MAX_CHANNEL_LENGTH - 1)];
const PATTERNS = ['/a/*', '/a/**', '/*', '/**', '/meta/*'];
const INVALID = [
  '', '/', 'a', 'a/b', '/a/', '//a', '/a//b', '/a b', '/a/*/b', '/a/**/b', '/a/b*', '/*a', '/a/***', '/ä', '/a?b', '/a#',
  42, null, undefined, '/' + 'x'.repeat(MAX_CHANNEL_LENGTH),
];

test('channel names are valid channels and patterns', () => {
  for (const name of NAMES) {
    assert.equal(isValidChannel(name), true, name);
    assert.equal(isValidPattern(name), true, name);
  }
});

test('wildcards are valid patterns but not channels', () => {
  for (const pattern of PATTERNS) {
    assert.equal(isValidChannel(pattern), false, pattern);
    assert.equal(isValidPattern(pattern), true, pattern);
  }
});

test('invalid names are neither, including one past 1,024 characters', () => {
  for (const name of INVALID) {
    assert.equal(isValidChannel(name), false, String(name));
    assert.equal(isValidPattern(name), false, String(name));
  }
});

test('the server and the client entry give the same answer for every name', () => {
  assert.equal(server.isValidChannel, client.isValidChannel);
  assert.equal(server.isValidPattern, client.isValidPattern);
  assert.equal(server.channelMatches, client.channelMatches);
  assert.equal(server.matches, server.channelMatches, 'matches stays as the older name');
  for (const name of [...NAMES, ...PATTERNS, ...INVALID]) {
    assert.equal(server.isValidChannel(name), client.isValidChannel(name), String(name));
    assert.equal(server.isValidPattern(name), client.isValidPattern(name), String(name));
  }
});

test('classification', () => {
  assert.equal(isWildcard('/a/*'), true);
  assert.equal(isWildcard('/a/**'), true);
  assert.equal(isWildcard('/a/b'), false);
  assert.equal(isMeta('/meta/connect'), true);
  assert.equal(isMeta('/metadata'), false);
  assert.equal(isService('/service/x'), true);
  assert.equal(isService('/services'), false);
  assert.equal(isPublishable('/chat/a'), true);
  assert.equal(isPublishable('/chat/*'), false);
  assert.equal(isPublishable('/meta/foo'), false);
  assert.equal(isPublishable('/service/echo'), true);
});

test('expand gives every pattern that matches a channel', () => {
  assert.deepEqual([...expand('/a/b/c')], ['/a/b/c', '/a/b/*', '/a/b/**', '/a/**', '/**']);
  assert.deepEqual([...expand('/a')], ['/a', '/*', '/**']);
  // cached result is the same frozen array
  assert.equal(expand('/a/b/c'), expand('/a/b/c'));
  assert.ok(Object.isFrozen(expand('/a')));
});

test('expand agrees with matches', () => {
  const channels = ['/a', '/a/b', '/a/b/c', '/x/y'];
  const patterns = ['/a', '/a/*', '/a/**', '/*', '/**', '/a/b/*', '/a/b', '/x/*'];
  for (const c of channels) {
    for (const p of patterns) {
      assert.equal(expand(c).includes(p), matches(p, c), `${p} vs ${c}`);
    }
  }
});

test('matches', () => {
  assert.equal(matches('/a/*', '/a/b'), true);
  assert.equal(matches('/a/*', '/a/b/c'), false);
  assert.equal(matches('/a/*', '/a'), false);
  assert.equal(matches('/a/**', '/a/b/c'), true);
  assert.equal(matches('/a/**', '/a'), false);
  assert.equal(matches('/**', '/a'), true);
  assert.equal(matches('/a/b', '/a/b'), true);
  assert.equal(matches('/ab/*', '/a/b'), false);
  assert.equal(matches('/a/*', '/ab'), false);
  assert.equal(matches('/a/**', '/ab/c'), false);
  assert.equal(matches('/a/b', '/a/bc'), false);
  assert.equal(matches('/*', '/x/y'), false);
});

test('overlaps: some channel matches both patterns', () => {
  const yes: Array<[string, string]> = [
    ['/a/b', '/a/b'], ['/a/*', '/a/b'], ['/a/**', '/a/b/c'], ['/**', '/x'], ['/chat/private/**', '/chat/**'],
    ['/chat/private/**', '/**'], ['/a/b', '/a/*'], ['/a/*', '/a/**'], ['/a/*', '/a/*'],
    ['/chat/private/x', '/chat/private/x'], ['/**', '/**'],
  ];
  const no: Array<[string, string]> = [
    ['/a/b', '/a/c'], ['/a/*', '/a/b/c'], ['/a/**', '/a'], ['/a/*', '/b/*'], ['/a/b/c', '/a/*'], ['/chat/private/**', '/chat/public/*'],
  ];
  for (const [p, q] of yes) {
    assert.equal(overlaps(p, q), true, `${p} ~ ${q}`);
    assert.equal(overlaps(q, p), true, `${q} ~ ${p}`);
  }
  for (const [p, q] of no) {
    assert.equal(overlaps(p, q), false, `${p} !~ ${q}`);
    assert.equal(overlaps(q, p), false, `${q} !~ ${p}`);
  }
  // For a plain channel, overlaps is matches.
  for (const c of ['/a', '/a/b', '/a/b/c']) for (const p of ['/a', '/a/*', '/a/**', '/**', '/*']) assert.equal(overlaps(p, c), matches(p, c));
});
