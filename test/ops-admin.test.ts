/**
 * The admin page: its data and files over HTTP, the bounded channel table,
 * and the live page in Chromium (playwright-core) with real clients.
 *
 * The screenshot is written to the temp directory on every run (for
 * debugging); with UPDATE_SCREENSHOT=1 it replaces docs/admin.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { NextFunction, Request, Response } from 'express';
import type { Browser } from 'playwright-core';
import { createAdminHandler, type AdminSnapshot } from '../lib/ops/index.js';
import { serverOf } from '../lib/internal.js';
import { ChannelTable, receivingPatterns } from '../lib/ops/admin-data.js';
import { expand } from '../lib/server/expand.js';
import { get, startServer, type TestServer } from './helpers/http-server.js';
import { testClients } from './helpers/clients.js';
import { CHROMIUM, launchChromium } from './helpers/browser.js';
import { sleep } from './helpers/wait.js';
import { skipWithout } from './helpers/missing.js';

const { client, cleanup } = testClients();

const root = fileURLToPath(new URL('../../', import.meta.url));
const TOKEN = 'Bearer let-me-in';

function requireAdmin(req: Request, res: Response, next: NextFunction): void {
  if (req.headers.authorization === TOKEN) next();
  else res.status(401).end();
}

/** A server with the admin page at /admin behind a token check. */
async function adminServer(): Promise<TestServer> {
  let admin: ReturnType<typeof createAdminHandler> | undefined;
  const s = await startServer({}, {
    configure: (app) => app.use('/admin', requireAdmin, (req, res, next) => (admin ? admin(req, res, next) : next())),
  });
  admin = createAdminHandler(serverOf(s.cometd));
  cleanup(() => s.close(), () => admin?.close());
  return s;
}

const auth = { authorization: TOKEN };

describe('admin over HTTP', () => {
  test('page, assets and live data behind the application\'s auth', async () => {
    const s = await adminServer();
    assert.equal((await get(`${s.origin}/admin/`)).status, 401);

    const redirect = await fetch(`${s.origin}/admin?x=1`, { headers: auth, redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/admin/?x=1');

    const page = await get(`${s.origin}/admin/`, 5000, auth);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.match(page.text, /<svg id="chart"/);
    assert.match(page.text, /Receivers: the sessions a publish to the channel reaches/);
    assert.doesNotMatch(page.text, /https?:\/\//, 'no CDN: nothing loaded from elsewhere');
    assert.match((await get(`${s.origin}/admin/admin.js`, 5000, auth)).headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match((await get(`${s.origin}/admin/admin.css`, 5000, auth)).headers.get('content-type') ?? '', /^text\/css/);
    assert.equal((await get(`${s.origin}/admin/nope`, 5000, auth)).status, 404);

    const a = client(s.url);
    const b = client(s.url, { transports: ['long-polling'] });
    await a.subscribe('/chat/one', () => undefined);
    await a.subscribe('/chat/*', () => undefined);
    await b.subscribe('/chat/one', () => undefined);
    await b.subscribe('/chat/two', () => undefined);
    for (let i = 0; i < 3; i++) await a.publish('/chat/two', { i });
    await a.publish('/chat/one', 'x');
    const clientId = b.clientId;
    await b.disconnect();

    const data = (await get(`${s.origin}/admin/data.json`, 5000, auth)).json as AdminSnapshot;
    assert.equal(data.engineUp, true);
    assert.equal(data.stats?.sessions, 1);
    assert.equal(data.stats?.subscriptions, 2);
    assert.equal(data.stats?.sockets, 1);
    // Receivers: a gets /chat/two through /chat/*, and /chat/one once though two of its subscriptions match.
    assert.deepEqual(data.channels.map((c) => [c.channel, c.publishes, c.subscribers]), [
      ['/chat/two', 3, 1],
      ['/chat/one', 1, 1],
      ['/chat/*', 0, 1],
    ]);
    assert.equal(data.disconnects.length, 1);
    assert.equal(data.disconnects[0]?.reason, 'client');
    assert.equal(data.disconnects[0]?.client, clientId?.slice(0, 8), 'only a prefix of the session id');
    assert.equal(data.nodes.length, 1);
    assert.equal(data.nodes[0]?.engine, 'MemoryEngine');
    assert.equal(data.series.length >= 1, true);
  });

  test('options are checked', async () => {
    const s = await adminServer();
    assert.throws(() => createAdminHandler(serverOf(s.cometd), { history: 0 }), /option history must be a positive integer/);
    assert.throws(() => createAdminHandler(serverOf(s.cometd), { colour: 'red' } as never), /Unknown admin option: colour/);
  });
});

describe('channel table', () => {
  test('stays bounded however many channels are used, and keeps the busiest', () => {
    const table = new ChannelTable(10);
    for (let i = 0; i < 5; i++) table.hit('/busy');
    for (let i = 0; i < 10_000; i++) table.hit(`/c/${i}`);
    assert.equal(table.size, 20);
    table.tick();
    assert.equal(table.size, 10);
    assert.equal(table.top(1)[0]?.channel, '/busy');
    for (let i = 0; i < 3; i++) table.hit('/new');
    table.tick();
    assert.equal(table.size, 10);
    assert.deepEqual(table.top(2).map((c) => c.channel), ['/busy', '/new']);
  });
});

describe('receivers', () => {
  test('a channel is received through the patterns the server expands it to; a wildcard row through itself', () => {
    for (const channel of ['/a', '/a/b', '/chat/room/1', '/x/y/z/w']) assert.deepEqual(receivingPatterns(channel), [...expand(channel)], channel);
    assert.deepEqual(receivingPatterns('/stocks/**'), ['/stocks/**']);
    assert.deepEqual(receivingPatterns('/stocks/*'), ['/stocks/*']);
    assert.deepEqual(receivingPatterns('/service/echo'), ['/service/echo']);
  });
});

if (!CHROMIUM) {
  console.error('chromium not found: admin page browser test SKIPPED (apt-get install chromium; .ci/run does)');
}

describe('admin page in a browser', { skip: skipWithout(CHROMIUM, 'chromium', 'apt-get install chromium; .ci/run does') }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  test('shows sessions, channels, disconnects and a chart, updating by itself', async () => {
    const s = await adminServer();
    const page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.setExtraHTTPHeaders(auth);
    await page.goto(`${s.origin}/admin`);
    assert.equal(new URL(page.url()).pathname, '/admin/');
    await page.waitForFunction(() => document.getElementById('sessions')?.textContent === '0', undefined, { timeout: 10_000 });

    // Real clients arrive after the page is open: the page must pick them up by itself.
    const clients = [client(s.url), client(s.url), client(s.url, { transports: ['long-polling'] })];
    for (const c of clients) await c.subscribe('/chat/lobby', () => undefined);
    await clients[0]?.subscribe('/chat/support', () => undefined);
    await clients[1]?.subscribe('/stocks/**', () => undefined);
    const leaving = client(s.url);
    await leaving.connect();
    await leaving.disconnect();

    await page.waitForFunction(() => document.getElementById('sessions')?.textContent === '3', undefined, { timeout: 10_000 });
    await page.waitForFunction(() => document.getElementById('subscriptions')?.textContent === '5', undefined, { timeout: 10_000 });
    await page.waitForFunction(() => document.getElementById('websockets')?.textContent === '2', undefined, { timeout: 10_000 });

    // Traffic for a few seconds, so the chart has a shape (bounded: 40 rounds).
    for (let round = 0; round < 40; round++) {
      const burst = round < 20 ? round : 40 - round;
      for (let i = 0; i < burst; i++) void clients[round % 3]?.publish('/chat/lobby', { round, i });
      if (round % 4 === 0) void clients[2]?.publish('/chat/support', { round });
      if (round % 8 === 0) void clients[0]?.publish('/stocks/acme', { round });
      await sleep(100);
    }
    await page.waitForFunction(() => {
      const cells = Array.from(document.querySelectorAll("#channels tbody tr")).map((tr) => tr.textContent ?? '');
      return cells.some((row) => row.startsWith('/chat/lobby') && row.endsWith('3'))
        && cells.some((row) => row.startsWith('/chat/support'))
        && cells.some((row) => row.startsWith('/stocks/**'))
        // Received through the /stocks/** subscription only.
        && cells.some((row) => row.startsWith('/stocks/acme') && row.endsWith('1'));
    }, undefined, { timeout: 10_000 });
    // The chart has a scale: four steps up from 0 in messages per second, and time along the bottom.
    await page.waitForFunction(() => /\/s$/.test(document.getElementById('y-4')?.textContent ?? ''), undefined, { timeout: 10_000 });
    const scale = await page.evaluate(() => [0, 1, 2, 3, 4].map((i) => document.getElementById('y-' + i)?.textContent ?? ''));
    const steps = scale.map((label) => Number(label.replace(/\/s$/, '').replace(/,/g, '')));
    assert.equal(steps[0], 0, scale.join(' '));
    for (let i = 1; i <= 4; i++) assert.equal(steps[i], (steps[1] as number) * i, `equal steps: ${scale.join(' ')}`);
    assert.match(await page.textContent('#chart-span') ?? '', /^−\d+ (s|min)$/);
    assert.equal(await page.textContent('#chart-now'), 'now');
    assert.match(await page.textContent('#channels thead') ?? '', /Receivers/);
    await page.waitForFunction(() => (document.querySelector('#disconnects tbody')?.textContent ?? '').includes('client'), undefined, { timeout: 10_000 });
    await page.waitForFunction(() => (document.getElementById('line-in')?.getAttribute('points') ?? '').split(' ').length >= 3, undefined, { timeout: 10_000 });
    assert.equal(await page.locator('svg#chart polyline#line-out').count(), 1);
    assert.match(await page.textContent('#nodes tbody') ?? '', /MemoryEngine/);
    assert.match(await page.textContent('#status') ?? '', /^live/);

    // A screenshot for debugging; UPDATE_SCREENSHOT=1 refreshes the README's.
    const shot = process.env['UPDATE_SCREENSHOT'] === '1' ? join(root, 'docs', 'admin.png') : join(tmpdir(), 'express-bayeux-admin.png');
    mkdirSync(join(shot, '..'), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    console.error(`admin page screenshot: ${shot}`);

    assert.deepEqual(errors, []);
    await page.close();
  });
});
