/**
 * Interop: the CometD JavaScript client with the recovery extension printed
 * in docs/history.md (taken from the page itself, so the page's code is
 * what runs) gets what it missed while its session expired, over
 * long-polling and WebSocket.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { adapt } from 'cometd-nodejs-client';
import type { CometD as CometDClient, Message as CometDMessage } from 'cometd';
import { extractSnippets } from '../helpers/doc-snippets.js';
import { nextEvent, startServer } from '../helpers/http-server.js';
import { startSwitchProxy } from '../helpers/tcp-proxy.js';
import { sleep, waitFor } from '../helpers/wait.js';

adapt();
const { CometD } = await import('cometd');

type Outcome = { recovered: boolean; missed: number };
type RecoverExtension = (onRecover: (channel: string, outcome: Outcome) => void) => object;

/** The extension as docs/history.md prints it. */
async function documentedExtension(): Promise<RecoverExtension> {
  const page = fileURLToPath(new URL('../../../docs/history.md', import.meta.url));
  const { snippets } = extractSnippets('docs/history.md', readFileSync(page, 'utf8'));
  const snippet = snippets.find((s) => s.lang === 'js' && s.code.includes('export function recoverExtension'));
  assert.ok(snippet, 'docs/history.md prints recoverExtension');
  const dir = mkdtempSync(join(tmpdir(), 'recover-extension-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'recover-extension.mjs');
  writeFileSync(file, snippet.code);
  const module = (await import(pathToFileURL(file).href)) as { recoverExtension: RecoverExtension };
  return module.recoverExtension;
}

const recoverExtension = await documentedExtension();
const MAX_INTERVAL = 500;

for (const mode of ['long-polling', 'websocket'] as const) {
  describe(`the documented CometD recovery extension over ${mode}`, () => {
    it('a CometD client whose session expired while cut off gets the 20 it missed, in order, once', async (t) => {
      const server = await startServer({ history: { '/chat/**': { size: 100 } }, maxInterval: MAX_INTERVAL, timeout: 1000, logLevel: 'error' });
      t.after(() => server.close());
      const proxy = await startSwitchProxy(server.port);
      t.after(() => proxy.close());
      const cd: CometDClient = new CometD();
      cd.configure({ url: `http://127.0.0.1:${proxy.port}/cometd`, logLevel: 'warn', backoffIncrement: 50, maxBackoff: 300 });
      cd.unregisterTransport(mode === 'websocket' ? 'long-polling' : 'websocket');
      t.after(() => new Promise<void>((resolve) => cd.disconnect(() => resolve())).catch(() => undefined));
      const recovers: Array<[string, Outcome]> = [];
      cd.registerExtension('recover', recoverExtension((channel, outcome) => recovers.push([channel, outcome])));
      const got: unknown[] = [];
      // CometD subscribes again after a new handshake when the subscription is made in the handshake listener.
      cd.addListener('/meta/handshake', (message: CometDMessage) => {
        if (message.successful) cd.subscribe('/chat/cometd', (m: CometDMessage) => got.push(m.data));
      });
      cd.handshake();
      await waitFor(async () => (await server.cometd.subscribers('/chat/cometd')).length === 1, { timeout: 5000, what: 'the subscription' });
      for (const n of [1, 2, 3]) await server.cometd.publish('/chat/cometd', n);
      await waitFor(() => got.length === 3, { timeout: 5000, what: 'the first 3' });
      const clientId = cd.getClientId() as string;
      const expired = nextEvent<[string, string]>(server, 'disconnect', (id, reason) => id === clientId && reason === 'timeout', 10_000);
      const down = Date.now();
      proxy.down();
      await expired;
      for (let n = 4; n <= 23; n++) await server.cometd.publish('/chat/cometd', n);
      const left = 3 * MAX_INTERVAL - (Date.now() - down);
      if (left > 0) await sleep(left);
      proxy.up();
      await waitFor(() => got.length >= 23, { timeout: 15_000, what: `23 messages (have ${got.length})` });
      await server.cometd.publish('/chat/cometd', 24);
      await waitFor(() => got.length >= 24, { timeout: 5000, what: 'a live message' });
      await sleep(100);
      assert.deepEqual(got, Array.from({ length: 24 }, (_, i) => i + 1));
      assert.deepEqual(recovers, [['/chat/cometd', { recovered: true, missed: 20 }]]);
      assert.notEqual(cd.getClientId(), clientId);
    });
  });
}
