/**
 * The long-polling scenarios of issue 10, against Faye in one run:
 *
 *   burst: S long-polling subscribers; 200 messages published back to back
 *          in batches of 10 (20 requests at once). Deliveries/s until all
 *          S × 200 arrived, server CPU per delivery (counted until every
 *          subscriber has its next connect in again), heap per subscriber.
 *   wsheap: S WebSocket subscribers, heap per subscriber only.
 *   held:  N long-polling clients, each with one held `/meta/connect`.
 *          Heap per held connect (heapUsed after GC with them held, minus
 *          before they came), then one publish and the time until all N
 *          have it, and server CPU per delivery.
 *
 * Each rig (a fresh server with its subscribers) does one unmeasured
 * warm-up burst or broadcast, then the measured one. Rounds alternate
 * which server goes first; every figure is the median over the rounds.
 */
import { nowUs, type ServerKind } from './common.js';
import { CONTENDED_CORES, fmt, label, machineBusy, median, ratio } from './machine.js';
import { Rig } from './rig.js';

export interface ScenarioConfig {
  servers: ServerKind[];
  burstSizes: number[];
  held: number;
  rounds: number;
  clients: number;
  heldClients: number;
  payload: number;
  /** CPU profiles of each measured burst or broadcast (start to every connect back in) into this directory. */
  profileDir?: string;
  /** Write heap snapshots of each server without and with its subscribers (first round) into this directory. */
  snapshotDir?: string;
}

/** Messages in one burst, and per published request. */
const BURST_MESSAGES = 200;
const BURST_BATCH = 10;

export type ScenarioName = 'burst' | 'held' | 'wsheap';

export interface Measured {
  scenario: ScenarioName;
  server: ServerKind;
  size: number;
  round: number;
  subscribers: number;
  heapKiBPerSub: number;
  rssKiBPerSub: number;
  /** burst: deliveries/s over the burst; held: NaN. */
  deliveriesPerSec: number;
  /** burst: ms from the first publish to the last delivery; held: ms from the publish to the last of N deliveries. */
  ms: number;
  /** held: ms from the publish until the server ended its last response (what it wrote, apart from what the clients read); burst: NaN. */
  serverMs: number;
  /** CPU ms the server and the load clients used, from the publish until every connect is back in. */
  serverCpuMs: number;
  clientCpuMs: number;
  /** Server CPU µs per delivery, until every subscriber reconnected. */
  cpuUsPerDelivery: number;
  delivered: number;
  otherCores: number;
  contended: boolean;
}

/** Publish `batches` batches of `batch` back to back; measure until all arrived and every connect is back in. */
async function shot(rig: Rig, batches: number, batch: number, profileFile?: string): Promise<Omit<Measured, 'scenario' | 'server' | 'size' | 'round' | 'subscribers' | 'heapKiBPerSub' | 'rssKiBPerSub'>> {
  const from = rig.publisher.sent + 1;
  rig.clients.start(from);
  if (profileFile) await rig.server.profileStart();
  const cpu0 = await rig.server.cpu();
  const self0 = process.cpuUsage();
  const m0 = machineBusy();
  const w0 = performance.now();
  const t0 = nowUs();
  for (let i = 0; i < batches; i++) rig.publisher.batch(batch);
  const to = rig.publisher.sent;
  const at = await rig.complete(from, to, 60_000);
  await rig.settle(15_000);
  const cpu1 = await rig.server.cpu();
  const m1 = machineBusy();
  const self = process.cpuUsage(self0);
  const seconds = (performance.now() - w0) / 1000;
  if (profileFile) await rig.server.profileStop(profileFile);
  rig.clients.stop(to);
  const reports = await rig.clients.report();
  const received = reports.reduce((a, r) => a + r.received, 0);
  const expected = batches * batch * rig.clients.subscribers;
  const clientSec = reports.reduce((a, r) => a + r.cpuUser + r.cpuSystem, 0) / 1e6;
  const serverSec = (cpu1.cpu - cpu0.cpu) / 1e6;
  const otherCores = (m1 - m0 - serverSec - clientSec - (self.user + self.system) / 1e6) / seconds;
  const ms = (at - t0) / 1000;
  return {
    deliveriesPerSec: (expected / ms) * 1000,
    ms,
    serverMs: cpu1.lastEnd > t0 ? (cpu1.lastEnd - t0) / 1000 : NaN,
    serverCpuMs: serverSec * 1000,
    clientCpuMs: clientSec * 1000,
    cpuUsPerDelivery: (serverSec * 1e6) / Math.max(1, received),
    delivered: received / expected,
    otherCores,
    contended: otherCores > CONTENDED_CORES,
  };
}

async function one(scenario: ScenarioName, kind: ServerKind, size: number, round: number, config: ScenarioConfig): Promise<Measured> {
  const held = scenario === 'held';
  const rig = await Rig.up({
    kind,
    transport: scenario === 'wsheap' ? 'websocket' : 'long-polling',
    subscribers: size,
    batch: held ? 1 : BURST_BATCH,
    clients: held ? config.heldClients : config.clients,
    payload: config.payload,
    setupTimeoutMs: 120_000,
    tag: `${scenario}${size}`,
    ...(config.snapshotDir && round === 0 ? { snapshot: `${config.snapshotDir}/${kind}-${scenario}${size}` } : {}),
  });
  try {
    const [batches, batch] = held ? [1, 1] : [BURST_MESSAGES / BURST_BATCH, BURST_BATCH];
    const none = { deliveriesPerSec: NaN, ms: NaN, serverMs: NaN, serverCpuMs: NaN, clientCpuMs: NaN, cpuUsPerDelivery: NaN, delivered: 1, otherCores: 0, contended: false };
    if (scenario !== 'wsheap') await shot(rig, batches, batch); // warm-up
    const profileFile = config.profileDir ? `${config.profileDir}/${kind}-${scenario}${size}-${Date.now()}.cpuprofile` : undefined;
    const shotResult = scenario === 'wsheap' ? none : await shot(rig, batches, batch, profileFile);
    const m = held ? shotResult : { ...shotResult, serverMs: NaN };
    if (profileFile) console.log(`  CPU profile of the measured ${scenario}: ${profileFile}`);
    const result: Measured = {
      scenario, server: kind, size, round, subscribers: rig.clients.subscribers,
      heapKiBPerSub: rig.heapKiBPerSub, rssKiBPerSub: rig.rssKiBPerSub, ...m,
    };
    console.log(
      `  ${label(kind)} round ${round + 1}: heap ${fmt(result.heapKiBPerSub, 2)} KiB/${held ? 'held connect' : 'subscriber'}, ` +
        (held || scenario === 'wsheap' ? '' : `${fmt(result.deliveriesPerSec, 0)} deliveries/s, `) +
        `${fmt(result.ms, 0)} ms to deliver` +
        (held ? ` (${fmt(result.serverMs, 0)} ms until the server's last answer; CPU ms server ${fmt(result.serverCpuMs, 0)}, load clients ${fmt(result.clientCpuMs, 0)})` : '') +
        `, cpu ${fmt(result.cpuUsPerDelivery, 2)} µs/delivery` +
        (result.delivered < 0.999 ? `; only ${fmt(result.delivered * 100, 1)}% delivered` : '') +
        (result.contended ? ` — CONTENDED: ${fmt(result.otherCores, 2)} cores of other work` : ''),
    );
    return result;
  } finally {
    await rig.down();
  }
}

export interface Summary {
  scenario: ScenarioName;
  size: number;
  rows: Array<{ server: ServerKind; deliveriesPerSec: number; ms: number; serverMs: number; cpuUsPerDelivery: number; heapKiBPerSub: number; contendedRounds: number; rounds: number }>;
  ratios: { deliveriesPerSec?: number; ms?: number; serverMs?: number; cpuUsPerDelivery?: number; heapKiBPerSub?: number };
  targets: Record<string, boolean>;
}

function summarize(scenario: ScenarioName, size: number, all: Measured[], servers: ServerKind[]): Summary {
  const rows = servers.map((server) => {
    const mine = all.filter((m) => m.server === server);
    return {
      server,
      deliveriesPerSec: median(mine.map((m) => m.deliveriesPerSec)),
      ms: median(mine.map((m) => m.ms)),
      serverMs: median(mine.map((m) => m.serverMs)),
      cpuUsPerDelivery: median(mine.map((m) => m.cpuUsPerDelivery)),
      heapKiBPerSub: median(mine.map((m) => m.heapKiBPerSub)),
      contendedRounds: mine.filter((m) => m.contended).length,
      rounds: mine.length,
    };
  });
  const b = rows.find((r) => r.server === 'bayeux');
  const f = rows.find((r) => r.server === 'faye');
  const ratios = {
    deliveriesPerSec: ratio(b?.deliveriesPerSec, f?.deliveriesPerSec),
    ms: ratio(b?.ms, f?.ms),
    serverMs: ratio(b?.serverMs, f?.serverMs),
    cpuUsPerDelivery: ratio(b?.cpuUsPerDelivery, f?.cpuUsPerDelivery),
    heapKiBPerSub: ratio(b?.heapKiBPerSub, f?.heapKiBPerSub),
  };
  const targets: Record<string, boolean> = {};
  if (scenario === 'burst') {
    if (ratios.deliveriesPerSec !== undefined) targets['deliveries/s >= 1.2x'] = ratios.deliveriesPerSec >= 1.2;
    if (ratios.cpuUsPerDelivery !== undefined) targets['cpu/delivery <= 0.7x'] = ratios.cpuUsPerDelivery <= 0.7;
  } else if (scenario === 'wsheap') {
    if (ratios.heapKiBPerSub !== undefined) targets['heap/websocket subscriber <= 0.5x'] = ratios.heapKiBPerSub <= 0.5;
  } else {
    if (ratios.heapKiBPerSub !== undefined) targets['heap/held connect <= 0.7x'] = ratios.heapKiBPerSub <= 0.7;
    if (ratios.ms !== undefined) targets['broadcast time <= 0.7x'] = ratios.ms <= 0.7;
  }
  return { scenario, size, rows, ratios, targets };
}

/** Run the scenario at one size: `rounds` rounds, each server once per round, the order alternating. */
export async function runScenario(scenario: ScenarioName, size: number, config: ScenarioConfig): Promise<{ summary: Summary; runs: Measured[] }> {
  console.log(`${scenario} S=${size}: ${config.rounds} round(s), ${config.servers.map(label).join(' and ')} interleaved`);
  const runs: Measured[] = [];
  for (let round = 0; round < config.rounds; round++) {
    const order = round % 2 ? [...config.servers].reverse() : config.servers;
    for (const kind of order) runs.push(await one(scenario, kind, size, round, config));
  }
  return { summary: summarize(scenario, size, runs, config.servers), runs };
}

export function printSummaries(summaries: Summary[]): void {
  if (summaries.length === 0) return;
  const head = ['deliv/s', 'ms to deliver', 'cpu µs/deliv', 'heap KiB/sub'];
  const line = (name: string, cells: string[]): string => name.padEnd(36) + cells.map((c) => c.padStart(15)).join('');
  console.log('');
  console.log(line('', head));
  for (const s of summaries) {
    const what = { held: ' (heap per held connect; ms: one publish to all)', burst: ' (200 messages in batches of 10)', wsheap: ' (websocket subscribers: heap only)' };
    console.log(`${s.scenario} S=${s.size}${what[s.scenario]}`);
    for (const r of s.rows) {
      const star = r.contendedRounds ? ` *${r.contendedRounds}/${r.rounds}` : '';
      console.log(line('  ' + label(r.server) + star, [
        s.scenario === 'held' ? '-' : fmt(r.deliveriesPerSec, 0), fmt(r.ms, 0), fmt(r.cpuUsPerDelivery, 2), fmt(r.heapKiBPerSub, 2),
      ]));
    }
    const x = (v: number | undefined): string => (v === undefined ? '-' : fmt(v, 2) + 'x');
    console.log(line('  ratio bayeux/faye', [s.scenario === 'held' ? '-' : x(s.ratios.deliveriesPerSec), x(s.ratios.ms), x(s.ratios.cpuUsPerDelivery), x(s.ratios.heapKiBPerSub)]));
    if (s.scenario === 'held') {
      const servers = s.rows.map((r) => `${label(r.server)} ${fmt(r.serverMs, 0)} ms`).join(', ');
      console.log(`  until the server's last answer (what it wrote, not what the clients read): ${servers}; ratio ${x(s.ratios.serverMs)}`);
    }
    const t = Object.entries(s.targets);
    if (t.length) console.log('  targets: ' + t.map(([k, ok]) => `${k} ${ok ? 'met' : 'MISSED'}`).join(', '));
  }
  console.log('medians over rounds; *k/n: k of n rounds had other work on the machine (numbers suspect).');
}
