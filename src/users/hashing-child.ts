/**
 * The password hashing process (started by hashing-process.ts). It runs argon2 at the lowest CPU
 * priority, so that the kernel gives the web process's event loop a core whenever it wants one
 * and hashing gets only the time left over. Passwords arrive over the IPC channel and are never
 * logged or written anywhere.
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { HashingReply, HashingRequest } from './hashing-process.js';

const LOWEST_PRIORITY = 19;

/** Lowers one thread (`threadId`) or, with 0, the calling thread; says why if it could not. */
function lowerPriority(threadId: number): string | null {
  try {
    setPriority(threadId, LOWEST_PRIORITY);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

// First of all, before argon2 loads and libuv starts its thread pool: Linux keeps a niceness per
// thread, and a new thread takes its creator's.
const problems = [lowerPriority(0)];

if (!process.send) {
  console.error('hashing-child.js is started by the site (hashing-process.ts), not on its own.');
  process.exit(1);
}
// The web process closed the channel or died: nobody is left to answer.
process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal and systemd's stop reach every process of the site: this one stays until
// the site has finished the logins in flight and closes the channel (or dies).
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

const { createArgon2idHasher } = await import('./argon2-hasher.js');
const cost = JSON.parse(process.argv[2] ?? '') as Parameters<typeof createArgon2idHasher>[0];
const hasher = await createArgon2idHasher(cost);

// Loading this file already read files on libuv's pool (and V8 started its own threads), so those
// threads were made before the line above: lower every thread there is now, by its id.
if (process.platform === 'linux') {
  for (const threadId of threadIds()) problems.push(lowerPriority(threadId));
}

function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];
  }
}

async function answer(request: HashingRequest): Promise<HashingReply> {
  try {
    const value =
      request.op === 'hash'
        ? await hasher.hash(request.password)
        : await hasher.verify(request.hash, request.password);
    return { type: 'answer', id: request.id, value };
  } catch {
    // Only the fact: an argon2 error message could quote its input.
    return { type: 'failed', id: request.id };
  }
}

process.on('message', (request: HashingRequest) => {
  void answer(request).then((reply) => process.send?.(reply));
});

const ready: HashingReply = {
  type: 'ready',
  priorityProblem: problems.find((problem) => problem !== null) ?? null,
};
process.send(ready);
