/**
 * Start and stop a throw-away Redis Cluster for tests: three primaries
 * (`redis-server --cluster-enabled yes`, no persistence, 127.0.0.1, free
 * ports), joined with `redis-cli --cluster create … --cluster-replicas 0
 * --cluster-yes`, and waited for until every node says `cluster_state:ok`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { sleep } from './wait.js';

export interface RedisCluster {
  /** The primaries, each `redis://127.0.0.1:<port>`. */
  readonly urls: readonly string[];
  readonly servers: readonly RedisServer[];
  /** `{ rootNodes }` for `new RedisEngine({ cluster })`. */
  readonly rootNodes: ReadonlyArray<{ url: string }>;
  stop(): Promise<void>;
  /** Stop every primary, then start them again (empty; the cluster forms again from its config files). */
  restart(): Promise<void>;
  /** Kill one primary, start it again empty (same port, same cluster config), and wait for the cluster to be ok. */
  restartOne(index: number): Promise<void>;
}

function run(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Three primaries, all slots covered; rejects if the cluster is not ok within `timeoutMs`. */
export async function startRedisCluster(timeoutMs = 20_000): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'bayeux-cluster-'));
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      servers.push(await startRedisServer({
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}-${process.pid}.conf`), '--cluster-node-timeout', '2000'],
      }));
    }
    await run('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], timeoutMs);
    await waitOk(servers, timeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  const urls = servers.map((s) => s.url);
  const restart = async () => {
    await Promise.all(servers.map((s) => s.restart()));
    await waitOk(servers, timeoutMs);
  };
  const restartOne = async (index: number) => {
    const server = servers[index];
    if (!server) throw new Error(`no primary ${index}`);
    await server.stop();
    await server.restart();
    await waitOk(servers, timeoutMs);
  };
  return { urls, servers, rootNodes: urls.map((url) => ({ url })), stop, restart, restartOne };
}

/** Wait until every node says cluster_state:ok. */
async function waitOk(servers: readonly RedisServer[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const server of servers) {
      const client = createClient({ url: server.url });
      client.on('error', () => {});
      await client.connect();
      try {
        for (;;) {
          const info = String(await client.sendCommand(['CLUSTER', 'INFO']));
          if (info.includes('cluster_state:ok')) break;
          if (Date.now() > deadline) throw new Error(`cluster not ok within ${timeoutMs} ms: ${info}`);
          await sleep(100);
        }
      } finally {
        await client.close().catch(() => undefined);
      }
    }
}
