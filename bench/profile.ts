/**
 * Summarize a `--cpu-prof` profile: self time by function, overall and for
 * this package's own code (dist/lib), by package/area, and this package's
 * by folder (what the engine costs beside the protocol and transports).
 *
 *   node dist/bench/profile.js bench/results/profiles/<file>.cpuprofile [top] [units]
 *
 * units: what the window did (e.g. deliveries), to show CPU µs per unit.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native/builtin)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 13).split('/').slice(0, url.slice(nm + 13).startsWith('@') ? 2 : 1).join('/');
  if (url.startsWith('node:')) return url.split('/')[0] + (url.includes('/') ? '/' + url.split('/')[1] : '');
  const lib = url.indexOf('/dist/lib/');
  if (lib !== -1) return 'express-bayeux';
  if (url.includes('/dist/bench/')) return 'bench';
  return url;
}

/** The folder of this package's own code a function is in (`lib/engines/redis`, `lib/server`, ...), or undefined. */
function folder(url: string): string | undefined {
  if (url.includes('node_modules/')) return undefined;
  const lib = url.indexOf('/dist/lib/');
  if (lib === -1) return undefined;
  const parts = url.slice(lib + 6).split('/');
  // lib/engines/redis/x.js → lib/engines/redis; lib/server/x.js → lib/server; lib/x.js → lib
  return parts.slice(0, Math.min(parts.length - 1, parts[1] === 'engines' ? 3 : 2)).join('/');
}

function where(url: string, line: number): string {
  const lib = url.indexOf('/dist/');
  const short = lib !== -1 ? url.slice(lib + 6) : url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '');
  return short ? `${short}:${line + 1}` : '';
}

/** `units` (e.g. the deliveries in the profiled window): also show each line as µs of CPU per unit. */
export function summarizeProfile(file: string, top = 25, units = 0): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  }
  const fns = new Map<string, { name: string; where: string; area: string; us: number }>();
  const areas = new Map<string, number>();
  const folders = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const key = `${name}@${url}:${lineNumber}`;
    const a = area(url, name);
    const entry = fns.get(key) ?? { name, where: where(url, lineNumber), area: a, us: 0 };
    entry.us += us;
    fns.set(key, entry);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const f = folder(url);
    if (f) folders.set(f, (folders.get(f) ?? 0) + us);
  }
  const busy = total - (areas.get('(idle)') ?? 0);
  const pct = (us: number, of = busy): string =>
    ((100 * us) / of).toFixed(1).padStart(5) + '%' + (units > 0 ? ` ${(us / units).toFixed(3).padStart(8)} µs/unit` : '');
  const out: string[] = [];
  out.push(`sampled ${(total / 1e6).toFixed(2)} s, busy (not idle) ${(busy / 1e6).toFixed(2)} s; percentages are of busy time` +
    (units > 0 ? `; ${(busy / units).toFixed(3)} µs busy per unit (${units} units)` : ''));
  out.push('\nself time by area:');
  for (const [a, us] of [...areas].filter(([a]) => a !== '(idle)').sort((x, y) => y[1] - x[1]).slice(0, 15)) {
    out.push(`  ${pct(us)}  ${a}`);
  }
  out.push('\nexpress-bayeux self time by folder:');
  for (const [f, us] of [...folders].sort((x, y) => y[1] - x[1])) out.push(`  ${pct(us)}  ${f}`);
  const sorted = [...fns.values()].filter((f) => f.area !== '(idle)').sort((a, b) => b.us - a.us);
  out.push(`\ntop ${top} functions by self time:`);
  for (const f of sorted.slice(0, top)) out.push(`  ${pct(f.us)}  ${f.name}  ${f.where}`);
  out.push('\nexpress-bayeux (dist/lib) functions by self time:');
  for (const f of sorted.filter((f) => f.area === 'express-bayeux').slice(0, top)) out.push(`  ${pct(f.us)}  ${f.name}  ${f.where}`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: profile.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(summarizeProfile(file, Number(process.argv[3] ?? 25), Number(process.argv[4] ?? 0)));
}
