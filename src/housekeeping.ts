import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from './logger.js';

/**
 * Deletes what is no longer needed (old audit events, expired rows) on a timer, whatever the
 * traffic. Each task removes one small batch per call, and the loop yields to the event loop
 * between batches, so a large backlog never holds a request up for long.
 */
export interface HousekeepingTask {
  name: string;
  /** Removes at most one batch and returns how many items went (fewer than a batch: done for now). */
  runBatch(): number | Promise<number>;
  batchSize: number;
}

export interface Housekeeping {
  /** One full pass over every task (also what the timer runs). */
  runOnce(): Promise<void>;
  stop(): void;
}

/** A pass stops after this many batches of one task, and carries on at the next tick. */
const MAX_BATCHES_PER_PASS = 200;

export function startHousekeeping(options: {
  tasks: HousekeepingTask[];
  intervalMs: number;
  logger: Logger;
}): Housekeeping {
  let running: Promise<void> | null = null;

  async function runTask(task: HousekeepingTask) {
    let removed = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_PASS; batch += 1) {
      const count = await task.runBatch();
      removed += count;
      if (count < task.batchSize) break;
      await nextTurn();
    }
    if (removed > 0) options.logger.info({ task: task.name, removed }, 'housekeeping');
  }

  async function pass() {
    for (const task of options.tasks) {
      try {
        await runTask(task);
      } catch (error) {
        // A locked or unreachable store: try again at the next tick; the site carries on.
        options.logger.warn({ err: error, task: task.name }, 'housekeeping failed');
      }
    }
  }

  const runOnce = () => {
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  };

  const timer = setInterval(() => void runOnce(), options.intervalMs);
  timer.unref();
  return { runOnce, stop: () => clearInterval(timer) };
}
