/**
 * What a set of connections costs in the heap: compare two V8 heap
 * snapshots of the server (without and with N subscribers or held
 * connects) by kind of object, and divide by N.
 *
 *   node dist/bench/heapsnapshot.js without.heapsnapshot with.heapsnapshot N [top]
 *   node dist/bench/heapsnapshot.js --retainers with.heapsnapshot 'kind' ['kind'...]
 *
 *   node dist/bench/heapsnapshot.js --own-shapes with.heapsnapshot [top]
 *
 * --retainers: who points at the objects of a kind (parent kind and edge
 * name, weak edges left out) and, for bound functions, which function each
 * one binds: where an object comes from.
 *
 * Objects are grouped by constructor name; closures by function name
 * ("closure fn"); strings, code and the engine's internal arrays by kind.
 * Self size only: what each kind of object itself occupies, which sums to
 * the heap difference, not what it keeps alive.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export type Census = Map<string, { count: number; bytes: number }>;

/** A snapshot read as a graph: field offsets, node and edge counts, and a node's kind. */
interface Graph {
  snap: Snapshot;
  types: string[];
  etypes: string[];
  width: number;
  ewidth: number;
  count: number;
  fType: number;
  fName: number;
  fEdges: number;
  eType: number;
  eName: number;
  eTo: number;
  kindOf(n: number): string;
}

function readGraph(file: string): Graph {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const { node_fields: nf, node_types, edge_fields: ef, edge_types } = snap.snapshot.meta;
  const types = node_types[0];
  const width = nf.length;
  const fType = nf.indexOf('type');
  const fName = nf.indexOf('name');
  return {
    snap, types, etypes: edge_types[0], width, ewidth: ef.length, count: snap.nodes.length / width,
    fType, fName, fEdges: nf.indexOf('edge_count'),
    eType: ef.indexOf('type'), eName: ef.indexOf('name_or_index'), eTo: ef.indexOf('to_node'),
    kindOf: (n) => group(types[snap.nodes[n * width + fType] as number] ?? '?', snap.strings[snap.nodes[n * width + fName] as number] ?? ''),
  };
}

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

/** For each kind in `kinds`: its retainers (parent kind . edge), and what its bound functions bind. */
export function retainers(file: string, kinds: readonly string[], top = 12): string {
  const { snap, etypes, width, ewidth, count, fEdges, eType, eName, eTo, kindOf } = readGraph(file);
  const wanted = new Set(kinds);
  const tallies = new Map<string, Map<string, number>>();
  const bump = (kind: string, key: string): void => {
    const t = tallies.get(kind) ?? new Map<string, number>();
    t.set(key, (t.get(key) ?? 0) + 1);
    tallies.set(kind, t);
  };
  let e = 0;
  for (let n = 0; n < count; n++) {
    const edges = snap.nodes[n * width + fEdges] as number;
    let parent: string | undefined;
    for (let k = 0; k < edges; k++, e += ewidth) {
      const etype = etypes[snap.edges[e + eType] as number] ?? '?';
      if (etype === 'weak') continue;
      const child = (snap.edges[e + eTo] as number) / width;
      const childKind = kindOf(child);
      parent ??= kindOf(n);
      const raw = snap.edges[e + eName] as number;
      const name = etype === 'element' || etype === 'hidden' ? `[${etype}]` : (snap.strings[raw] ?? '?');
      if (wanted.has(childKind)) bump(childKind, `${parent} .${name}`);
      if (wanted.has(parent) && name === 'bound_function') bump(parent, `binds ${childKind}`);
    }
  }
  const out: string[] = [];
  for (const kind of kinds) {
    out.push(`${kind}:`);
    const rows = [...(tallies.get(kind) ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [key, c] of rows) out.push(`  ${String(c).padStart(8)}  ${key}`);
  }
  return out.join('\n');
}

/**
 * Hidden classes (object shapes) that only one object uses: each costs a
 * shape, and often descriptors, per object. Tallied by the kind of object
 * that owns one, and the property names of the shape (first few).
 */
export function ownShapes(file: string, top = 15): string {
  const { snap, types, etypes, width, ewidth, count, fType, fName, fEdges, eType, eName, eTo, kindOf } = readGraph(file);
  const firstEdge = new Uint32Array(count + 1);
  for (let n = 0; n < count; n++) firstEdge[n + 1] = (firstEdge[n] as number) + (snap.nodes[n * width + fEdges] as number) * ewidth;
  const edgeName = (e: number): string => {
    const t = etypes[snap.edges[e + eType] as number];
    return t === 'element' || t === 'hidden' ? '' : (snap.strings[snap.edges[e + eName] as number] ?? '');
  };
  const users = new Map<number, { n: number; owner: number }>();
  for (let n = 0; n < count; n++) {
    for (let e = firstEdge[n] as number; e < (firstEdge[n + 1] as number); e += ewidth) {
      if (edgeName(e) !== 'map') continue;
      const m = (snap.edges[e + eTo] as number) / width;
      const u = users.get(m) ?? { n: 0, owner: n };
      u.n++;
      users.set(m, u);
    }
  }
  const tally = new Map<string, number>();
  for (const [m, u] of users) {
    if (u.n !== 1 || kindOf(m) !== '(object shape system)') continue;
    // The shape's property names: strings under its descriptor array.
    const names: string[] = [];
    for (let e = firstEdge[m] as number; e < (firstEdge[m + 1] as number); e += ewidth) {
      if (edgeName(e) !== 'descriptors') continue;
      const d = (snap.edges[e + eTo] as number) / width;
      for (let f = firstEdge[d] as number; f < (firstEdge[d + 1] as number) && names.length < 6; f += ewidth) {
        const c = (snap.edges[f + eTo] as number) / width;
        if (types[snap.nodes[c * width + fType] as number] === 'string') names.push(snap.strings[snap.nodes[c * width + fName] as number] ?? '');
      }
    }
    const key = `${kindOf(u.owner)} {${names.join(', ')}${names.length === 6 ? ', …' : ''}}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  const rows = [...tally].sort((a, b) => b[1] - a[1]).slice(0, top);
  return ['shapes used by one object only, by owner {first property names}:', ...rows.map(([k, c]) => `  ${String(c).padStart(8)}  ${k}`)].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv[2] === '--own-shapes') {
  const file = process.argv[3];
  if (!file) process.exit(2);
  console.log(ownShapes(file, Number(process.argv[4] ?? 15)));
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv[2] === '--retainers') {
  const [file, ...kinds] = process.argv.slice(3);
  if (!file || kinds.length === 0) {
    console.error('usage: heapsnapshot.js --retainers with.heapsnapshot kind...');
    process.exit(2);
  }
  console.log(retainers(file, kinds));
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [a, b, n, top] = process.argv.slice(2);
  if (!a || !b || !n) {
    console.error('usage: heapsnapshot.js without.heapsnapshot with.heapsnapshot N [top]');
    process.exit(2);
  }
  console.log(diff(census(a), census(b), Number(n), Number(top ?? 30)));
}
