import { spawn } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { TEST_REDIS_URL } from '../helpers/services.js';

/**
 * The benchmark is run in every test run, briefly (--smoke: 1 s a scenario, one round, 200
 * visits), so that it cannot rot unnoticed. Its speeds are never asserted here: shared machines
 * are too noisy for that. What is asserted is that every scenario ran, measured what it says it
 * measures (a row whose answers were not the expected page is INVALID) and printed numbers.
 */

const SMOKE_TIMEOUT_MS = 300_000;

type Cells = Record<string, string>;

function tableRows(stdout: string): Map<string, Cells> {
  const lines = stdout.split('\n').filter((line) => line.startsWith('|'));
  const split = (line: string) =>
    line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim());
  const header = split(lines[0] ?? '');
  const rows = new Map<string, Cells>();
  for (const line of lines.slice(2)) {
    const cells = split(line);
    rows.set(cells[0]!, Object.fromEntries(header.map((name, index) => [name, cells[index] ?? ''])));
  }
  return rows;
}

function runBench(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'bench', '--', '--smoke'], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const NUMBER = /^[\d,.]+$/;
const DURATION = /^[\d.]+ (ms|s)$/;
const RATIO = /^\d+\.\d\d×$/;

describe('npm run bench', () => {
  it(
    'runs every scenario against the site and the baseline and prints a row of numbers for each (speeds not asserted)',
    async () => {
      const withRedis = inject('services').redis;
      const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: withRedis ? TEST_REDIS_URL : '' };
      const { code, stdout, stderr } = await runBench(env);
      expect(code, `${stdout}\n${stderr}`).toBe(0);
      const rows = tableRows(stdout);

      const measuredRows = [
        ['anonymous GET /login', RATIO],
        ['signed-in GET /account', RATIO],
        ['wrong-code POST /verify', RATIO],
        ['GET /login p99 during 10 concurrent logins', /^\d+\.\d\d× quiet p99$/],
        ['server-side state per anonymous visitor', /^\d+(\.\d)? B$/],
        ...(withRedis ? [['anonymous GET /login, sessions in Redis', RATIO] as const] : []),
      ] as const;
      for (const [scenario, measured] of measuredRows) {
        const row = rows.get(scenario);
        expect(row, `no row "${scenario}" in:\n${stdout}`).toBeDefined();
        expect(row!['req/s'], scenario).toMatch(NUMBER);
        expect(row!.p50, scenario).toMatch(DURATION);
        expect(row!.p99, scenario).toMatch(DURATION);
        expect(row!.measured, scenario).toMatch(measured);
        expect(row!.result, `${scenario}\n${stdout}`).toMatch(/^(PASS|FAIL|info)$/);
      }
      for (const baseline of [
        '↳ baseline: bare page',
        '↳ baseline: bare /account (session)',
        '↳ baseline: bare CSRF + HMAC verify POST',
        '↳ quiet: GET /login alone',
      ]) {
        expect(rows.get(baseline)?.['req/s'], baseline).toMatch(NUMBER);
      }
      const start = rows.get('`npm start`, nothing changed, to first 200');
      expect(start?.measured).toMatch(/^\d+\.\d\d s$/);
      expect(start?.result).toMatch(/^(PASS|FAIL)$/);
      expect(stdout).toMatch(/^Machine: .+, \d+ cores/m);
      expect(stdout).toMatch(/^Pinning: /m);
    },
    SMOKE_TIMEOUT_MS,
  );
});
