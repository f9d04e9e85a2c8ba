import { randomFillSync } from 'node:crypto';

/**
 * Random ids from a pool that the system's CSPRNG refills 4 KiB at a time, each byte handed out
 * once: a call into the CSPRNG per id costs more than the rest of making it (Node's randomUUID
 * pools its randomness the same way). For the pre-session ids of anonymous forms only: the pool
 * holds the next ids in memory before they are handed out, so session ids, which sign a person
 * in, come straight from the CSPRNG (src/http/session.ts).
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let used = POOL_SIZE;

/** `bytes` fresh random bytes (at most 256), base64url. */
export function randomId(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 256) throw new RangeError('randomId: 1 to 256 bytes');
  if (used + bytes > POOL_SIZE) {
    randomFillSync(pool);
    used = 0;
  }
  const id = pool.toString('base64url', used, used + bytes);
  // Zeroed once handed out: a heap dump or a bug reading the pool shows no id already in use.
  pool.fill(0, used, used + bytes);
  used += bytes;
  return id;
}
