import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expand, isMeta, isPublishable, isService, isValidChannel, isWildcard, matches, overlaps } from '../lib/channel.js';

test('valid channel names and patterns', () => {
  for (const name of ['/a', '/chat/demo', '/a-b_c!~()$@.x/y', '/a/*', '/a/**', '/*', '/**', '/meta/connect', '/service/echo']) {
    assert.equal(isValidChannel(name), true, name);
  }
});

test('invalid channel names', () => {
  for (const name of ['', '/', 'a/b', '/a/', '//a', '/a//b', '/a b', '/a/*/b', '/a/**/b', '/a/b*', '/*a', '/a/***', '/ä', 42, null, undefined, '/' + 'x'.repeat(2000)]) {
    assert.equal(isValidChannel(name), false, String(name));
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
