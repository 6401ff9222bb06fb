/**
 * Socket.IO 4.8 as the rooms benchmark's other server, set up as its users
 * set it up: `new Server(http)` on the default path, a client joins a room
 * by an event the server answers with `socket.join(room)` and an
 * acknowledgement, and a publisher's batch is an event with an
 * acknowledgement: the server emits each message with one
 * `io.to(room).emit('m', data)` and then acknowledges the batch.
 * With a Redis URL, `@socket.io/redis-adapter` (the classic, Pub/Sub one)
 * on two `redis` (node-redis) clients.
 */
import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

/** The path Socket.IO listens on (its default). */
export const SIO_PATH = '/socket.io/';

/** One message of a published batch: the room and the data every member gets. */
export interface SioMessage {
  r: string;
  d: unknown;
}

export async function attachSocketIo(http: HttpServer, redisUrl?: string): Promise<Server> {
  const io = new Server(http, { serveClient: false, perMessageDeflate: false });
  if (redisUrl) {
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    pub.on('error', (err: Error) => console.error(`sio redis: ${err.message}`));
    sub.on('error', (err: Error) => console.error(`sio redis: ${err.message}`));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  io.on('connection', (socket) => {
    socket.on('join', (room: string, ack?: () => void) => {
      void socket.join(room);
      ack?.();
    });
    socket.on('pub', (batch: SioMessage[], ack?: () => void) => {
      for (const m of batch) io.to(m.r).emit('m', m.d);
      ack?.();
    });
  });
  return io;
}
