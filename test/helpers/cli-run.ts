/**
 * Running the package's command (or any node script) as a child process in
 * a test: its output gathered as it comes, its exit awaited with a bound,
 * and every child still running killed when the test file ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** Run `script` with node; `input`, if given, is written to its stdin, which is then closed (otherwise the test may write to `child.stdin`). */
export function runNode(script: string, args: readonly string[], input?: string): Run {
  const child = spawn(process.execPath, ['--unhandled-rejections=strict', script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PORT: '', EXPRESS_BAYEUX_ADMIN_TOKEN: '' },
  });
  running.add(child);
  const result: Run = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    })),
  };
  child.stdout?.on('data', (chunk: Buffer) => (result.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (result.stderr += chunk.toString()));
  if (input !== undefined) child.stdin?.end(input);
  return result;
}

/** Run to the end (at most `ms`, then it is killed and this rejects) and return the exit code with the output. */
export async function finish(r: Run, ms = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let timer: NodeJS.Timeout | undefined;
  const { code } = await Promise.race([
    r.exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        r.child.kill('SIGKILL');
        reject(new Error(`command did not finish in ${ms} ms; stderr: ${r.stderr}`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
  return { code, stdout: r.stdout, stderr: r.stderr };
}

/** Wait (at most `ms`) until the process has written `pattern` to `stream`. */
export async function output(r: Run, stream: 'stdout' | 'stderr', pattern: RegExp, ms = 10_000): Promise<RegExpExecArray> {
  const end = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(r[stream]);
    if (match) return match;
    if (Date.now() > end || r.child.exitCode !== null) {
      throw new Error(`no ${pattern} on ${stream} in ${ms} ms; stdout: ${r.stdout}; stderr: ${r.stderr}`);
    }
    await sleep(20);
  }
}
