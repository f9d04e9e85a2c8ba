import { parseArgs } from 'node:util';

/** The command line of `npm run bench` (see USAGE), with the smaller --smoke defaults. */

/** Wrong codes per session and round: a fifth would close the code, and ten pause the account. */
export const WRONG_CODES_PER_SESSION = 4;

/** The scenarios, by the names --only takes; a run measures all of them unless told otherwise. */
export const SCENARIOS = ['anonymous', 'account', 'wrong-code', 'logins', 'visits', 'start'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  /** The scenarios this run measures. */
  only: ReadonlySet<Scenario>;
  durationSeconds: number;
  rounds: number;
  warmupSeconds: number;
  connections: number;
  visits: number;
  verifyAccounts: number;
  logins: number;
  pageRate: number;
  check: boolean;
  redisUrl?: string;
}

const USAGE = `Usage: npm run bench -- [options]
  --duration S         seconds per measured run (default 10)
  --rounds N           interleaved rounds; the table shows their medians (default 3)
  --warmup S           seconds of warm-up per page before the first round (default 3)
  --connections N      connections for the throughput rows (default 50)
  --visits N           cookie-less GET /login for the session-state row (default 100000)
  --verify-accounts N  accounts whose codes are guessed wrong, ${WRONG_CODES_PER_SESSION} times each a round (default 100)
  --logins N           concurrent logins in the p99 row (default 50)
  --page-rate N        GET /login per second while its p99 is measured (default 200)
  --only A,B,…         measure only these scenarios (${SCENARIOS.join(', ')}); default all.
                       The others get no row, and --check judges only the rows measured
  --smoke              a quick run that only shows the benchmark works (1 s runs, 1 round)
  --check              exit 1 when a goal is missed or a row could not be measured
Set REDIS_URL to also measure GET /login with sessions in Redis.`;

export function readOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      visits: { type: 'string' },
      'verify-accounts': { type: 'string' },
      logins: { type: 'string' },
      'page-rate': { type: 'string' },
      only: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const smoke = values.smoke;
  const number = (name: keyof typeof values, full: number, quick: number, min = 1) => {
    const raw = values[name];
    if (raw === undefined) return smoke ? quick : full;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min)
      throw new Error(`--${name} must be a number of at least ${min}`);
    return value;
  };
  return {
    only: readScenarios(values.only),
    durationSeconds: number('duration', 10, 1),
    rounds: Math.floor(number('rounds', 3, 1)),
    warmupSeconds: number('warmup', 3, 0, 0),
    connections: Math.floor(number('connections', 50, 50)),
    visits: Math.floor(number('visits', 100_000, 200)),
    verifyAccounts: Math.floor(number('verify-accounts', 100, 5)),
    logins: Math.floor(number('logins', 50, 10)),
    pageRate: number('page-rate', 200, 200),
    check: values.check,
    redisUrl: process.env.REDIS_URL || undefined,
  };
}

function readScenarios(list: string | undefined): ReadonlySet<Scenario> {
  if (list === undefined) return new Set(SCENARIOS);
  const names = list.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `--only takes a list of ${SCENARIOS.join(', ')}; not: ${unknown.join(', ') || '(empty)'}`,
    );
  }
  return new Set(names as Scenario[]);
}
