import { HashingBusyError, type PasswordHasher } from '../../src/users/passwords.js';

export interface HeldHasher {
  /** A fast stand-in for argon2: hash(p) is `fake:${p}`; verify(null, ...) is the decoy check. */
  hasher: PasswordHasher;
  /** Every call that reached this hasher (so got past any queue in front of it), in order. */
  calls: Array<{ kind: 'hash' | 'verify'; hash?: string | null; password: string }>;
  /** Calls started and not yet finished, and the most there ever were at once. */
  readonly running: number;
  readonly maxRunning: number;
  /** From now on each call waits until released (a slow hash, as argon2 is under load). */
  hold(): void;
  /** Lets the oldest waiting call finish. */
  releaseOne(): void;
  /** Lets every waiting call finish, and later ones run at once. */
  release(): void;
}

export function createHeldHasher(): HeldHasher {
  let held = false;
  let running = 0;
  let maxRunning = 0;
  const waiting: Array<() => void> = [];
  const calls: HeldHasher['calls'] = [];

  async function run<T>(call: HeldHasher['calls'][number], answer: () => T): Promise<T> {
    calls.push(call);
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      if (held) await new Promise<void>((resolve) => waiting.push(resolve));
      return answer();
    } finally {
      running -= 1;
    }
  }

  return {
    hasher: {
      hash: (password) => run({ kind: 'hash', password }, () => `fake:${password}`),
      verify: (hash, password) =>
        run({ kind: 'verify', hash, password }, () => hash !== null && hash === `fake:${password}`),
    },
    calls,
    get running() {
      return running;
    },
    get maxRunning() {
      return maxRunning;
    },
    hold() {
      held = true;
    },
    releaseOne() {
      waiting.shift()?.();
    },
    release() {
      held = false;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

export interface StallingHasher {
  /** A fast stand-in for argon2 (hash(p) is `fake:${p}`), except for one password. */
  hasher: PasswordHasher;
  /**
   * Answers the stalled check busy, as the queue does with a check that waited longer than it may
   * (MAX_HASHING_WAIT_MS); undefined until that check has started.
   */
  readonly answerStalledBusy: (() => void) | undefined;
}

/** Every check answers at once, but one with `stalledPassword` waits until the test answers it busy. */
export function createStallingHasher(stalledPassword: string): StallingHasher {
  let answerStalledBusy: (() => void) | undefined;
  return {
    hasher: {
      hash: async (password) => `fake:${password}`,
      verify: (hash, password) =>
        password === stalledPassword
          ? new Promise<boolean>((_, reject) => {
              answerStalledBusy = () => reject(new HashingBusyError());
            })
          : Promise.resolve(hash === `fake:${password}`),
    },
    get answerStalledBusy() {
      return answerStalledBusy;
    },
  };
}
