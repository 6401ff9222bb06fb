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
import { skipWithout } from './helpers/missing.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface App {
  child: ChildProcess;
  /** Everything the app printed on stdout so far (its own lines). */
  readonly stdout: string;
  /** Everything on stderr so far (the package's winston logger). */
  readonly stderr: string;
  /** The address it says it listens on, from its first line. */
  readonly origin: string;
}

/** Start the example app with `env` (PORT, HOST…) and `args`; resolves once it says where it listens. */
async function startApp(env: Record<string, string>, args: string[] = []): Promise<App> {
  const child = spawn(process.execPath, ['--unhandled-rejections=strict', 'example-app/server.js', ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example app did not start in 10 s: ${stderr}`)), 10_000);
    const check = () => {
      const m = /example chat on (http:\/\/\S+?)\/ /.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`example app exited with ${code}: ${stderr}`))));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    origin,
  };
}

/** Run the app until it exits by itself (bounded): its exit code and what it wrote. */
async function runToExit(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['example-app/server.js', ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => (child.kill('SIGKILL'), resolve(null)), 10_000);
    child.once('exit', (c) => (clearTimeout(timer), resolve(c)));
  });
  return { code, stdout, stderr };
}

/** Whether something accepts TCP connections at host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => (socket.destroy(), resolve(false)), 2000);
    socket.once('connect', () => (clearTimeout(timer), socket.destroy(), resolve(true)));
    socket.once('error', () => (clearTimeout(timer), resolve(false)));
  });
}

async function stopApp(app: App | undefined): Promise<void> {
  if (!app || app.child.exitCode !== null || app.child.signalCode !== null) return;
  const exited = new Promise((resolve) => app.child.once('exit', resolve));
  app.child.kill('SIGTERM');
  const timer = setTimeout(() => app.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

describe('example app: where it listens', () => {
  test('PORT is honoured and the default host is 127.0.0.1 only', async () => {
    const port = await freePort();
    const app = await startApp({ PORT: String(port) });
    try {
      assert.equal(app.origin, `http://127.0.0.1:${port}`);
      assert.equal(await accepts('127.0.0.1', port), true);
      // Another loopback address of this machine: not listened on.
      assert.equal(await accepts('127.0.0.2', port), false, 'the app listens on 127.0.0.1 only');
    } finally {
      await stopApp(app);
    }
  });

  test('HOST and --port are honoured', async () => {
    const port = await freePort();
    const app = await startApp({ HOST: '127.0.0.2', PORT: '1' }, ['--port', String(port)]);
    try {
      assert.equal(app.origin, `http://127.0.0.2:${port}`);
      assert.equal(await accepts('127.0.0.2', port), true);
      assert.equal(await accepts('127.0.0.1', port), false);
      const res = await fetch(`${app.origin}/favicon.ico`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200, 'a favicon, not a 404');
      assert.match(res.headers.get('content-type') ?? '', /^image\//);
    } finally {
      await stopApp(app);
    }
  });

  test('a busy port: one clear line and exit code 1, no stack trace', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as net.AddressInfo;
    try {
      const { code, stderr } = await runToExit({ PORT: String(port) });
      assert.equal(code, 1);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, stderr);
      assert.match(lines[0] as string, new RegExp(`port ${port} is in use.*set PORT=`));
      assert.doesNotMatch(stderr, /EADDRINUSE|\bat /);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  test('a PORT that is not a port: one clear line and exit code 1', async () => {
    const { code, stderr } = await runToExit({ PORT: 'eighty' });
    assert.equal(code, 1);
    assert.match(stderr.trim(), /^example chat: PORT must be a number from 0 to 65535, not "eighty"$/);
  });
});

if (!CHROMIUM) {
  console.error('chromium not found: example-app browser tests SKIPPED (apt-get install chromium; .ci/run does)');
}

describe('example app in a browser', { skip: skipWithout(CHROMIUM, 'chromium', 'apt-get install chromium; .ci/run does') }, () => {
  let app: App;
  let browser: Browser;
  let base: string;
  /** Per page: uncaught errors, console errors, and responses with status 404. */
  const problems = new Map<Page, string[]>();
  before(async () => {
    const port = await freePort();
    app = await startApp({ PORT: String(port), LOG_LEVEL: 'info' });
    base = `${app.origin}/`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stopApp(app);
  });

  async function open(query = ''): Promise<Page> {
    const page = await browser.newPage();
    const seen: string[] = [];
    problems.set(page, seen);
    page.on('pageerror', (err) => seen.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') seen.push(`console: ${msg.text()}`);
    });
    page.on('response', (res) => {
      if (res.status() === 404) seen.push(`404: ${new URL(res.url()).pathname}`);
    });
    await page.goto(base + query);
    await page.waitForLoadState('load');
    return page;
  }

  async function join(user: string, { room = 'demo', query = '' } = {}): Promise<Page> {
    const page = await open(query);
    await page.fill('#user', user);
    await page.fill('#room', room);
    await page.click('#join button');
    await page.waitForSelector('#say:not([hidden])', { timeout: 10_000 });
    assert.deepEqual(problems.get(page), []);
    return page;
  }

  async function members(page: Page): Promise<string> {
    const before = await page.locator('#log li:has-text("here:")').count();
    await page.click('#who');
    await page.waitForFunction((n) => document.querySelectorAll('#log li.meta').length > 0
      && Array.from(document.querySelectorAll("#log li")).filter((li) => li.textContent?.startsWith('here:')).length > n, before, { timeout: 10_000 });
    return (await page.locator('#log li:has-text("here:")').last().textContent()) ?? '';
  }

  test('before joining the status says "not joined", and the page loads without a 404 (favicon) or a console error', async () => {
    const page = await open();
    assert.equal(await page.textContent('#status'), 'not joined');
    // The favicon link is fetched; /favicon.ico as well, for browsers that ask for it.
    const icon = await page.evaluate(async () => {
      const link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
      const res = await fetch(link?.href ?? '/favicon.ico');
      const ico = await fetch('/favicon.ico');
      return [res.status, ico.status];
    });
    assert.deepEqual(icon, [200, 200]);
    await page.waitForLoadState('networkidle', { timeout: 10_000 }).catch(() => undefined);
    assert.deepEqual(problems.get(page), []);
    await page.close();
  });

  test('the room input refuses a bad name in the browser, and its pattern compiles (v flag) without a console error', async () => {
    const page = await open();
    const result = await page.evaluate(() => {
      const input = document.getElementById('room') as HTMLInputElement;
      let compiles = true;
      try {
        new RegExp(`^(?:${input.pattern})$`, 'v'); // how browsers compile pattern="…"
      } catch {
        compiles = false;
      }
      input.value = 'bad room!';
      const bad = input.checkValidity();
      input.value = 'good-room_1';
      const good = input.checkValidity();
      return { compiles, bad, good };
    });
    assert.deepEqual(result, { compiles: true, bad: false, good: true });
    // Submitting the bad name does not join: the browser stops the form.
    await page.fill('#user', 'dave');
    await page.fill('#room', 'no spaces');
    await page.click('#join button');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await page.isHidden('#say'), true);
    assert.equal(await page.textContent('#status'), 'not joined');
    assert.deepEqual(problems.get(page), [], 'no console error (an invalid pattern logs one)');
    await page.close();
  });

  test('two pages chat over WebSocket and see each other in "Who is here?"', async () => {
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
    for (const page of [alice, bob]) {
      const text = await members(page);
      assert.match(text, /alice/);
      assert.match(text, /bob/);
    }
    await bob.screenshot({ path: fileURLToPath(new URL('./example-app.png', import.meta.url)) });
    // The server's log names the transport the sessions use, not the handshake's.
    const transports = [...app.stdout.matchAll(/connected over (\S+)/g)].map((m) => m[1]);
    assert.ok(transports.length >= 2, app.stdout);
    assert.deepEqual([...new Set(transports)], ['websocket'], app.stdout);
    // The package's own line names the handshake's transport as the handshake's.
    assert.match(app.stderr, /started \(handshake over long-polling[,)]/);
    assert.doesNotMatch(app.stderr + app.stdout, /started \((long-polling|websocket)|^handshake over/m);
    for (const page of [alice, bob]) {
      assert.deepEqual(problems.get(page), []);
      await page.close();
    }
  });

  for (const transport of ['websocket', 'long-polling'] as const) {
    test(`closing a tab (${transport}): the other page gets a "left" line and "Who is here?" drops the user within 2 s`, async (t) => {
      const room = `close-${transport}`;
      const erin = await join('erin', { room, query: `?transport=${transport}` });
      const frank = await join('frank', { room, query: `?transport=${transport}` });
      await frank.waitForFunction((t) => document.getElementById('status')?.textContent?.includes(t), transport, { timeout: 10_000 });
      await erin.waitForSelector('#log li:has-text("frank joined")', { timeout: 10_000 });
      assert.match(await members(erin), /frank/);
      const closedAt = Date.now();
      await frank.close(); // fires pagehide, as closing a tab does
      await erin.waitForSelector('#log li:has-text("frank left")', { timeout: 5000 });
      const left = Date.now() - closedAt;
      const here = await members(erin);
      const gone = Date.now() - closedAt;
      t.diagnostic(`${transport}: "frank left" ${left} ms after the tab closed; gone from "Who is here?" by ${gone} ms`);
      assert.doesNotMatch(here, /frank/);
      assert.ok(left < 2000, `"frank left" after ${left} ms`);
      assert.ok(gone < 2000 + 1000, `frank gone from "Who is here?" after ${gone} ms (including the members request)`);
      assert.deepEqual(problems.get(erin), []);
      await erin.close();
    });
  }

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

  test('an error is shown once: a chat message the ACL refuses, and a join the server refuses', async () => {
    const carol = await join('carol');
    await carol.evaluate(() => {
      const input = document.getElementById('text') as HTMLInputElement;
      input.maxLength = 10_000;
      input.value = 'x'.repeat(600);
    });
    await carol.press('#text', 'Enter');
    await carol.waitForSelector('#log li.error', { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 500)); // time for a second copy, if there were to be one
    assert.deepEqual(await carol.locator('#log li.error').allTextContents(), ['chat must be at most 500 characters']);
    await carol.close();

    // A nickname of spaces passes the browser's `required` but not the server.
    const page = await open();
    await page.fill('#user', '   ');
    await page.click('#join button');
    await page.waitForSelector('#log li.error', { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await page.locator('#log li.error').count(), 1, (await page.locator('#log li.error').allTextContents()).join(' | '));
    await page.close();
  });
});
