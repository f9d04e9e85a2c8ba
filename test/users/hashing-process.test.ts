import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createHashingProcess,
  defaultHashingProcessLimits,
  HashingUnavailableError,
  type HashingProcess,
} from '../../src/users/hashing-process.js';
import { HashingBusyError, PASSWORD_HASH_OPTIONS, type HashingLimits } from '../../src/users/passwords.js';
import { expectArgon2HasherBehaviour } from '../helpers/password-hasher.js';

// 1 MiB instead of 19: the same code path at a fraction of the CPU (the site's cost is checked in
// passwords.test.ts).
const LOW_COST = { ...PASSWORD_HASH_OPTIONS, memoryCost: 1024 };

let started: HashingProcess[] = [];

async function startHashingProcess(
  limits: HashingLimits = { concurrency: 2, maxWaiting: 10 },
  deadlineMs?: number,
) {
  const hasher = await createHashingProcess({
    cost: LOW_COST,
    limits,
    ...(deadlineMs ? { deadlineMs } : {}),
  });
  started.push(hasher);
  return hasher;
}

afterEach(async () => {
  await Promise.all(started.map((hasher) => hasher.close()));
  started = [];
});

function childPidOf(hasher: HashingProcess): number {
  const pid = hasher.childPid;
  if (pid === undefined) throw new Error('no hashing child is running');
  return pid;
}

/** Alive, and not a zombie (a child whose parent was killed may wait a while to be reaped). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The niceness of each thread of `pid`: field 19 of /proc/<pid>/task/<tid>/stat. */
function threadNiceness(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((threadId) => {
    const stat = readFileSync(`/proc/${pid}/task/${threadId}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fieldsFromState = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fieldsFromState[19 - 3]);
  });
}

describe('password hashing in a child process', () => {
  it('hashes, then verifies the right password and refuses a wrong one and the unknown-user decoy', async () => {
    const hasher = await startHashingProcess();
    await expectArgon2HasherBehaviour(hasher);
  });

  // Threat: a burst of logins taking the cores from the event loop, so that every page waits.
  it.runIf(process.platform === 'linux')(
    'hashes in a process of its own, every thread of it (argon2’s pool too) at the lowest CPU priority, niceness 19',
    async () => {
      const niceBefore = getPriority();
      const hasher = await startHashingProcess();
      await hasher.hash('one long passphrase');
      expect(childPidOf(hasher)).not.toBe(process.pid);

      const niceness = threadNiceness(childPidOf(hasher));
      // The main thread, libuv's pool and V8's own threads.
      expect(niceness.length).toBeGreaterThan(2);
      expect(niceness.every((nice) => nice === 19)).toBe(true);
      // The web process keeps its own priority.
      expect(getPriority()).toBe(niceBefore);
    },
  );

  it('when the child dies, the calls it held fail with a 503 page and the next call starts a new child', async () => {
    const hasher = await startHashingProcess();
    const firstPid = childPidOf(hasher);
    const held = [hasher.hash('one long passphrase'), hasher.verify(null, 'another long passphrase')];
    process.kill(firstPid, 'SIGKILL');

    for (const call of held) {
      await expect(call).rejects.toBeInstanceOf(HashingUnavailableError);
      await expect(call).rejects.toMatchObject({ status: 503, retryAfterSeconds: 5 });
    }
    const hash = await hasher.hash('after the crash');
    expect(await hasher.verify(hash, 'after the crash')).toBe(true);
    expect(childPidOf(hasher)).not.toBe(firstPid);
  });

  it('kills a child that stops answering: its calls get the 503 page, and the next call starts a new child', async () => {
    // The deadline covers a new child's start too: short enough for a quick test, long enough that
    // the replacement starts within it on a loaded machine (at 500 ms it once did not, in CI).
    const hasher = await startHashingProcess({ concurrency: 1, maxWaiting: 5 }, 2_000);
    const stuck = childPidOf(hasher);
    process.kill(stuck, 'SIGSTOP');
    const held = hasher.verify(null, 'a');
    // Queued behind it: its turn comes once the stuck child is gone, on a new one.
    const queued = hasher.verify(null, 'b');
    await expect(held).rejects.toBeInstanceOf(HashingUnavailableError);
    expect(await queued).toBe(false);
    expect(isRunning(stuck)).toBe(false);
    expect(await hasher.verify(null, 'again')).toBe(false);
    expect(childPidOf(hasher)).not.toBe(stuck);
  });

  it('gives the child none of the site’s own environment (secrets, tokens, NODE_OPTIONS)', async () => {
    process.env.KEYHOLE_TEST_SECRET = 'not-for-the-child';
    try {
      const hasher = await startHashingProcess();
      const environment = readFileSync(`/proc/${childPidOf(hasher)}/environ`, 'utf8').split('\0');
      expect(environment.some((entry) => entry.startsWith('KEYHOLE_TEST_SECRET='))).toBe(false);
      expect(environment).toContain('UV_THREADPOOL_SIZE=2');
    } finally {
      delete process.env.KEYHOLE_TEST_SECRET;
    }
  });

  it('waits longer before each restart while children keep dying young, so a crash loop cannot spin', async () => {
    const hasher = await startHashingProcess();
    const restartTimes: number[] = [];
    for (let crash = 0; crash < 2; crash += 1) {
      const pid = childPidOf(hasher);
      const exited = hasher.hash('x').catch(() => undefined);
      process.kill(pid, 'SIGKILL');
      await exited;
      const diedAt = Date.now();
      await hasher.hash('y');
      restartTimes.push(Date.now() - diedAt);
    }
    // 250 ms, then 500 ms (each plus the start itself).
    expect(restartTimes[0]).toBeGreaterThanOrEqual(240);
    expect(restartTimes[1]).toBeGreaterThanOrEqual(490);
  });

  it('close() ends the child, and calls after it are refused with the 503 page', async () => {
    const hasher = await startHashingProcess();
    const pid = childPidOf(hasher);
    await hasher.close();

    expect(isRunning(pid)).toBe(false);
    await expect(hasher.hash('too late')).rejects.toBeInstanceOf(HashingUnavailableError);
  });

  it('keeps answering through Ctrl-C and a stop signal sent to every process of the site, until the site closes it', async () => {
    const hasher = await startHashingProcess();
    const pid = childPidOf(hasher);
    process.kill(pid, 'SIGINT');
    process.kill(pid, 'SIGTERM');

    // The site still has logins in flight while it shuts down.
    const hash = await hasher.hash('during the shutdown');
    expect(await hasher.verify(hash, 'during the shutdown')).toBe(true);
    expect(childPidOf(hasher)).toBe(pid);
  });

  it('the child exits by itself when the web process dies without closing it', async () => {
    // A web process that starts the hasher, says its child's pid, then waits to be killed.
    const script = [
      `import { createHashingProcess } from ${JSON.stringify(new URL('../../src/users/hashing-process.ts', import.meta.url).href)};`,
      `const hasher = await createHashingProcess({ limits: { concurrency: 1, maxWaiting: 0 } });`,
      `console.log(hasher.childPid);`,
      `setInterval(() => {}, 1000);`,
    ].join('\n');
    const web = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [firstLine] = (await once(web.stdout, 'data')) as [Buffer];
    const childPid = Number(firstLine.toString().trim());
    expect(isRunning(childPid)).toBe(true);

    web.kill('SIGKILL');
    for (let waited = 0; isRunning(childPid) && waited < 5000; waited += 50) await sleep(50);
    expect(isRunning(childPid)).toBe(false);
  });

  it('still runs at most `concurrency` hashes and refuses past the queue with HashingBusyError', async () => {
    const hasher = await startHashingProcess({ concurrency: 1, maxWaiting: 0 });
    const [first, second] = await Promise.allSettled([
      hasher.hash('one long passphrase'),
      hasher.verify(null, 'another long passphrase'),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'rejected', reason: expect.any(HashingBusyError) });
  });

  it('defaults to one hash per core beyond the event loop’s, whatever libuv’s default pool size', () => {
    expect(defaultHashingProcessLimits(1)).toEqual({ concurrency: 1, maxWaiting: 50 });
    expect(defaultHashingProcessLimits(2)).toEqual({ concurrency: 1, maxWaiting: 50 });
    expect(defaultHashingProcessLimits(16)).toEqual({ concurrency: 15, maxWaiting: 750 });
  });
});
