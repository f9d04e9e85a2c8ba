import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The processes of a benchmark run: pinning to cores, starting a server and waiting for it to
 * answer, and reading its CPU time and memory from /proc.
 */

export interface Pinning {
  /** Core of the servers under test, and of the load generator (this process); undefined when not pinned. */
  serverCore?: number;
  loadCore?: number;
  /** One line for the report. */
  note: string;
}

export function detectPinning(): Pinning {
  const cores = availableParallelism();
  const hasTaskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!hasTaskset) {
    return {
      note: 'taskset not found: servers and load generator were not pinned, so they shared the cores',
    };
  }
  if (cores < 2) {
    return { note: 'one core only: servers and load generator share it, so nothing was pinned' };
  }
  // All threads of this process (libuv's pool too); the servers are started under `taskset -c 0`.
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  if (pinned.status !== 0) return { note: 'taskset could not pin this process: nothing was pinned' };
  return {
    serverCore: 0,
    loadCore: 1,
    note: 'servers pinned to CPU 0, load generator (autocannon) to CPU 1, with taskset',
  };
}

/** The command line that runs `command` on the servers' core, when there is one. */
export function pinnedCommand(pinning: Pinning, command: string, args: string[]): [string, string[]] {
  if (pinning.serverCore === undefined) return [command, args];
  return ['taskset', ['-c', String(pinning.serverCore), command, ...args]];
}

/** A port free right now on loopback (the OS picks it; the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ProcessStats {
  /** User + system CPU time of every thread so far. */
  cpuMs: number;
  rssBytes: number;
}

let clockTicksPerSecond: number | undefined;

/** From /proc (Linux); null elsewhere, and the report then shows "n/a". */
export function readProcessStats(pid: number): ProcessStats | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its ")" are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    clockTicksPerSecond ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    const rssKb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return { cpuMs: (ticks * 1000) / clockTicksPerSecond, rssBytes: Number(rssKb ?? 0) * 1024 };
  } catch {
    return null;
  }
}

export interface ServerProcess {
  name: string;
  origin: string;
  pid: number;
  stats(): ProcessStats | null;
  /** Waits until the process uses less than 5 % of a core (queued work finished), at most `maxMs`. */
  settle(maxMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const STDERR_TAIL_CHARS = 4000;

/**
 * Starts a server (pinned when pinning is on) and resolves once GET `readyPath` answers 200. Its
 * stdout (the site's request log) goes to /dev/null, so that reading it costs the load generator
 * nothing; stderr is kept for the error message if it does not start.
 */
export async function startServer(options: {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  port: number;
  pinning: Pinning;
  readyPath: string;
  timeoutMs?: number;
}): Promise<ServerProcess> {
  const [command, args] = pinnedCommand(options.pinning, options.command, options.args);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL_CHARS);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const origin = `http://127.0.0.1:${options.port}`;

  const ready = await waitForOk(`${origin}${options.readyPath}`, options.timeoutMs ?? 30_000, exited);
  if (!ready.ok) {
    child.kill('SIGKILL');
    throw new Error(`${options.name} did not start (${ready.reason}).\n${stderr.trim()}`);
  }
  const pid = child.pid!;
  return {
    name: options.name,
    origin,
    pid,
    stats: () => readProcessStats(pid),
    settle: (maxMs = 10_000) => settle(pid, maxMs),
    stop: () => stopChild(child, exited),
  };
}

/** Polls `url` until it answers 200; gives up at the deadline or when `exited` settles first. */
export async function waitForOk(
  url: string,
  timeoutMs: number,
  exited?: Promise<number | null>,
  intervalMs = 25,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  let exitCode: number | null | undefined;
  void exited?.then((code) => (exitCode = code));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) return { ok: false, reason: `it exited with code ${exitCode}` };
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return { ok: true };
    } catch {
      // Not listening yet.
    }
    await sleep(intervalMs);
  }
  return { ok: false, reason: `no 200 from ${url} within ${timeoutMs} ms` };
}

async function settle(pid: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let before = readProcessStats(pid);
  while (before && Date.now() < deadline) {
    await sleep(200);
    const after = readProcessStats(pid);
    if (!after || after.cpuMs - before.cpuMs < 10) return;
    before = after;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(killer);
}
