import argon2 from 'argon2';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { AppError } from '../errors.js';
import { createArgon2idHasher } from './argon2-hasher.js';

/** OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane. */
export const PASSWORD_HASH_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19 * 1024,
  timeCost: 2,
  parallelism: 1,
} as const;

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;

export interface PasswordHasher {
  hash(password: string, options?: HashingCallOptions): Promise<string>;
  /** Constant-time check. Always does the same work, even for an unknown user (pass null). */
  verify(hash: string | null, password: string, options?: HashingCallOptions): Promise<boolean>;
}

export interface HashingCallOptions {
  /**
   * Aborted when no one waits for the answer any more (the request's connection closed): a call
   * still waiting for its turn leaves the queue (HashingAbandonedError) instead of being hashed for
   * nobody. One already hashing finishes.
   */
  signal?: AbortSignal;
}

/**
 * How many password hashes run at once, and how many may wait for a turn. Each argon2id hash
 * takes a libuv thread and a core for tens of milliseconds (and 19 MiB): without a cap, a burst
 * of logins takes every core, the event loop's too, and every page waits behind them.
 */
export interface HashingLimits {
  concurrency: number;
  /** Hashes waiting beyond `concurrency`; one more is refused with HashingBusyError (a 503 page). */
  maxWaiting: number;
  /**
   * A call whose turn comes after waiting longer than this is refused (HashingBusyError) rather
   * than hashed: its person has most likely given up, and hashing for nobody would only make the
   * next ones wait longer. MAX_HASHING_WAIT_MS unless given.
   */
  maxWaitMs?: number;
}

/**
 * Waiting hashes allowed per running one. At a few tens of ms a hash, the last in the queue waits
 * about 50 hash times (1 to 3 s): longer than that, the person is better told to try again, and
 * the memory a flood of logins holds stays bounded.
 */
const HASHES_WAITING_PER_SLOT = 50;

export const MAX_HASHING_WAIT_MS = 10_000;

/** libuv's thread pool size when UV_THREADPOOL_SIZE is not set. */
export const LIBUV_DEFAULT_THREADPOOL_SIZE = 4;

/**
 * One hash per core beyond the event loop's (at least one), each with 50 places in the queue.
 * In this process argon2 runs on libuv's thread pool, which also reads static files and resolves
 * host names: one of its threads is always left to those. (The hashing child process sizes its
 * own pool to fit: see defaultHashingProcessLimits.)
 */
export function defaultHashingLimits({
  cores = availableParallelism(),
  threadPoolSize = LIBUV_DEFAULT_THREADPOOL_SIZE,
}: { cores?: number; threadPoolSize?: number } = {}): HashingLimits {
  const concurrency = Math.max(1, Math.min(cores - 1, threadPoolSize - 1));
  return { concurrency, maxWaiting: concurrency * HASHES_WAITING_PER_SLOT };
}

/** So many passwords are being checked that this one would wait too long: the 503 "busy" page. */
export class HashingBusyError extends AppError {
  constructor() {
    super(503, 'Many people are logging in or signing up right now. Please try again in a moment.', {
      retryAfterSeconds: 5,
    });
  }
}

/** The call's request went away before its turn: it left the queue unhashed. Nobody sees its page. */
export class HashingAbandonedError extends HashingBusyError {}

/**
 * Runs at most `limits.concurrency` of the inner hasher's calls at once, first come first served;
 * past `limits.maxWaiting` waiting it throws HashingBusyError at once. verify(null, ...) (the
 * decoy for an unknown username) queues like any other check, so its time tells nothing either.
 * A call whose signal aborts while it waits leaves the queue: clients that post a password and
 * hang up cannot keep the queue full of work for no one (HashingCallOptions).
 */
export function limitConcurrentHashing(inner: PasswordHasher, limits: HashingLimits): PasswordHasher {
  let running = 0;
  const waiting: Array<() => void> = [];

  const maxWaitMs = limits.maxWaitMs ?? MAX_HASHING_WAIT_MS;

  /** The call that finishes hands its place straight to the next one, so `running` stays as it is. */
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  };

  /** Waits for a turn; false when the signal aborted first (the place in the queue is given up). */
  const turn = (signal: AbortSignal | undefined) =>
    new Promise<boolean>((resolve) => {
      const take = () => {
        signal?.removeEventListener('abort', leave);
        resolve(true);
      };
      const leave = () => {
        const at = waiting.indexOf(take);
        if (at >= 0) waiting.splice(at, 1);
        resolve(false);
      };
      waiting.push(take);
      signal?.addEventListener('abort', leave, { once: true });
    });

  async function inTurn<T>(work: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (signal?.aborted) throw new HashingAbandonedError();
    if (running < limits.concurrency) {
      running += 1;
    } else if (waiting.length < limits.maxWaiting) {
      const queuedAt = Date.now();
      if (!(await turn(signal))) throw new HashingAbandonedError();
      if (Date.now() - queuedAt > maxWaitMs) {
        release();
        throw new HashingBusyError();
      }
    } else {
      throw new HashingBusyError();
    }
    try {
      return await work();
    } finally {
      release();
    }
  }

  return {
    hash: (password, options) => inTurn(() => inner.hash(password), options?.signal),
    verify: (hash, password, options) => inTurn(() => inner.verify(hash, password), options?.signal),
  };
}

/**
 * argon2id with PASSWORD_HASH_OPTIONS, queued by `limits` (defaultHashingLimits()), in this
 * process: for tests and tools. The site hashes in a child process at the lowest CPU priority
 * instead (createHashingProcess in hashing-process.ts), so that hashing gets only the CPU time
 * that pages leave.
 */
export async function createArgon2Hasher(
  settings: { cost?: typeof PASSWORD_HASH_OPTIONS; limits?: HashingLimits } = {},
): Promise<PasswordHasher> {
  const argon2Hasher = await createArgon2idHasher(settings.cost ?? PASSWORD_HASH_OPTIONS);
  return limitConcurrentHashing(argon2Hasher, settings.limits ?? defaultHashingLimits());
}

// The common-passwords list of zxcvbn-ts (about 50,000 entries from public breach corpora), made
// at the first password checked: unpacking it took a tenth of a second of every start (issue 10).
let commonPasswords: Set<string> | undefined;

function loadCommonPasswords(): Set<string> {
  const { dictionary } = createRequire(import.meta.url)(
    '@zxcvbn-ts/language-common',
  ) as typeof import('@zxcvbn-ts/language-common');
  return new Set(dictionary['passwords-common'].filter((word: string) => word.length >= PASSWORD_MIN_LENGTH));
}

export function isCommonPassword(password: string): boolean {
  commonPasswords ??= loadCommonPasswords();
  return commonPasswords.has(password.toLowerCase());
}
