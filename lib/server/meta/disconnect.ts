/** `/meta/disconnect`: the client ends its session. */
import type { ServerCore } from '../core.js';
import { type Outcome, reply, sessionUnknown } from '../reply.js';
import { forget } from '../session-end.js';
import type { Context, Message } from '../types.js';
import { shortId } from '../util.js';

/**
 * /meta/disconnect. Required: channel, clientId. Optional: ext, id. A
 * connect this session still holds is answered with `reconnect: 'none'`.
 */
export async function disconnect(core: ServerCore, message: Message, ctx: Context): Promise<Outcome> {
  const { clientId } = message;
  const { engine } = core;
  if (typeof clientId !== 'string' || !(await engine.exists(clientId))) return { reply: sessionUnknown(core, message) };
  await core.pipeline.run(message, ctx);
  if (!(await engine.destroy(clientId))) return { reply: sessionUnknown(core, message) };
  forget(core, clientId, 'client');
  core.options.logger.info(`session ${shortId(clientId)} ended: client`);
  core.emit('disconnect', clientId, 'client');
  return { reply: reply(message, { clientId, successful: true }) };
}
