/**
 * The browser entry (`dist/lib/client/index.js`) imports nothing from Node:
 * every import in its graph is relative and stays in `dist/lib/client` or
 * the wire vocabulary it shares with the server (`dist/lib/protocol`), and
 * it loads and works in a `node:vm` context that has only what a browser
 * page has (URL, AbortController, timers, fetch, WebSocket), with no
 * `process`, `require`, `Buffer` or Node module anywhere.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { startFaye, type FayeServer } from './helpers/faye-server.js';

const clientDir = fileURLToPath(new URL('../lib/client/', import.meta.url));
const protocolDir = fileURLToPath(new URL('../lib/protocol/', import.meta.url));
const entry = path.join(clientDir, 'index.js');
/** Where the browser entry may import from. */
const allowed = (file: string): boolean => file.startsWith(clientDir) || file.startsWith(protocolDir);

/**
 * Every module specifier in an ES module, found by parsing it: static
 * imports, re-exports, and dynamic `import()` (which must have a literal
 * argument). `require()` is reported as a specifier too, so it fails.
 */
function specifiers(file: string, source: string): string[] {
  const found: string[] = [];
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      found.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isCallExpression(node)
      && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      const [argument] = node.arguments;
      found.push(argument && ts.isStringLiteralLike(argument) ? argument.text : `<computed: ${node.getText(sourceFile)}>`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

test('the import graph of the browser entry stays inside dist/lib/client and dist/lib/protocol', () => {
  assert.ok(existsSync(entry), `${entry} is built`);
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0 && seen.size < 100) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const specifier of specifiers(file, source)) {
      assert.match(specifier, /^\.\.?\//, `${path.relative(clientDir, file)} imports ${specifier}: only relative imports are allowed`);
      const target = path.resolve(path.dirname(file), specifier);
      assert.ok(allowed(target), `${path.relative(clientDir, file)} imports ${specifier}, outside lib/client and lib/protocol`);
      assert.ok(existsSync(target), `${specifier} from ${path.relative(clientDir, file)} exists`);
      assert.notEqual(path.basename(target), 'node.js', 'the browser entry must not reach the Node entry');
      todo.push(target);
    }
  }
  assert.ok(seen.size >= 5, `walked ${seen.size} modules`);
  assert.ok([...seen].some((file) => file.startsWith(protocolDir)), 'the client uses the shared wire vocabulary');
});

// Runs in a child process (vm modules need --experimental-vm-modules). The
// module graph is linked by hand: only relative paths inside the client
// folder resolve; anything else (a bare name, node:*) fails the link.
const CHILD = String.raw`
import vm from 'node:vm';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
const [clientDir, protocolDir, fayeUrl] = process.argv.slice(1);
const WebSocket = createRequire(path.join(clientDir, 'x.js'))('ws');
const page = { URL, AbortController, AbortSignal, setTimeout, clearTimeout, fetch, WebSocket, TextDecoder, TextEncoder };
const context = vm.createContext(page);
const modules = new Map();
async function load(file) {
  if (!modules.has(file)) {
    modules.set(file, new vm.SourceTextModule(await readFile(file, 'utf8'), { identifier: file, context }));
  }
  return modules.get(file);
}
async function linker(specifier, referencing) {
  if (!/^\.\.?\//.test(specifier)) throw new Error('non-relative import: ' + specifier);
  const file = path.resolve(path.dirname(referencing.identifier), specifier);
  if (!file.startsWith(clientDir) && !file.startsWith(protocolDir)) throw new Error('import outside the client: ' + specifier);
  return load(file);
}
const root = await load(path.join(clientDir, 'index.js'));
await root.link(linker);
await root.evaluate();
const globals = vm.runInContext('[typeof process, typeof require, typeof Buffer, typeof global]', context);
const { BayeuxClient } = root.namespace;
const results = { globals, exports: Object.keys(root.namespace).sort(), runs: [] };
for (const transport of ['long-polling', 'websocket']) {
  const client = new BayeuxClient(fayeUrl, { transports: [transport] });
  const got = [];
  await client.subscribe('/browser/' + transport, (data) => got.push(data));
  await client.publish('/browser/' + transport, { hello: transport });
  const deadline = Date.now() + 3000;
  while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  results.runs.push({ transport: client.transport, got });
  await client.disconnect();
}
console.log(JSON.stringify(results));
`;

let faye: FayeServer | undefined;
after(async () => {
  await faye?.close();
});

test('the browser entry loads and works in a vm context without Node built-ins', { timeout: 20_000 }, async () => {
  faye = await startFaye();
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--experimental-vm-modules', '--no-warnings', '--input-type=module', '-e', CHILD, clientDir, protocolDir, faye?.url ?? ''],
      { timeout: 15_000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
  });
  const results = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as {
    globals: string[];
    exports: string[];
    runs: Array<{ transport: string; got: unknown[] }>;
  };
  assert.deepEqual(results.globals, ['undefined', 'undefined', 'undefined', 'undefined']);
  for (const name of ['BayeuxClient', 'BayeuxError', 'BayeuxClientError', 'isValidChannel', 'isValidPattern', 'channelMatches']) {
    assert.ok(results.exports.includes(name), name);
  }
  assert.deepEqual(results.runs, [
    { transport: 'long-polling', got: [{ hello: 'long-polling' }] },
    { transport: 'websocket', got: [{ hello: 'websocket' }] },
  ]);
});
