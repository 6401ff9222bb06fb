/**
 * The documentation's code, checked: every fenced ```ts / ```typescript /
 * ```js / ```javascript block of README.md and docs/*.md is extracted and
 * type-checked against the package's own types, as a module of its own that
 * imports `express-bayeux` the way an application does.
 *
 * How a snippet becomes a module:
 *
 * - A complete snippet is compiled as it stands: it must import what it
 *   uses. It is written under `dist/` (inside this package), so
 *   `import … from 'express-bayeux'` resolves through the package's own
 *   `exports` map to the built `dist/lib/*.d.ts` (Node's and TypeScript's
 *   self-reference), and `express`, `connect`, `express-session`, `ws` and
 *   `@types/*` come from this repository's node_modules.
 * - A fragment is a block preceded by the line `<!-- snippet: fragment -->`.
 *   It may use the names in {@link PREAMBLE} (`app`, `server`, `cometd`,
 *   `client`, …) without declaring them; each name the fragment uses and
 *   does not declare or import itself gets its preamble line. Nothing else
 *   is supplied, so a fragment with any other free name fails.
 *
 * Every other fence (sh, html, nginx, haproxy, ini, yaml, none) is not
 * checked. Any other `<!-- snippet: … -->` marker is an error.
 */

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

/** A fenced code block to check. */
export interface Snippet {
  /** Path of the Markdown file, relative to the repository. */
  file: string;
  /** 1-based line of the opening fence in that file. */
  line: number;
  lang: 'ts' | 'js';
  code: string;
  fragment: boolean;
}

/** One problem, located in the Markdown file. */
export interface SnippetProblem {
  /** `file:line`, the line inside the Markdown file. */
  where: string;
  message: string;
  snippet: Snippet;
}

const CHECKED: Record<string, 'ts' | 'js'> = { ts: 'ts', typescript: 'ts', js: 'js', javascript: 'js' };
const FRAGMENT_MARKER = '<!-- snippet: fragment -->';
const ANY_MARKER = /^<!--\s*snippet:/;

/**
 * What a fragment may leave undeclared, as a TypeScript line and a
 * JavaScript (JSDoc) line. Keep this list short: each entry is a name the
 * reader of the docs is told about in the text around the fragment.
 */
export const PREAMBLE: Record<string, { ts: string; js: string }> = {
  express: { ts: `import express from 'express';`, js: `import express from 'express';` },
  bayeux: { ts: `import { bayeux } from 'express-bayeux';`, js: `import { bayeux } from 'express-bayeux';` },
  BayeuxError: { ts: `import { BayeuxError } from 'express-bayeux';`, js: `import { BayeuxError } from 'express-bayeux';` },
  BayeuxClient: { ts: `import { BayeuxClient } from 'express-bayeux/client';`, js: `import { BayeuxClient } from 'express-bayeux/client';` },
  app: decl('app', `import('express').Express`),
  server: decl('server', `import('node:http').Server`),
  cometd: decl('cometd', `import('express-bayeux').BayeuxMiddleware`),
  client: decl('client', `import('express-bayeux/client').BayeuxClient`),
  url: decl('url', 'string'),
  clientId: decl('clientId', 'string'),
  isValidToken: decl('isValidToken', '(token: unknown) => boolean'),
  authenticate: decl('authenticate', '(token: unknown) => Promise<{ id: string; name: string }>'),
  requireAdmin: decl('requireAdmin', `import('express').RequestHandler`),
};

function decl(name: string, type: string): { ts: string; js: string } {
  return {
    ts: `declare const ${name}: ${type};`,
    js: `/** @type {${type}} */ const ${name} = /** @type {any} */ (undefined);`,
  };
}

/** The fenced blocks of one Markdown text that are checked, and marker misuse. */
export function extractSnippets(file: string, text: string): { snippets: Snippet[]; problems: string[] } {
  const lines = text.split('\n');
  const snippets: Snippet[] = [];
  const problems: string[] = [];
  let pendingMarker: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const trimmed = raw.trim();
    if (ANY_MARKER.test(trimmed)) {
      if (trimmed !== FRAGMENT_MARKER) problems.push(`${file}:${i + 1}: unknown snippet marker ${trimmed} (only ${FRAGMENT_MARKER} exists)`);
      else pendingMarker = i + 1;
      continue;
    }
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(raw);
    if (!open) {
      if (trimmed !== '' && pendingMarker !== undefined) {
        problems.push(`${file}:${pendingMarker}: ${FRAGMENT_MARKER} is not followed by a code block`);
        pendingMarker = undefined;
      }
      continue;
    }
    const indent = open[1]!.length;
    const fence = open[2]!;
    const lang = CHECKED[open[3]!.toLowerCase()];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trim().startsWith(fence[0]!.repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.slice(Math.min(indent, l.length - l.trimStart().length)));
    }
    if (lang) {
      snippets.push({ file, line: i + 1, lang, code: body.join('\n'), fragment: pendingMarker !== undefined });
    } else if (pendingMarker !== undefined) {
      problems.push(`${file}:${pendingMarker}: ${FRAGMENT_MARKER} before a block that is not checked (${open[3] || 'no language'})`);
    }
    pendingMarker = undefined;
    i = j;
  }
  if (pendingMarker !== undefined) problems.push(`${file}:${pendingMarker}: ${FRAGMENT_MARKER} is not followed by a code block`);
  return { snippets, problems };
}

/** The names a snippet binds itself: imports and top-level-looking declarations. */
export function boundNames(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/\bimport\s+(?:type\s+)?([^'";]*?)\s+from\s+['"]/g)) {
    const clause = m[1]!;
    const braces = /\{([^}]*)\}/.exec(clause);
    if (braces) {
      for (const part of braces[1]!.split(',')) {
        const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()?.trim();
        if (name) names.add(name);
      }
    }
    const star = /\*\s+as\s+([\w$]+)/.exec(clause);
    if (star) names.add(star[1]!);
    const def = /^([\w$]+)/.exec(clause.trim());
    if (def && def[1] !== 'type') names.add(def[1]!);
  }
  for (const m of code.matchAll(/\b(?:const|let|var|function|class)\s+([A-Za-z_$][\w$]*)/g)) names.add(m[1]!);
  for (const m of code.matchAll(/\b(?:const|let|var)\s*\{([^}]*)\}/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part.split(':').pop()?.split('=')[0]?.trim();
      if (name) names.add(name);
    }
  }
  return names;
}

/** The module text for a snippet, and how many lines precede its code. */
export function moduleText(snippet: Snippet): { text: string; offset: number } {
  const head: string[] = [];
  if (snippet.fragment) {
    const bound = boundNames(snippet.code);
    for (const [name, lines] of Object.entries(PREAMBLE)) {
      if (!bound.has(name) && new RegExp(`(^|[^\\w$.])${name.replace(/\$/g, '\\$')}(?![\\w$])`).test(snippet.code)) head.push(lines[snippet.lang]);
    }
  }
  // Imports first (hoisted anyway), then declarations; `export {}` keeps a snippet without imports a module.
  head.sort((a, b) => Number(!a.startsWith('import')) - Number(!b.startsWith('import')));
  return { text: [...head, snippet.code, 'export {};', ''].join('\n'), offset: head.length };
}

/** The Markdown files whose snippets are checked: README.md and docs/*.md (sorted). */
export function docFiles(root: string): string[] {
  const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

/**
 * Type-check snippets in one TypeScript program. Writes them under
 * `<root>/dist/docs-snippets-*` (removed afterwards) and returns every
 * diagnostic, located in its Markdown file.
 */
export function checkSnippets(root: string, snippets: Snippet[]): SnippetProblem[] {
  const dir = mkdtempSync(join(root, 'dist', 'docs-snippets-'));
  try {
    const files = new Map<string, { snippet: Snippet; offset: number }>();
    snippets.forEach((snippet, index) => {
      const { text, offset } = moduleText(snippet);
      const name = join(dir, `snippet-${String(index).padStart(3, '0')}.${snippet.lang === 'ts' ? 'ts' : 'js'}`);
      writeFileSync(name, text);
      files.set(name, { snippet, offset });
    });
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      strict: true,
      allowJs: true,
      checkJs: true,
      noEmit: true,
      skipLibCheck: true,
      esModuleInterop: true,
      types: ['node'],
      typeRoots: [join(root, 'node_modules', '@types')],
    };
    const program = ts.createProgram([...files.keys()], options);
    const problems: SnippetProblem[] = [];
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
      const source = diagnostic.file && files.get(diagnostic.file.fileName);
      if (!diagnostic.file || !source) {
        // A global problem (options, a library) concerns every snippet: report it on the first.
        const first = snippets[0];
        if (first) problems.push({ where: 'compiler', message: `TS${diagnostic.code}: ${message}`, snippet: first });
        continue;
      }
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
      const inCode = line - source.offset;
      const where = inCode >= 0 ? `${source.snippet.file}:${source.snippet.line + 1 + inCode}` : `${source.snippet.file}:${source.snippet.line} (preamble)`;
      problems.push({ where, message: `TS${diagnostic.code}: ${message}`, snippet: source.snippet });
    }
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Read and extract every checked snippet of the repository's docs. */
export function repositorySnippets(root: string): { snippets: Snippet[]; problems: string[] } {
  const snippets: Snippet[] = [];
  const problems: string[] = [];
  for (const file of docFiles(root)) {
    const found = extractSnippets(file, readFileSync(join(root, file), 'utf8'));
    snippets.push(...found.snippets);
    problems.push(...found.problems);
  }
  return { snippets, problems };
}
