// Build step: the browser client (lib/client/index.ts) as one ES module,
// dist/browser/client.js, which the middleware serves at <mount>/client.js.
import { build } from 'esbuild';

await build({
  entryPoints: [new URL('../lib/client/index.ts', import.meta.url).pathname],
  outfile: new URL('../dist/browser/client.js', import.meta.url).pathname,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
