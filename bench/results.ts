import { PACED_MAX_CONNECTIONS, type Measurement } from './load.js';
import { SCENARIOS, WRONG_CODES_PER_SESSION, type BenchOptions } from './options.js';
import {
  describeMachine,
  formatBytes,
  formatRatio,
  median,
  summarise,
  type Row,
  type Verdict,
} from './report.js';
import type { DatabaseState } from './servers.js';

/** What a run measured, and how it becomes the table's rows and the notes under it. */

/** A pair of measurements from one round: the site's and the baseline's. */
export interface Pair {
  site: Measurement;
  baseline: Measurement;
}

export interface Results {
  anonymous: Pair[];
  account: Pair[];
  wrongCode: Pair[];
  redisAnonymous: Measurement[];
  quietPage: Measurement[];
  pageDuringLogins: Measurement[];
  logins: Measurement[];
  visits?: { load: Measurement; before: DatabaseState; after: DatabaseState };
  npmStartSeconds?: number;
}

/** A run's results before anything was measured. */
export function noResults(): Results {
  return {
    anonymous: [],
    account: [],
    wrongCode: [],
    redisAnonymous: [],
    quietPage: [],
    pageDuringLogins: [],
    logins: [],
  };
}

function verdictOf(pass: boolean, ...summaries: { unexpected: number }[]): Verdict {
  if (summaries.some((summary) => summary.unexpected > 0)) return 'INVALID';
  return pass ? 'PASS' : 'FAIL';
}

function comparedRows(pairs: Pair[], names: { site: string; baseline: string }, minimumRatio: number): Row[] {
  if (pairs.length === 0) return []; // not measured in this run (--only)
  const site = summarise(pairs.map((pair) => pair.site));
  const baseline = summarise(pairs.map((pair) => pair.baseline));
  const ratio = median(pairs.map((pair) => pair.site.rps / pair.baseline.rps));
  return [
    {
      scenario: names.site,
      summary: site,
      measured: formatRatio(ratio),
      goal: `≥ ${minimumRatio}×`,
      verdict: verdictOf(ratio >= minimumRatio, site, baseline),
    },
    { scenario: `↳ baseline: ${names.baseline}`, summary: baseline, measured: '', goal: '', verdict: '' },
  ];
}

export function buildRows(results: Results, options: BenchOptions): Row[] {
  const rows: Row[] = [
    ...comparedRows(results.anonymous, { site: 'anonymous GET /login', baseline: 'bare page' }, 0.9),
    ...comparedRows(
      results.account,
      { site: 'signed-in GET /account', baseline: 'bare /account (session)' },
      0.8,
    ),
    ...comparedRows(
      results.wrongCode,
      { site: 'wrong-code POST /verify', baseline: 'bare CSRF + HMAC verify POST' },
      0.8,
    ),
  ];

  if (results.pageDuringLogins.length > 0) rows.push(...loginRows(results, options));

  if (results.visits) {
    const { load, before, after } = results.visits;
    const visitors = load.responses;
    const perVisitor = Math.max(0, after.usedBytes - before.usedBytes) / Math.max(1, visitors);
    const newRows = (after.sessionRows ?? 0) - (before.sessionRows ?? 0);
    rows.push({
      scenario: 'server-side state per anonymous visitor',
      summary: summarise([load]),
      measured: `${perVisitor.toFixed(perVisitor < 10 ? 1 : 0)} B`,
      goal: '0 B',
      verdict: verdictOf(newRows <= 0 && perVisitor < 1, load),
    });
  }
  if (results.npmStartSeconds !== undefined) {
    rows.push({
      scenario: '`npm start`, nothing changed, to first 200',
      measured: `${results.npmStartSeconds.toFixed(2)} s`,
      goal: '≤ 1.5 s',
      verdict: results.npmStartSeconds <= 1.5 ? 'PASS' : 'FAIL',
    });
  }
  if (results.redisAnonymous.length > 0) {
    const redis = summarise(results.redisAnonymous);
    const ratio = median(
      results.redisAnonymous.map((run, round) => run.rps / results.anonymous[round]!.baseline.rps),
    );
    rows.push({
      scenario: 'anonymous GET /login, sessions in Redis',
      summary: redis,
      measured: formatRatio(ratio),
      goal: '—',
      verdict: redis.unexpected > 0 ? 'INVALID' : 'info',
    });
  }
  return rows;
}

function loginRows(results: Results, options: BenchOptions): Row[] {
  const quiet = summarise(results.quietPage);
  const loaded = { ...summarise(results.pageDuringLogins), cpuMsPerRequest: null };
  const logins = summarise(results.logins);
  const p99Ratio = median(
    results.pageDuringLogins.map((run, round) => run.p99Ms / results.quietPage[round]!.p99Ms),
  );
  return [
    {
      scenario: `GET /login p99 during ${options.logins} concurrent logins`,
      summary: loaded,
      measured: `${formatRatio(p99Ratio)} quiet p99`,
      goal: '≤ 2×',
      verdict: verdictOf(p99Ratio <= 2, quiet, loaded, logins),
    },
    { scenario: '↳ quiet: GET /login alone', summary: quiet, measured: '', goal: '', verdict: '' },
  ];
}

function describeStatuses(runs: Measurement[]): string {
  const counts = new Map<number, number>();
  for (const run of runs)
    for (const [status, count] of run.statuses) counts.set(status, (counts.get(status) ?? 0) + count);
  return [...counts]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status} ×${count}`)
    .join(', ');
}

export function describeRun(results: Results, options: BenchOptions, pinningNote: string): string[] {
  const wrongCodesPerRun = options.verifyAccounts * WRONG_CODES_PER_SESSION;
  const lines = [
    `Machine: ${describeMachine()}.`,
    `Pinning: ${pinningNote}.`,
    `Runs: ${options.rounds} interleaved round${options.rounds === 1 ? '' : 's'} (site and baseline take turns going first), ` +
      `${options.durationSeconds} s a run, ${options.connections} connections; the table shows the rounds' medians, ` +
      `and a ratio is the median of each round's site ÷ baseline. CPU/req is the server's CPU time (all threads) per response; RSS the largest seen.`,
    `Site: built output (node dist/src/server.js), NODE_ENV=production, SQLite, codes by SignalWire (a loopback fake: ` +
      `the site makes and checks its codes itself, as the bare verify POST does); flood guards off ` +
      `(RATE_LIMIT_REQUESTS_PER_MINUTE=0, RATE_LIMIT_POSTS_PER_MINUTE=0), toll-fraud limits raised; every request says ` +
      `X-Forwarded-Proto: https from loopback, so the site's Secure cookies are issued and sent back.`,
  ];
  const skipped = SCENARIOS.filter((scenario) => !options.only.has(scenario));
  if (skipped.length > 0) lines.push(`Not measured in this run (--only): ${skipped.join(', ')}.`);
  if (results.wrongCode.length > 0) {
    lines.push(
      `Wrong-code POST /verify: ${options.verifyAccounts} sessions at the code step take ${WRONG_CODES_PER_SESSION} wrong codes each ` +
        `(${wrongCodesPerRun} requests a run over ${Math.min(options.connections, options.verifyAccounts)} connections: ` +
        `a 5th would close the code, 10 pause the account), then the right code resets ` +
        `their counts before the next round. Every response counted is the site's "That code is not right" page; ` +
        `the baseline gets the same number of wrong codes` +
        (options.warmupSeconds > 0
          ? `; both warm up with one such run (the site's codes are then renewed).`
          : '.'),
    );
  }
  if (results.pageDuringLogins.length > 0) {
    lines.push(
      `p99 during logins: GET /login at ${options.pageRate} req/s, evenly spaced and each timed from when it was due ` +
        `(an open loop, up to ${PACED_MAX_CONNECTIONS} keep-alive connections), alone and then while ${options.logins} ` +
        `connections each load /login and post the right ` +
        `password of one of ${options.logins} accounts, each from its own address. Login answers: ${describeStatuses(results.logins) || 'none'}.`,
    );
  }
  if (results.visits) {
    const { load, before, after } = results.visits;
    const sessionRows =
      after.sessionRows === null || before.sessionRows === null
        ? 'no sessions table'
        : `sessions table +${after.sessionRows - before.sessionRows} rows (+${formatBytes((after.sessionBytes ?? 0) - (before.sessionBytes ?? 0))} of sid, data and expiry)`;
    lines.push(
      `State: ${load.responses} cookie-less GET /login; ${sessionRows}; database in use ` +
        `+${formatBytes(after.usedBytes - before.usedBytes)} (SQLite dbstat, every table and index), files on disk ` +
        `+${formatBytes(after.fileBytes - before.fileBytes)}. "measured" is the database's growth per visitor.`,
    );
  }
  if (results.npmStartSeconds !== undefined) {
    lines.push(
      'npm start: from spawning `npm start` (after `npm run build`, nothing changed since) to the first 200 on /healthz.',
    );
  }
  if (!options.redisUrl)
    lines.push('Redis: REDIS_URL not set, so GET /login with sessions in Redis was not measured.');
  const invalid = [
    ['anonymous GET /login', results.anonymous.flatMap((pair) => [pair.site, pair.baseline])],
    ['signed-in GET /account', results.account.flatMap((pair) => [pair.site, pair.baseline])],
    ['wrong-code POST /verify', results.wrongCode.flatMap((pair) => [pair.site, pair.baseline])],
    ['GET /login (p99 row)', [...results.quietPage, ...results.pageDuringLogins]],
    ['logins (p99 row)', results.logins],
    ['anonymous visits', results.visits ? [results.visits.load] : []],
    ['GET /login, Redis', results.redisAnonymous],
  ] as const;
  for (const [name, runs] of invalid) {
    const summary = runs
      .filter((run) => run.unexpectedSummary)
      .map((run) => `${run.unexpectedSummary} (expected ${run.expected})`)
      .join('; ');
    if (summary) lines.push(`INVALID ${name}: ${summary}.`);
  }
  return lines;
}
