import { Agent, request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon, { type Options, type RequestSpec } from 'autocannon';
import type { ProcessStats, ServerProcess } from './processes.js';

/**
 * One measured run against one server, with what the report needs: requests per second, latency
 * percentiles of every answer (autocannon's own histogram keeps only 2xx, in whole milliseconds),
 * the server's CPU time per request and its memory, and any answer that was not the one the
 * scenario is about. Throughput runs use autocannon (closed loop: each connection sends its next
 * request when the last one is answered); runPaced sends at a steady rate whatever the answers.
 */

export interface Expectation {
  statuses: number[];
  /** Each answer's body must contain this; one that does not is "another page". */
  bodyIncludes?: string;
  /** The expected answer, in words, for the report. */
  label: string;
}

export interface LoadSpec {
  target: ServerProcess;
  connections: number;
  /** Seconds; or `amount` requests in all; or neither, until stop(). */
  duration?: number;
  amount?: number;
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
  /** Answers with another status or body, connection errors and timeouts. */
  unexpected: number;
  unexpectedSummary: string;
  /** The expected answer, in words. */
  expected: string;
  /** Server CPU time (all threads) per answer; null where /proc is not available. */
  cpuMsPerRequest: number | null;
  rssBytes: number | null;
}

export interface RunningLoad {
  result: Promise<Measurement>;
  stop(): void;
}

/** What one run counted, turned into a Measurement by measurementOf. */
class Tally {
  readonly startedAt = performance.now();
  private readonly before: ProcessStats | null;
  private readonly latencies: number[] = [];
  readonly statuses = new Map<number, number>();
  lastAnswerAt = this.startedAt;
  answers = 0;

  constructor(
    private readonly target: ServerProcess,
    private readonly expect: Expectation,
  ) {
    this.before = target.stats();
  }

  record(status: number, latencyMs: number) {
    this.answers += 1;
    this.lastAnswerAt = performance.now();
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    this.latencies.push(latencyMs);
  }

  private percentile(fraction: number): number {
    if (this.latencies.length === 0) return Number.NaN;
    const sorted = Float64Array.from(this.latencies).sort();
    return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)]!;
  }

  measurement(failures: { otherBodies: number; errors: number; timeouts: number }): Measurement {
    const seconds = (this.lastAnswerAt - this.startedAt) / 1000;
    const after = this.target.stats();
    const unexpectedStatuses = [...this.statuses].filter(
      ([status]) => !this.expect.statuses.includes(status),
    );
    const unexpectedStatusCount = unexpectedStatuses.reduce((sum, [, count]) => sum + count, 0);
    // An answer with another status is nearly always another page too: those are not named twice.
    const otherPages = failures.otherBodies - unexpectedStatusCount;
    const parts = [
      ...unexpectedStatuses.map(([status, count]) => `HTTP ${status} ×${count}`),
      ...(otherPages > 0 ? [`another page ×${otherPages}`] : []),
      ...(failures.errors > 0 ? [`errors ×${failures.errors} (timeouts ×${failures.timeouts})`] : []),
    ];
    const before = this.before;
    return {
      responses: this.answers,
      seconds,
      rps: seconds > 0 ? this.answers / seconds : Number.NaN,
      p50Ms: this.percentile(0.5),
      p99Ms: this.percentile(0.99),
      statuses: this.statuses,
      unexpected: Math.max(unexpectedStatusCount, failures.otherBodies) + failures.errors,
      unexpectedSummary: parts.join(', '),
      expected: this.expect.label,
      cpuMsPerRequest:
        before && after && this.answers > 0 ? (after.cpuMs - before.cpuMs) / this.answers : null,
      rssBytes: after?.rssBytes ?? null,
    };
  }
}

const TIMEOUT_SECONDS = 30;
const SOME_TIME_SECONDS = 3600;

export function startLoad(spec: LoadSpec): RunningLoad {
  const tally = new Tally(spec.target, spec.expect);
  const { bodyIncludes } = spec.expect;
  const options: Options = {
    url: spec.target.origin,
    connections: spec.connections,
    timeout: TIMEOUT_SECONDS,
    ...(spec.amount !== undefined
      ? { amount: spec.amount }
      : { duration: spec.duration ?? SOME_TIME_SECONDS }),
    // A path in the top-level options would lose to the url's own "/": always a list of requests.
    requests: spec.requests ?? [spec.request ?? {}],
    ...(bodyIncludes !== undefined ? { verifyBody: (body: string) => body.includes(bodyIncludes) } : {}),
  };

  let instance: ReturnType<typeof autocannon> | undefined;
  const result = new Promise<Measurement>((resolve, reject) => {
    // autocannon notices the end of an `amount` run only at its next one-second tick, so the
    // run's time is taken to its last answer (Tally.lastAnswerAt), not to this callback.
    instance = autocannon(options, (error, outcome) => {
      if (error) return reject(error);
      resolve(
        tally.measurement({
          otherBodies: outcome.mismatches,
          errors: outcome.errors,
          timeouts: outcome.timeouts,
        }),
      );
    });
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) =>
      tally.record(status, ms),
    );
  });
  return { result, stop: () => instance?.stop() };
}

export function runLoad(spec: LoadSpec): Promise<Measurement> {
  return startLoad(spec).result;
}

export interface PacedSpec {
  target: ServerProcess;
  /** Requests per second, evenly spaced. */
  rate: number;
  /** Seconds of sending. */
  duration: number;
  path: string;
  headers: Record<string, string>;
  expect: Expectation;
}

/** Keep-alive connections a paced run may open; past them, requests wait (and the wait counts). */
export const PACED_MAX_CONNECTIONS = 64;

/**
 * Sends requests at a steady rate, each at its scheduled time whether or not earlier ones were
 * answered (an open loop), and times each from that scheduled time. A server that stalls cannot
 * hide the requests that would have arrived meanwhile ("coordinated omission"), which a closed
 * loop, or autocannon's rate limit (each second's requests in one burst), would.
 */
export async function runPaced(spec: PacedSpec): Promise<Measurement> {
  const tally = new Tally(spec.target, spec.expect);
  const agent = new Agent({ keepAlive: true, maxSockets: PACED_MAX_CONNECTIONS });
  const url = new URL(spec.path, spec.target.origin);
  const failures = { otherBodies: 0, errors: 0, timeouts: 0 };
  const { bodyIncludes } = spec.expect;

  const send = (scheduledAt: number) =>
    new Promise<void>((resolve) => {
      const request = httpRequest(url, { agent, headers: spec.headers }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (text: string) => (body += text));
        response.on('end', () => {
          tally.record(response.statusCode ?? 0, performance.now() - scheduledAt);
          if (bodyIncludes !== undefined && !body.includes(bodyIncludes)) failures.otherBodies += 1;
          resolve();
        });
      });
      request.setTimeout(TIMEOUT_SECONDS * 1000, () => {
        failures.timeouts += 1;
        request.destroy(new Error('timed out'));
      });
      request.once('error', () => {
        failures.errors += 1;
        resolve();
      });
      request.end();
    });

  const intervalMs = 1000 / spec.rate;
  const total = Math.max(1, Math.round(spec.rate * spec.duration));
  const answers: Promise<void>[] = [];
  for (let sent = 0; sent < total;) {
    const scheduledAt = tally.startedAt + sent * intervalMs;
    const wait = scheduledAt - performance.now();
    if (wait > 0) await sleep(wait);
    // Everything already due goes now, each timed from its own schedule.
    while (sent < total && tally.startedAt + sent * intervalMs <= performance.now()) {
      answers.push(send(tally.startedAt + sent * intervalMs));
      sent += 1;
    }
  }
  await Promise.all(answers);
  agent.destroy();
  return tally.measurement(failures);
}
