/**
 * The documentation cannot go stale silently:
 *
 * - every ```ts / ```js block of README.md and docs/*.md type-checks
 *   against the package's types (test/helpers/doc-snippets.ts says how,
 *   and what `<!-- snippet: fragment -->` allows), and the checker is shown
 *   to fail on broken snippets in the same run;
 * - every relative link between the pages points at a file that exists,
 *   and every `#anchor` at a heading of that page;
 * - the README opens with the two set-up commands.
 *
 * One TypeScript program for all snippets: a few seconds.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSnippets, docFiles, extractSnippets, repositorySnippets, type Snippet } from './helpers/doc-snippets.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Broken on purpose: the checker must report each of these, or it checks nothing. */
const CANARIES: Snippet[] = [
  // A wrong option type.
  { file: 'canary.md', line: 1, lang: 'ts', fragment: false, code: `import { bayeux } from 'express-bayeux';\nbayeux({ timeout: '30s' });` },
  // A name a complete snippet does not declare (fragments get it; complete snippets do not).
  { file: 'canary.md', line: 10, lang: 'ts', fragment: false, code: `cometd.publish('/a', 1);` },
  // A fragment using a name outside the preamble.
  { file: 'canary.md', line: 20, lang: 'ts', fragment: true, code: `cometd.publish('/a', notDeclaredAnywhere);` },
  // A method that does not exist on the client.
  { file: 'canary.md', line: 30, lang: 'ts', fragment: true, code: `await client.publishh('/a', 1);` },
  // JavaScript is checked too.
  { file: 'canary.md', line: 40, lang: 'js', fragment: false, code: `import { bayeux } from 'express-bayeux';\nbayeux().attach(8080);` },
  // An export the package does not have.
  { file: 'canary.md', line: 50, lang: 'ts', fragment: false, code: `import { NoSuchThing } from 'express-bayeux';\nconsole.log(NoSuchThing);` },
];

test('every TypeScript and JavaScript block in README.md and docs/*.md type-checks against the package', () => {
  const { snippets, problems: markerProblems } = repositorySnippets(root);
  assert.deepEqual(markerProblems, [], 'snippet markers');
  // The extraction itself must find the docs' code: a parser that finds nothing passes nothing.
  assert.ok(snippets.length >= 20, `found only ${snippets.length} snippets`);
  assert.ok(snippets.filter((s) => s.file === 'README.md').length >= 2, 'the README\'s snippets');
  assert.ok(snippets.some((s) => s.lang === 'js') && snippets.some((s) => s.fragment), 'js blocks and fragments are found');

  const problems = checkSnippets(root, [...snippets, ...CANARIES]);
  const real = problems.filter((p) => p.snippet.file !== 'canary.md');
  assert.deepEqual(real.map((p) => `${p.where}: ${p.message}`), [], 'documentation snippets that do not type-check');

  for (const canary of CANARIES) {
    assert.ok(problems.some((p) => p.snippet === canary), `the checker did not reject the broken snippet at canary.md:${canary.line}:\n${canary.code}`);
  }
});

test('snippet extraction: languages, fragments and markers', () => {
  const md = [
    '```ts', 'const a: number = 1;', '```',
    '<!-- snippet: fragment -->', '', '```js', 'cometd.use(() => {});', '```',
    '```sh', 'npm test', '```',
    '```html', '<script>', '```',
    '<!-- snippet: whatever -->',
    '<!-- snippet: fragment -->', 'text', '',
  ].join('\n');
  const { snippets, problems } = extractSnippets('x.md', md);
  assert.deepEqual(snippets.map((s) => [s.line, s.lang, s.fragment, s.code]), [
    [1, 'ts', false, 'const a: number = 1;'],
    [6, 'js', true, 'cometd.use(() => {});'],
  ]);
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.match(problems[0]!, /x\.md:15: unknown snippet marker/);
  assert.match(problems[1]!, /x\.md:16: .* is not followed by a code block/);
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]!.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

test('links between the pages point at files and headings that exist', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of docFiles(root)) {
    const text = readFileSync(join(root, file), 'utf8');
    const prose = text.replace(/^(```|~~~)[\s\S]*?^\1\s*$/gm, '');   // links inside code blocks are code
    for (const m of prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z+.-]*:/i.test(target)) continue;   // https:, mailto:
      checked++;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const resolved = path === '' ? file : normalize(join(dirname(file), path)).replace(/\\/g, '/');
      if (!existsSync(join(root, resolved))) {
        broken.push(`${file}: ${target} (no file ${resolved})`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchors(readFileSync(join(root, resolved), 'utf8')).has(anchor)) {
        broken.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`);
      }
    }
  }
  assert.ok(checked >= 50, `only ${checked} links found`);
  assert.deepEqual(broken, []);
});

test('the anchor rule matches GitHub\'s for the headings the docs link to', () => {
  const got = anchors('# `cometd.attach(server, { path, middleware })`\n## What a node\'s death can cost without acks\n## 10,000 held connects\n## A\n## A\n');
  assert.deepEqual([...got], ['cometdattachserver--path-middleware-', 'what-a-nodes-death-can-cost-without-acks', '10000-held-connects', 'a', 'a-1']);
});

test('the README opens with the two set-up commands for a fresh machine', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const first = /```(\w*)\n([\s\S]*?)```/.exec(readme);
  assert.ok(first, 'a code block');
  assert.equal(first[1], 'sh');
  assert.deepEqual(first[2]!.trim().split('\n').map((l) => l.split('#')[0]!.trim()), ['npm install && npm start', 'npm test']);
  assert.equal(readme.slice(0, first.index).trim(), '# express-bayeux', 'nothing before the set-up block but the title');
  // Every page of docs/ is reachable from the index.
  const index = readFileSync(join(root, 'docs', 'README.md'), 'utf8');
  for (const page of docFiles(root).filter((f) => f.startsWith('docs/') && f !== 'docs/README.md')) {
    assert.ok(index.includes(`](${page.slice('docs/'.length)}`), `docs/README.md links to ${page}`);
  }
});
