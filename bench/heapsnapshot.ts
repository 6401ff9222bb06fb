/**
 * What a set of connections costs in the heap: compare two V8 heap
 * snapshots of the server (without and with N subscribers or held
 * connects) by kind of object, and divide by N.
 *
 *   node dist/bench/heapsnapshot.js without.heapsnapshot with.heapsnapshot N [top]
 *
 * Objects are grouped by constructor name; closures by function name
 * ("closure fn"); strings, code and the engine's internal arrays by kind.
 * Self size only: what each kind of object itself occupies, which sums to
 * the heap difference, not what it keeps alive.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export type Census = Map<string, { count: number; bytes: number }>;

function group(type: string, name: string): string {
  switch (type) {
    case 'object':
      return name;
    case 'closure':
      return `closure ${name || '(anonymous)'}`;
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return `(${type})`;
    case 'code':
      return '(code)';
    case 'number':
      return '(heap number)';
    case 'array':
      return `(array ${name})`;
    case 'hidden':
    case 'object shape':
      return `(${type} ${name.replace(/ \/ .*$/, '')})`;
    default:
      return `(${type}${name && !name.includes(' ') ? ' ' + name : ''})`;
  }
}

export function census(file: string): Census {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const out: Census = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + fType] as number] ?? '?';
    const name = snap.strings[snap.nodes[i + fName] as number] ?? '';
    const key = group(type, name);
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += snap.nodes[i + fSize] as number;
    out.set(key, e);
  }
  return out;
}

/** Per-unit difference of two censuses, the largest first. */
export function diff(without: Census, withN: Census, n: number, top = 30): string {
  const rows: Array<{ key: string; count: number; bytes: number }> = [];
  let total = 0;
  for (const [key, w] of withN) {
    const b = without.get(key) ?? { count: 0, bytes: 0 };
    const bytes = (w.bytes - b.bytes) / n;
    total += bytes;
    rows.push({ key, count: (w.count - b.count) / n, bytes });
  }
  for (const [key, b] of without) if (!withN.has(key)) {
    total -= b.bytes / n;
    rows.push({ key, count: -b.count / n, bytes: -b.bytes / n });
  }
  rows.sort((a, b) => b.bytes - a.bytes);
  const out = [`self size per unit (N=${n}): ${(total / 1024).toFixed(2)} KiB in all`, '     bytes   objects  share  kind'];
  for (const r of rows.slice(0, top)) {
    out.push(`${r.bytes.toFixed(0).padStart(10)} ${r.count.toFixed(2).padStart(9)} ${((100 * r.bytes) / total).toFixed(1).padStart(5)}%  ${r.key}`);
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [a, b, n, top] = process.argv.slice(2);
  if (!a || !b || !n) {
    console.error('usage: heapsnapshot.js without.heapsnapshot with.heapsnapshot N [top]');
    process.exit(2);
  }
  console.log(diff(census(a), census(b), Number(n), Number(top ?? 30)));
}
