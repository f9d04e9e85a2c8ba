import type { Clock } from '../../src/clock.js';

export interface TestClock extends Clock {
  advance(ms: number): void;
  advanceMinutes(minutes: number): void;
  set(date: Date): void;
}

/** A clock that only moves when a test moves it. */
export function createTestClock(start = new Date('2026-11-21T10:00:00Z')): TestClock {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    advance(ms) {
      current += ms;
    },
    advanceMinutes(minutes) {
      current += minutes * 60_000;
    },
    set(date) {
      current = date.getTime();
    },
  };
}
