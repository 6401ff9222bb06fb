/**
 * The example chat app in a real browser (Debian's Chromium driven by
 * playwright-core): two pages join a room (the server joins their sessions
 * to it and keeps their nicknames in session data), chat without their own
 * lines echoed back, and ask who is there (the room's subscribers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromium } from './helpers/browser.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startApp(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--unhandled-rejections=strict', 'example-app/server.js'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('example app did not start in 10 s')), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('example chat on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`example app exited with ${code}`)));
  });
  return child;
}

if (!CHROMIUM) {
  console.error('chromium not found: example-app browser tests SKIPPED (apt-get install chromium; .ci/run does)');
}

describe('example app in a browser', { skip: !CHROMIUM && 'chromium not installed' }, () => {
  let app: ChildProcess;
  let browser: Browser;
  let base: string;
  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    app = await startApp(port);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    app?.kill('SIGTERM');
  });

  async function join(user: string): Promise<Page> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(base);
    await page.fill('#user', user);
    await page.fill('#room', 'demo');
    await page.click('#join button');
    await page.waitForSelector('#say:not([hidden])', { timeout: 10_000 });
    assert.deepEqual(errors, []);
    return page;
  }

  test('two pages chat over WebSocket and the members service answers', async () => {
    const alice = await join('alice');
    const bob = await join('bob');
    await alice.waitForFunction(() => document.getElementById('status')?.textContent?.includes('websocket'), undefined, { timeout: 10_000 });
    await alice.waitForSelector('#log li:has-text("bob joined")', { timeout: 10_000 });
    await alice.fill('#text', 'hello from alice');
    await alice.press('#text', 'Enter');
    await bob.waitForSelector('#log li:has-text("hello from alice")', { timeout: 10_000 });
    // Except-sender: alice's own line is shown once (by her page), not echoed back by the server.
    await bob.fill('#text', 'hello from bob');
    await bob.press('#text', 'Enter');
    await alice.waitForSelector('#log li:has-text("hello from bob")', { timeout: 10_000 });
    assert.equal(await alice.locator('#log li:has-text("hello from alice")').count(), 1);
    // The nickname comes from the session's data, not from what the page sent.
    assert.match((await bob.locator('#log li:has-text("hello from alice")').textContent()) ?? '', /^alice: /);
    await bob.click('#who');
    const here = await bob.waitForSelector('#log li:has-text("here:")', { timeout: 10_000 });
    const text = (await here.textContent()) ?? '';
    assert.match(text, /alice/);
    assert.match(text, /bob/);
    await bob.screenshot({ path: fileURLToPath(new URL('./example-app.png', import.meta.url)) });
  });

  test('the page imports the browser client the middleware serves at /cometd/client.js', async () => {
    const page = await browser.newPage();
    const scripts: string[] = [];
    page.on('response', (res) => {
      if (res.url().endsWith('.js')) scripts.push(`${res.status()} ${new URL(res.url()).pathname}`);
    });
    await page.goto(base);
    await page.waitForFunction(() => document.getElementById('status') !== null, undefined, { timeout: 10_000 });
    await page.waitForLoadState('networkidle', { timeout: 10_000 }).catch(() => undefined);
    assert.ok(scripts.includes('200 /cometd/client.js'), scripts.join(', '));
    await page.close();
  });

  test('the server refuses a chat message the ACL rejects and the page shows the error', async () => {
    const carol = await join('carol');
    await carol.evaluate(() => {
      const input = document.getElementById('text') as HTMLInputElement;
      input.maxLength = 10_000;
      input.value = 'x'.repeat(600);
    });
    await carol.press('#text', 'Enter');
    await carol.waitForSelector('#log li.error', { timeout: 10_000 });
  });
});
