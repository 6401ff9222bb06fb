/**
 * `express-bayeux/client` in Node: the same API as the browser entry, with
 * the `ws` package's WebSocket supplied when Node has no global one
 * (Node 20). `fetch` is Node's own.
 */

import WebSocket from 'ws';
import { setFallbackWebSocket } from './client.js';

if (typeof globalThis.WebSocket !== 'function') setFallbackWebSocket(WebSocket);

export * from './index.js';
