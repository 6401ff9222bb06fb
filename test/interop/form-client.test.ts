/**
 * Interop: a raw client that posts `application/x-www-form-urlencoded`
 * bodies with `message=` fields, as the Perl POE client and old Dojo
 * clients do. A field may appear once or several times, and each value is
 * the JSON text of one message or of an array of them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { post, startServer, type RawResponse, type TestServer } from '../helpers/http-server.js';
import { waitFor } from '../helpers/wait.js';

type Msg = Record<string, any>;

const FORM = 'application/x-www-form-urlencoded';

/** `message=` fields, Dojo style: encodeURIComponent (spaces as %20). */
function dojoForm(values: unknown[], extra: Record<string, string> = {}): string {
  const fields = values.map((v) => 'message=' + encodeURIComponent(JSON.stringify(v)));
  for (const [k, v] of Object.entries(extra)) fields.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return fields.join('&');
}

/** `message=` fields as an HTML form encodes them (spaces as +). */
function htmlForm(values: unknown[]): string {
  const params = new URLSearchParams();
  for (const v of values) params.append('message', JSON.stringify(v));
  return params.toString();
}

async function postForm(url: string, body: string, contentType = FORM, timeoutMs = 10_000): Promise<RawResponse> {
  return post(url, body, contentType, timeoutMs);
}

function replies(res: RawResponse): Msg[] {
  assert.equal(res.status, 200, `HTTP ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(Array.isArray(res.json), `a JSON array: ${res.text}`);
  return res.json as Msg[];
}

describe('form-encoded message= clients (Perl POE, Dojo)', () => {
  let server: TestServer;
  let ids = 0;
  const id = (): string => 'f' + ++ids;

  before(async () => {
    server = await startServer({ timeout: 3000, maxInterval: 5000 });
  });

  after(async () => {
    await server.close();
  });

  /** Handshake with one single-valued message= holding one object; return the clientId. */
  async function formHandshake(contentType = FORM): Promise<string> {
    const hid = id();
    const res = await postForm(
      server.url,
      dojoForm([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: hid }]),
      contentType,
    );
    const [reply, ...rest] = replies(res);
    assert.equal(rest.length, 0);
    assert.equal(reply?.['channel'], '/meta/handshake');
    assert.equal(reply?.['successful'], true, JSON.stringify(reply));
    assert.equal(reply?.['id'], hid);
    assert.equal(typeof reply?.['clientId'], 'string');
    return reply?.['clientId'] as string;
  }

  it('handshakes with one message= holding one object', async () => {
    const clientId = await formHandshake();
    assert.ok(clientId.length >= 16);
  });

  it('handshakes with one message= holding an array, and a charset in the content type', async () => {
    const res = await postForm(
      server.url,
      dojoForm([[{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'callback-polling'], id: 'arr' }]]),
      FORM + '; charset=UTF-8',
    );
    const [reply] = replies(res);
    assert.equal(reply?.['successful'], true, JSON.stringify(reply));
    assert.equal(reply?.['id'], 'arr');
    assert.ok((reply?.['supportedConnectionTypes'] as string[]).includes('long-polling'));
  });

  it('posts to a sub-path under the mount, and ignores other form fields', async () => {
    const res = await postForm(
      server.url + '/handshake',
      dojoForm([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: 'sub' }], {
        tunnelInit: 'iframe',
      }),
    );
    const [reply] = replies(res);
    assert.equal(reply?.['successful'], true, JSON.stringify(reply));
  });

  it('subscribes, connects, and gets a multi-valued publish delivered in order', async () => {
    const subscriber = await formHandshake();
    const publisher = await formHandshake();

    // subscribe: one message= holding an array of two subscribes.
    const sub = replies(
      await postForm(
        server.url,
        dojoForm([
          [
            { channel: '/meta/subscribe', clientId: subscriber, subscription: '/perl/chat', id: 's1' },
            { channel: '/meta/subscribe', clientId: subscriber, subscription: '/perl/other/**', id: 's2' },
          ],
        ]),
      ),
    );
    assert.deepEqual(
      sub.map((r) => [r['id'], r['successful'], r['subscription']]),
      [
        ['s1', true, '/perl/chat'],
        ['s2', true, '/perl/other/**'],
      ],
    );

    // The first connect is answered at once.
    const first = replies(
      await postForm(server.url, dojoForm([{ channel: '/meta/connect', clientId: subscriber, connectionType: 'long-polling', id: 'c1' }])),
    );
    assert.equal(first.length, 1);
    assert.equal(first[0]?.['successful'], true);
    assert.equal(first[0]?.['advice']?.['reconnect'], 'retry');

    // The next one is held until something arrives.
    const held = postForm(server.url, dojoForm([{ channel: '/meta/connect', clientId: subscriber, connectionType: 'long-polling', id: 'c2' }]));
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the connect to be held' });

    // publish: message= several times, one value an object, one an array.
    const text = 'héllo wörld ☃ & = + % ?';
    const pub = replies(
      await postForm(
        server.url,
        dojoForm([
          { channel: '/perl/chat', clientId: publisher, data: { n: 1, text }, id: 'p1' },
          [
            { channel: '/perl/other/a/b', clientId: publisher, data: { n: 2 }, id: 'p2' },
            { channel: '/perl/chat', clientId: publisher, data: { n: 3 }, id: 'p3' },
          ],
          { channel: '/perl/nobody', clientId: publisher, data: { n: 4 }, id: 'p4' },
        ]),
      ),
    );
    assert.deepEqual(
      pub.map((r) => [r['channel'], r['id'], r['successful']]),
      [
        ['/perl/chat', 'p1', true],
        ['/perl/other/a/b', 'p2', true],
        ['/perl/chat', 'p3', true],
        ['/perl/nobody', 'p4', true],
      ],
    );

    const got = replies(await held);
    const connectReply = got.at(-1);
    assert.equal(connectReply?.['channel'], '/meta/connect');
    assert.equal(connectReply?.['id'], 'c2');
    assert.equal(connectReply?.['successful'], true);
    const deliveries = got.slice(0, -1);
    assert.deepEqual(
      deliveries.map((m) => [m['channel'], m['data']]),
      [
        ['/perl/chat', { n: 1, text }],
        ['/perl/other/a/b', { n: 2 }],
        ['/perl/chat', { n: 3 }],
      ],
    );
    for (const m of deliveries) assert.equal(m['clientId'], undefined, 'broadcast copies carry no clientId');
  });

  it('decodes + as a space, as HTML forms encode it', async () => {
    const subscriber = await formHandshake();
    replies(await postForm(server.url, htmlForm([{ channel: '/meta/subscribe', clientId: subscriber, subscription: '/form/plus', id: 's' }])));
    replies(await postForm(server.url, htmlForm([{ channel: '/meta/connect', clientId: subscriber, connectionType: 'long-polling', id: 'c1' }])));
    const data = { text: 'a b+c  d' };
    const body = htmlForm([{ channel: '/form/plus', clientId: subscriber, data, id: 'p' }]);
    assert.ok(body.includes('+'), 'the body really uses + for spaces');
    const [pubReply] = replies(await postForm(server.url, body));
    assert.equal(pubReply?.['successful'], true, JSON.stringify(pubReply));
    // With a message waiting, a connect is answered at once.
    const got = replies(
      await postForm(server.url, htmlForm([{ channel: '/meta/connect', clientId: subscriber, connectionType: 'long-polling', id: 'c2' }])),
    );
    assert.deepEqual(got.filter((m) => m['channel'] === '/form/plus').map((m) => m['data']), [data]);
  });

  it('unsubscribes and disconnects', async () => {
    const clientId = await formHandshake();
    replies(await postForm(server.url, dojoForm([{ channel: '/meta/subscribe', clientId, subscription: '/form/bye', id: 's' }])));
    const unsub = replies(
      await postForm(server.url, dojoForm([{ channel: '/meta/unsubscribe', clientId, subscription: '/form/bye', id: 'u' }])),
    );
    assert.equal(unsub[0]?.['successful'], true, JSON.stringify(unsub));
    assert.equal(await server.cometd.publish('/form/bye', 1), 0);
    const disconnected = new Promise<string>((resolve) => {
      const listener = (cid: string, reason: string): void => {
        if (cid !== clientId) return;
        server.cometd.off('disconnect', listener);
        resolve(reason);
      };
      server.cometd.on('disconnect', listener);
    });
    const bye = replies(await postForm(server.url, dojoForm([{ channel: '/meta/disconnect', clientId, id: 'd' }])));
    assert.equal(bye[0]?.['successful'], true);
    assert.equal(await disconnected, 'client');
    const after = replies(
      await postForm(server.url, dojoForm([{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: 'c' }])),
    );
    assert.equal(after[0]?.['successful'], false);
    assert.match(String(after[0]?.['error']), /^402:/);
    assert.equal(after[0]?.['advice']?.['reconnect'], 'handshake');
  });

  it('refuses a form without message=, or with a value that is not JSON, with 400', async () => {
    const missing = await postForm(server.url, 'foo=bar');
    assert.equal(missing.status, 400, missing.text);
    assert.equal(missing.json?.error?.type, 'message.missing');
    const garbage = await postForm(server.url, 'message=' + encodeURIComponent('{"channel":'));
    assert.equal(garbage.status, 400, garbage.text);
    assert.equal(garbage.json?.error?.type, 'entity.parse.failed');
    // And the server still serves.
    await formHandshake();
  });
});
