/**
 * Every protocol error the Server sends comes from one table
 * (`lib/errors.ts` `ProtocolErrors`, issue #24). The wire strings are part
 * of the contract clients match on: these are the strings the Server sent
 * when each was still built where it was used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolErrors } from '../lib/errors.js';
import { BayeuxError } from '../lib/protocol/error.js';

test('ProtocolErrors: the wire strings', () => {
  const expected: Array<[BayeuxError, string]> = [
    [ProtocolErrors.badMessage('data missing'), '400::data missing'],
    [ProtocolErrors.badMessage('invalid JSON frame'), '400::invalid JSON frame'],
    [ProtocolErrors.tooManyMessages(1000), '400:1000:too_many_messages'],
    [ProtocolErrors.sessionUnknown(), '402::session_unknown'],
    [ProtocolErrors.sessionEnded('server'), '402::server'],
    [ProtocolErrors.denied('clientId_mismatch'), '403::clientId_mismatch'],
    [ProtocolErrors.subscriptionLimit(1000), '403:1000:subscription_limit'],
    [ProtocolErrors.metaChannel('/meta/x'), '403:/meta/x:meta_channel'],
    [ProtocolErrors.channelInvalid('/a b'), '405:/a b:invalid_channel'],
    [ProtocolErrors.versionUnsupported('2.0'), '406:2.0:version_unsupported'],
    [ProtocolErrors.slowConsumer(), '408::slow_consumer'],
    [ProtocolErrors.sessionDataTooLarge(65536), '413:65536:session_data_too_large'],
    [ProtocolErrors.messageTooLarge(1048576), '413:1048576:message_too_large'],
    [ProtocolErrors.serviceFailed('/service/echo'), '500:/service/echo:service_failed'],
    [ProtocolErrors.serverError(), '500::server_error'],
    [ProtocolErrors.engineUnavailable(), '503::engine_unavailable'],
    [ProtocolErrors.serverClosing(), '503::server_closing'],
  ];
  for (const [error, wire] of expected) {
    assert.ok(error instanceof BayeuxError);
    assert.equal(error.toString(), wire);
    assert.equal(BayeuxError.parse(wire).toString(), wire);
  }
  // A fresh error each time: a caller may attach a reply or a stack without touching another's.
  assert.notEqual(ProtocolErrors.serverError(), ProtocolErrors.serverError());
});
