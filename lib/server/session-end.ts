/**
 * How a session ends on this node: expired by the engine, ended by the
 * server (a slow consumer, `cometd.disconnect`), or by its client. What
 * this node knew of it is forgotten, and a connection it still has here is
 * told.
 */
import { ProtocolErrors } from '../errors.js';
import type { ServerCore } from './core.js';
import type { Attachment } from './attachment.js';
import { shortId } from './util.js';

/** The engine expired a session (it was not touched in time). */
export function expired(core: ServerCore, clientId: string): void {
  forget(core, clientId);
  core.options.logger.info(`session ${shortId(clientId)} ended: timeout`);
  core.emit('disconnect', clientId, 'timeout');
}

/** End a session on the server's initiative (`reason`: `slow_consumer`). */
export async function kick(core: ServerCore, clientId: string, reason: string): Promise<void> {
  const attachment = core.attachments.get(clientId);
  if (await core.engine.destroy(clientId).catch(() => false)) {
    core.options.logger.warn(`session ${shortId(clientId)} ended by the server: ${reason}`);
    core.emit('disconnect', clientId, 'server');
  }
  if (attachment) ended(core, attachment, reason);
  else forget(core, clientId);
}

/**
 * A session with a connection here is gone: its held connect is answered
 * (402, re-handshake), its socket told with a `/meta/disconnect` carrying
 * `reconnect: 'handshake'`.
 */
export function ended(core: ServerCore, attachment: Attachment, reason: string): void {
  const { clientId, sink } = attachment;
  forget(core, clientId, attachment.ended ?? 'server');
  sink?.push?.([
    JSON.stringify({
      channel: '/meta/disconnect',
      clientId,
      successful: true,
      error: (reason === 'slow_consumer' ? ProtocolErrors.slowConsumer() : ProtocolErrors.sessionEnded(reason)).toString(),
      advice: { reconnect: 'handshake', interval: 0 },
    }),
  ]);
}

/**
 * Forget a session on this node; its held connect is answered. `ended`
 * says who ended it, for that answer (see `Attachment.ended`).
 */
export function forget(core: ServerCore, clientId: string, ended?: Attachment['ended']): void {
  core.connected.delete(clientId);
  core.rateLimits?.forget(clientId);
  const attachment = core.attachments.delete(clientId);
  if (attachment && ended) attachment.ended = ended;
  attachment?.held?.release();
}
