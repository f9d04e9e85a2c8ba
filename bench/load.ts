import autocannon, { type Options, type RequestSpec } from 'autocannon';
import type { ServerProcess } from './processes.js';

/**
 * One measured run of autocannon against one server, with what the report needs: requests per
 * second, latency percentiles of every response (autocannon's own histogram keeps only 2xx, in
 * whole milliseconds), the server's CPU time per request and its memory, and any response that
 * was not the one the scenario is about.
 */

export interface Expectation {
  statuses: number[];
  /** Each response body must contain this (checked by autocannon: a miss is a "mismatch"). */
  bodyIncludes?: string;
  /** How the expected response is named in the report, e.g. "200 page". */
  label: string;
}

export interface LoadSpec {
  target: ServerProcess;
  connections: number;
  /** Seconds; or `amount` requests in all; or neither, until stop(). */
  duration?: number;
  amount?: number;
  /** Requests per second from all connections (latencies are then corrected for coordinated omission). */
  overallRate?: number;
  /** One request repeated, or `requests` in turn. */
  request?: RequestSpec;
  requests?: RequestSpec[];
  expect: Expectation;
}

export interface Measurement {
  responses: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  statuses: Map<number, number>;
  /** Responses with another status or body, connection errors and timeouts. */
  unexpected: number;
  unexpectedSummary: string;
  /** The expected answer, in words. */
  expected: string;
  /** Server CPU time (all threads) per response; null where /proc is not available. */
  cpuMsPerRequest: number | null;
  rssBytes: number | null;
}

export interface RunningLoad {
  result: Promise<Measurement>;
  stop(): void;
}

/** Samples of one run, with HdrHistogram's correction for a fixed-rate run (recordValueWithExpectedInterval). */
class LatencySamples {
  private values: number[] = [];
  constructor(private readonly expectedIntervalMs?: number) {}

  record(ms: number) {
    this.values.push(ms);
    const interval = this.expectedIntervalMs;
    if (interval === undefined || interval <= 0) return;
    // A response slower than the pace hid the requests that would have been sent meanwhile.
    for (let missed = ms - interval; missed >= interval; missed -= interval) this.values.push(missed);
  }

  percentile(fraction: number): number {
    if (this.values.length === 0) return Number.NaN;
    const sorted = Float64Array.from(this.values).sort();
    return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)]!;
  }
}

const TIMEOUT_SECONDS = 30;
const SOME_TIME_SECONDS = 3600;

export function startLoad(spec: LoadSpec): RunningLoad {
  const samples = new LatencySamples(
    spec.overallRate ? (1000 * spec.connections) / spec.overallRate : undefined,
  );
  const statuses = new Map<number, number>();
  const before = spec.target.stats();
  const startedAt = performance.now();
  // autocannon notices the end of an `amount` run only at its next one-second tick: time to the last answer instead.
  let lastResponseAt = startedAt;
  let responses = 0;

  const { bodyIncludes } = spec.expect;
  const options: Options = {
    url: spec.target.origin,
    connections: spec.connections,
    timeout: TIMEOUT_SECONDS,
    ...(spec.amount !== undefined
      ? { amount: spec.amount }
      : { duration: spec.duration ?? SOME_TIME_SECONDS }),
    ...(spec.overallRate !== undefined ? { overallRate: spec.overallRate } : {}),
    // A path in the top-level options would lose to the url's own "/": always a list of requests.
    requests: spec.requests ?? [spec.request ?? {}],
    ...(bodyIncludes !== undefined ? { verifyBody: (body: string) => body.includes(bodyIncludes) } : {}),
  };

  let instance: ReturnType<typeof autocannon> | undefined;
  const result = new Promise<Measurement>((resolve, reject) => {
    instance = autocannon(options, (error, outcome) => {
      if (error) return reject(error);
      const seconds = (lastResponseAt - startedAt) / 1000;
      const after = spec.target.stats();
      const unexpectedStatuses = [...statuses].filter(([status]) => !spec.expect.statuses.includes(status));
      const unexpectedStatusCount = unexpectedStatuses.reduce((sum, [, count]) => sum + count, 0);
      // An answer with another status is nearly always another page too: those are not named twice.
      const otherPages = outcome.mismatches - unexpectedStatusCount;
      const unexpectedParts = [
        ...unexpectedStatuses.map(([status, count]) => `HTTP ${status} ×${count}`),
        ...(otherPages > 0 ? [`another page ×${otherPages}`] : []),
        ...(outcome.errors > 0 ? [`errors ×${outcome.errors} (timeouts ×${outcome.timeouts})`] : []),
      ];
      resolve({
        responses,
        seconds,
        rps: responses / seconds,
        p50Ms: samples.percentile(0.5),
        p99Ms: samples.percentile(0.99),
        statuses,
        unexpected: Math.max(unexpectedStatusCount, outcome.mismatches) + outcome.errors,
        unexpectedSummary: unexpectedParts.join(', '),
        expected: spec.expect.label,
        cpuMsPerRequest: before && after && responses > 0 ? (after.cpuMs - before.cpuMs) / responses : null,
        rssBytes: after?.rssBytes ?? null,
      });
    });
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      responses += 1;
      lastResponseAt = performance.now();
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      samples.record(ms);
    });
  });
  return { result, stop: () => instance?.stop() };
}

export function runLoad(spec: LoadSpec): Promise<Measurement> {
  return startLoad(spec).result;
}
