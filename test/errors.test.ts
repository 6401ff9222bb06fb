import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError, ProtocolErrors } from '../lib/errors.js';
import { BayeuxError } from '../lib/protocol/error.js';
import * as server from '../lib/index.js';
import * as client from '../lib/client/index.js';

test('BayeuxError formats code:args:message', () => {
  assert.equal(new BayeuxError(403, 'Forbidden', ['/chat', 'x']).toString(), '403:/chat,x:Forbidden');
  assert.equal(new BayeuxError(402, 'session_unknown').toString(), '402::session_unknown');
  assert.equal(ProtocolErrors.sessionUnknown().toString(), '402::session_unknown');
  assert.equal(ProtocolErrors.channelInvalid('/a b').toString(), '405:/a b:invalid_channel');
  const e = new BayeuxError(403, 'no');
  assert.ok(e instanceof Error);
  assert.equal(e.code, 403);
});

test('BayeuxError.parse round-trips', () => {
  const e = BayeuxError.parse('403:a,b:denied: really');
  assert.equal(e.code, 403);
  assert.deepEqual(e.args, ['a', 'b']);
  assert.equal(e.message, 'denied: really');
  assert.equal(BayeuxError.parse('garbage').code, 0);
});

test('HttpError carries status and type', () => {
  const e = new HttpError(413, 'entity.too.large', 'big');
  assert.equal(e.status, 413);
  assert.equal(e.type, 'entity.too.large');
});

test('the server and the client share one BayeuxError class', () => {
  assert.equal(server.BayeuxError, client.BayeuxError);
  const refused = client.BayeuxError.parse('403:/chat:Forbidden', { channel: '/chat' });
  assert.ok(refused instanceof server.BayeuxError);
  assert.equal(refused.toString(), new server.BayeuxError(403, 'Forbidden', ['/chat']).toString());
  assert.deepEqual(refused.reply, { channel: '/chat' });
  assert.equal(BayeuxError.parse(undefined).message, 'Unknown error');
});

test('BayeuxError is what middleware throws to choose the code', () => {
  assert.equal(new BayeuxError(401, 'x').toString(), '401::x');
});
