/**
 * The balancer configurations shipped in `deploy/` (HAProxy and nginx), run
 * for real: a copy of the shipped file with local ports put in place of its
 * example addresses, checked (`haproxy -c`, `nginx -t`), then started in
 * the foreground in a temporary folder. Nothing else in the file changes,
 * so what the tests run is what users copy.
 *
 * The shipped files name three addresses, each exactly once:
 * `0.0.0.0:8000` (where the balancer listens) and `10.0.0.11:8080`,
 * `10.0.0.12:8080` (the two nodes).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

export type BalancerKind = 'haproxy' | 'nginx';

const deploy = fileURLToPath(new URL('../../../deploy/', import.meta.url));

/** The shipped file for `kind`. */
export function shippedConfig(kind: BalancerKind): string {
  return join(deploy, kind === 'haproxy' ? 'haproxy.cfg' : 'nginx.conf');
}

/** The binary on PATH or in /usr/sbin (where Debian puts both), or undefined. */
export function findBinary(kind: BalancerKind): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      accessSync(join(dir, kind), constants.X_OK);
      return join(dir, kind);
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The shipped text with `listen` and the node ports in place of the example
 * addresses; each must be named exactly once outside comments.
 */
export function fillIn(text: string, listen: number, nodes: readonly [number, number]): string {
  const places: [string, string][] = [
    ['0.0.0.0:8000', `127.0.0.1:${listen}`],
    ['10.0.0.11:8080', `127.0.0.1:${nodes[0]}`],
    ['10.0.0.12:8080', `127.0.0.1:${nodes[1]}`],
  ];
  const lines = text.split('\n');
  for (const [from, to] of places) {
    const at = lines.flatMap((line, i) => (!/^\s*#/.test(line) && line.includes(from) ? [i] : []));
    if (at.length !== 1) throw new Error(`the shipped config names ${from} on ${at.length} lines, not one`);
    const i = at[0] as number;
    lines[i] = (lines[i] as string).replace(from, to);
  }
  return lines.join('\n');
}

export interface RunningBalancer {
  readonly kind: BalancerKind;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** What `haproxy -c` / `nginx -t` said. */
  readonly check: string;
  /** What the process wrote (the last 20 kB). */
  readonly output: string;
  /** Stop the process (SIGTERM, SIGKILL after 3 s) and remove its folder. */
  close(): Promise<void>;
}

async function listening(port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Write the filled-in copy, check it (throws with the tool's output if the
 * check fails or warns), start the balancer in the foreground and wait
 * (bounded) until it listens.
 */
export async function startHttpBalancer(kind: BalancerKind, nodes: readonly [number, number]): Promise<RunningBalancer> {
  const binary = findBinary(kind);
  if (!binary) throw new Error(`${kind} not found`);
  const dir = mkdtempSync(join(tmpdir(), `bayeux-${kind}-`));
  chmodSync(dir, 0o755); // nginx's workers run as nobody
  const listen = await freePort();
  let text = fillIn(readFileSync(shippedConfig(kind), 'utf8'), listen, nodes);
  let checkArgs: string[];
  let runArgs: string[];
  const file = join(dir, kind === 'haproxy' ? 'haproxy.cfg' : 'nginx.conf');
  if (kind === 'haproxy') {
    checkArgs = ['-c', '-f', file];
    runArgs = ['-db', '-f', file]; // -db: foreground, no daemon
  } else {
    // Where this run keeps its files (the system's /var/lib/nginx and
    // /var/log/nginx are not ours): added to the http block, nothing changed.
    const paths = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
      .map((name) => `    ${name}_temp_path ${join(dir, name)};`).join('\n');
    text = text.replace(/^http \{$/m, `http {\n    access_log off;\n${paths}`);
    const common = ['-p', dir, '-e', join(dir, 'error.log'), '-c', file];
    checkArgs = ['-t', ...common, '-g', `pid ${join(dir, 'nginx.pid')};`];
    runArgs = [...common, '-g', `pid ${join(dir, 'nginx.pid')}; daemon off;`];
  }
  writeFileSync(file, text);
  const checked = spawnSync(binary, checkArgs, { encoding: 'utf8', timeout: 15_000 });
  const check = `${checked.stdout ?? ''}${checked.stderr ?? ''}`;
  if (checked.status !== 0 || /\[(WARNING|ALERT)\]|\[warn\]|\[emerg\]/.test(check)) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${kind} check of the shipped config failed (exit ${checked.status}):\n${check}`);
  }
  const child: ChildProcess = spawn(binary, runArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  // SIGTERM, not SIGKILL: nginx's master then stops its workers too.
  const reap = () => child.kill('SIGTERM');
  process.once('exit', reap);
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    }
    process.removeListener('exit', reap);
    rmSync(dir, { recursive: true, force: true });
  };
  if (!(await listening(listen, 10_000))) {
    await close();
    throw new Error(`${kind} did not listen on ${listen} within 10 s: ${output}`);
  }
  return {
    kind,
    origin: `http://127.0.0.1:${listen}`,
    check,
    get output() {
      return output;
    },
    close,
  };
}
