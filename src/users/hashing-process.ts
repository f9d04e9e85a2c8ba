import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  PASSWORD_HASH_OPTIONS,
  defaultHashingLimits,
  limitConcurrentHashing,
  type HashingLimits,
  type PasswordHasher,
} from './passwords.js';

/**
 * Password hashing in a child process at the lowest CPU priority (hashing-child.ts). In the web
 * process, argon2's threads competed with the event loop for the cores at equal priority, so a
 * burst of logins slowed every page; at niceness 19 they get only the time the pages leave.
 */

/** What the web process asks the child. */
export type HashingQuestion =
  { op: 'hash'; password: string } | { op: 'verify'; hash: string | null; password: string };

/** As sent: `id` pairs each answer with its call. */
export type HashingRequest = HashingQuestion & { id: number };

export type HashingReply =
  /** The decoy hash is made; `priorityProblem` says why the priority could not be lowered, if so. */
  | { type: 'ready'; priorityProblem: string | null }
  | { type: 'answer'; id: number; value: string | boolean }
  | { type: 'failed'; id: number };

/** The hashing process ended (a crash, the OOM killer) or was closed: the 503 page, not a 500. */
export class HashingUnavailableError extends AppError {
  constructor(cause?: unknown) {
    super(503, 'Passwords cannot be checked right now. Please try again in a moment.', {
      retryAfterSeconds: 5,
      cause,
    });
  }
}

export interface HashingProcess extends PasswordHasher {
  /** The running child's process id; undefined before the first start and after an exit. */
  readonly childPid: number | undefined;
  /** Ends the child; later calls are refused with HashingUnavailableError. */
  close(): Promise<void>;
}

/**
 * The hasher while its child is still starting: each call waits for the start, so the site can
 * listen meanwhile (the child's Node start and decoy hash took about half a second of `npm start`,
 * issue 10). Whoever starts it decides what a failed start means (src/server.ts stops the site).
 */
export function hasherOnceStarted(
  starting: Promise<HashingProcess>,
): PasswordHasher & { close(): Promise<void> } {
  return {
    hash: async (password, options) => (await starting).hash(password, options),
    verify: async (hash, password, options) => (await starting).verify(hash, password, options),
    close: async () => (await starting.catch(() => undefined))?.close(),
  };
}

/**
 * One hash per core beyond the event loop's, as in the web process. The child's thread pool is
 * sized to that, so libuv's default pool of 4 threads no longer caps it.
 */
export function defaultHashingProcessLimits(cores = availableParallelism()): HashingLimits {
  return defaultHashingLimits({ cores, threadPoolSize: cores + 1 });
}

/** After a child dies the next one starts this long after; doubled while children keep dying young. */
const FIRST_RESTART_DELAY_MS = 250;
const MAX_RESTART_DELAY_MS = 5_000;
/** A child that lived this long died of something other than a crash loop: back to the first delay. */
const STABLE_CHILD_MS = 10_000;
/**
 * A hash takes tens of milliseconds, seconds when the child only gets the time pages leave. A
 * child that has not answered a call (or said it is ready) after this long is stuck (stopped,
 * frozen, swapping): it is killed, its calls get the 503 page, and the next call starts a new one.
 * Without this, a stuck child would hold every login until the queue filled, with /healthz green.
 */
export const HASHING_CALL_DEADLINE_MS = 30_000;
/** Only what the child needs: never the site's secrets, tokens or NODE_OPTIONS (an --inspect would clash). */
const CHILD_ENVIRONMENT_NAMES = ['PATH', 'SystemRoot', 'TMPDIR', 'TEMP', 'TMP'];

// Under tsx or vitest this file is the .ts source, and the child needs tsx to load its own;
// built, hashing-child.js sits beside this file.
const RUNS_FROM_SOURCE = import.meta.url.endsWith('.ts');
const CHILD_SCRIPT = fileURLToPath(
  new URL(RUNS_FROM_SOURCE ? './hashing-child.ts' : './hashing-child.js', import.meta.url),
);
const CHILD_EXEC_ARGV = RUNS_FROM_SOURCE
  ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href]
  : [];

interface PendingCall {
  resolve(value: string | boolean): void;
  reject(error: Error): void;
  /** Kills the child if the answer has not come by then. */
  deadline: NodeJS.Timeout;
}

interface Child {
  process: ChildProcess;
  pending: Map<number, PendingCall>;
}

/** A child being started (after its back-off) or running. */
interface Start {
  child: Promise<Child>;
  pid: number | undefined;
}

/**
 * Starts the child and resolves once it is ready (its decoy hash made). The hasher it returns
 * queues calls with `limits` (defaultHashingProcessLimits()) in this process, so at most
 * `limits.concurrency` hashes are in the child at once, and its thread pool has that many threads.
 */
export async function createHashingProcess(
  settings: {
    cost?: typeof PASSWORD_HASH_OPTIONS;
    limits?: HashingLimits;
    logger?: Logger;
    /** HASHING_CALL_DEADLINE_MS unless a test needs it shorter. */
    deadlineMs?: number;
  } = {},
): Promise<HashingProcess> {
  const cost = settings.cost ?? PASSWORD_HASH_OPTIONS;
  const limits = settings.limits ?? defaultHashingProcessLimits();
  const { logger } = settings;
  const threadPoolSize = String(Math.min(1024, Math.max(1, limits.concurrency)));
  const deadlineMs = settings.deadlineMs ?? HASHING_CALL_DEADLINE_MS;
  const childEnvironment = Object.fromEntries(
    CHILD_ENVIRONMENT_NAMES.flatMap((name) =>
      process.env[name] === undefined ? [] : [[name, process.env[name]]],
    ),
  );

  let current: Start | null = null;
  let closed = false;
  let nextId = 0;
  let youngDeaths = 0;
  let lastDeathAt = 0;
  let priorityProblemLogged = false;

  function restartDelayMs(): number {
    if (youngDeaths === 0) return 0;
    const delay = Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (youngDeaths - 1));
    return Math.max(0, lastDeathAt + delay - Date.now());
  }

  function startChild(start: Start): Promise<Child> {
    const startedAt = Date.now();
    const child: Child = {
      process: fork(CHILD_SCRIPT, [JSON.stringify(cost)], {
        execArgv: CHILD_EXEC_ARGV,
        env: { ...childEnvironment, UV_THREADPOOL_SIZE: threadPoolSize },
        // Never the site's stdin; what the child says on stderr (a crash) goes to the site's.
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
      pending: new Map(),
    };
    // The channel alone holds this process open, and only while the child starts or owes an answer.
    child.process.unref();
    start.pid = child.process.pid;

    return new Promise((resolve, reject) => {
      let ready = false;
      let ended = false;
      const startDeadline = setTimeout(() => kill(child, 'it did not become ready in time'), deadlineMs);
      startDeadline.unref();
      child.process.on('message', (reply: HashingReply) => {
        if (reply.type === 'ready') {
          ready = true;
          clearTimeout(startDeadline);
          if (reply.priorityProblem !== null && !priorityProblemLogged) {
            priorityProblemLogged = true;
            logger?.warn(
              { problem: reply.priorityProblem },
              'could not lower the CPU priority of password hashing: logins may slow pages down',
            );
          }
          idle(child);
          resolve(child);
          return;
        }
        const call = child.pending.get(reply.id);
        if (!call) return;
        child.pending.delete(reply.id);
        clearTimeout(call.deadline);
        idle(child);
        if (reply.type === 'answer') call.resolve(reply.value);
        else call.reject(new Error('argon2 failed in the hashing process'));
      });

      const end = (reason: string) => {
        if (ended) return;
        ended = true;
        clearTimeout(startDeadline);
        if (current === start) current = null;
        const now = Date.now();
        youngDeaths = now - startedAt < STABLE_CHILD_MS ? youngDeaths + 1 : 1;
        lastDeathAt = now;
        if (!closed)
          logger?.error({ reason, heldCalls: child.pending.size }, 'the password hashing process ended');
        const error = new HashingUnavailableError(new Error(reason));
        for (const call of child.pending.values()) {
          clearTimeout(call.deadline);
          call.reject(error);
        }
        child.pending.clear();
        if (!ready) reject(error);
      };
      child.process.once('exit', (code, signal) =>
        end(`the hashing process exited (${signal ?? `code ${code}`})`),
      );
      child.process.once('error', (error) => end(`the hashing process failed: ${error.message}`));
    });
  }

  /** A stuck child: SIGKILL, which nothing can ignore; its exit rejects every call it held. */
  function kill(child: Child, why: string) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) return;
    logger?.error(
      { why, heldCalls: child.pending.size },
      'the password hashing process is stuck: killing it',
    );
    child.process.kill('SIGKILL');
  }

  function idle(child: Child) {
    if (child.pending.size === 0) child.process.channel?.unref();
  }

  /** The running child, or a new one: after a back-off if the last one died young. */
  function connect(): Promise<Child> {
    if (closed) return Promise.reject(new HashingUnavailableError());
    if (current) return current.child;
    const start: Start = {
      pid: undefined,
      child: sleep(restartDelayMs()).then(() => {
        if (closed) throw new HashingUnavailableError();
        return startChild(start);
      }),
    };
    current = start;
    return start.child;
  }

  async function call(question: HashingQuestion): Promise<string | boolean> {
    const child = await connect();
    if (!child.process.connected) throw new HashingUnavailableError();
    const id = (nextId += 1);
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => kill(child, 'a call went unanswered'), deadlineMs);
      deadline.unref();
      child.pending.set(id, { resolve, reject, deadline });
      child.process.channel?.ref();
      child.process.send({ ...question, id } satisfies HashingRequest, (error) => {
        if (!error || !child.pending.delete(id)) return;
        clearTimeout(deadline);
        idle(child);
        reject(new HashingUnavailableError(error));
      });
    });
  }

  const inner: PasswordHasher = {
    hash: async (password) => (await call({ op: 'hash', password })) as string,
    verify: async (hash, password) => (await call({ op: 'verify', hash, password })) as boolean,
  };
  const limited = limitConcurrentHashing(inner, limits);

  // The site does not start without a working hasher.
  await connect();

  return {
    hash: limited.hash,
    verify: limited.verify,
    get childPid() {
      return current?.pid;
    },
    async close() {
      closed = true;
      const child = await current?.child.catch(() => null);
      if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
      const exited = once(child.process, 'exit');
      // The child exits when its channel closes (as it does when this process dies).
      child.process.disconnect();
      await exited;
    },
  };
}
