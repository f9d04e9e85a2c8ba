import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Retries `attempt` until it stops throwing, for at most `withinMs`; then throws its last error.
 * For a store that comes back by itself (a pool opening new connections, a client reconnecting).
 */
export async function eventually<T>(
  attempt: () => Promise<T>,
  { withinMs = 10_000, everyMs = 100 }: { withinMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(everyMs);
    }
  }
}
