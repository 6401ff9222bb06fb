/**
 * The `ctx` handed to middleware, services and hooks for one message.
 */
import type { BayeuxSocket, Connection, Context, SessionData } from './types.js';

/**
 * The context of one message: what the transport knows, and the sender's
 * session data, made only when middleware or a service asks for it.
 */
export class MessageContext implements Context {
  readonly client: string | undefined;
  readonly transport: Connection['transport'];
  readonly req: Connection['req'];
  readonly socket: BayeuxSocket | undefined;
  readonly ip: string | undefined;
  #session: SessionData | undefined;
  readonly #open: (clientId: string | undefined) => SessionData;

  constructor(client: string | undefined, conn: Pick<Connection, 'transport' | 'req' | 'socket' | 'ip'>, open: (clientId: string | undefined) => SessionData, session?: SessionData) {
    this.client = client;
    this.transport = conn.transport;
    this.req = conn.req;
    this.socket = conn.socket;
    this.ip = conn.ip;
    this.#open = open;
    this.#session = session;
  }

  get session(): SessionData {
    return (this.#session ??= this.#open(this.client));
  }
}



