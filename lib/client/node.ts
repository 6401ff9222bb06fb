/**
 * `express-bayeux/client` in Node: the same API as the browser entry, with
 * the `ws` package's WebSocket supplied when Node has no global one
 * (Node 20), told to refuse frames longer than `maxResponseBytes` before
 * buffering them. `fetch` is Node's own.
 */

import WebSocket from 'ws';
import { setFallbackWebSocket } from './transports.js';
import type { WebSocketLike } from './websocket.js';

if (typeof globalThis.WebSocket !== 'function') {
  setFallbackWebSocket(function createWs(url: string, maxPayload: number): WebSocketLike {
    return new WebSocket(url, { maxPayload });
  });
}

export * from './index.js';
