import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  enterRightCode,
  inBatches,
  logInToCodeStep,
  makeAccounts,
  register,
  type CodeSession,
} from './accounts.js';
import { startFakeSignalWire, type FakeSignalWire } from './fake-signalwire.js';
import { runLoad, runPaced, startLoad, type LoadSpec, type PacedSpec } from './load.js';
import { WRONG_CODES_PER_SESSION, readOptions, type Scenario } from './options.js';
import { detectPinning, type ServerProcess } from './processes.js';
import { formatTable } from './report.js';
import { buildRows, describeRun, noResults, type Pair, type Results } from './results.js';
import {
  LOGIN_FORM,
  LOGIN_STORM,
  PROXY_HEADERS,
  WRONG_CODE,
  accountPage,
  anonymousPage,
  loginRequests,
  signedInPage,
  wrongCodeRequests,
  type WrongCodeSession,
} from './scenarios.js';
import { dropRedisKeys, measureNpmStart, readDatabaseState, startBaseline, startSite } from './servers.js';
import { createVisitor, csrfTokenIn } from './visitor.js';

/**
 * `npm run bench`: the site against a bare Express app, side by side in one run (see README,
 * "Performance"). Prints one Markdown table and the notes that say how it was measured. Exits 0
 * whatever the numbers, unless --check is given: then a missed goal or a row that could not be
 * measured exits 1.
 */

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

const SETUP_CONCURRENCY = 4;

const startedAt = performance.now();
const log = (message: string) =>
  process.stderr.write(`[bench ${((performance.now() - startedAt) / 1000).toFixed(1)} s] ${message}\n`);

function build() {
  log('building the site (npm run build)…');
  const result = spawnSync('npm', ['run', 'build'], { cwd: REPO, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
}

async function main() {
  const options = readOptions(process.argv.slice(2));
  const wants = (scenario: Scenario) => options.only.has(scenario);
  const loadBefore = loadavg()[0]!;
  const pinning = detectPinning();
  build();

  const workDir = mkdtempSync(join(tmpdir(), 'keyhole-bench-'));
  const databasePath = join(workDir, 'site.db');
  const redisKeyPrefix = `keyhole-bench-${randomBytes(4).toString('hex')}:`;
  const servers: ServerProcess[] = [];
  let fake: FakeSignalWire | undefined;
  const stopServers = () => Promise.all(servers.splice(0).map((server) => server.stop()));
  const interrupted = () => {
    void stopServers().finally(() => {
      rmSync(workDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  const results: Results = noResults();
  try {
    fake = await startFakeSignalWire();
    const providerUrl = fake.baseUrl;
    // The Redis row is GET /login: without that scenario there is nothing to measure on Redis.
    const redisUrl = wants('anonymous') ? options.redisUrl : undefined;
    log('starting the site, the baseline app' + (redisUrl ? ' and the site on Redis…' : '…'));
    const keep = async (started: Promise<ServerProcess>) => {
      const server = await started;
      servers.push(server);
      return server;
    };
    const [site, baseline, redisSite] = await Promise.all([
      keep(startSite(REPO, workDir, pinning, { databasePath, providerUrl })),
      keep(startBaseline(REPO, pinning)),
      redisUrl
        ? keep(
            startSite(
              REPO,
              workDir,
              pinning,
              {
                databasePath: join(workDir, 'site-redis.db'),
                providerUrl,
                redisUrl,
                redisKeyPrefix,
              },
              'site (Redis sessions)',
            ),
          )
        : undefined,
    ]);

    // --- Setup: accounts made and logged in through the site's own forms. ---
    const runId = randomBytes(3).toString('hex');
    const password = `bench-${randomBytes(12).toString('base64url')}`;
    const accounts = makeAccounts({
      prefix: `b${runId}u`,
      count: 1 + options.verifyAccounts + options.logins,
      password,
    });
    const signedInAccount = accounts[0]!;
    // Only the accounts of the scenarios measured are registered (each costs a password hash).
    const verifyAccounts = wants('wrong-code') ? accounts.slice(1, 1 + options.verifyAccounts) : [];
    const loginAccounts = wants('logins') ? accounts.slice(1 + options.verifyAccounts) : [];
    const registered = [signedInAccount, ...verifyAccounts, ...loginAccounts];
    log(`registering ${registered.length} accounts (the site hashes each password)…`);
    await inBatches(registered, SETUP_CONCURRENCY, (account) => register(site.origin, account, fake!));
    const signedIn = await enterRightCode(await logInToCodeStep(site.origin, signedInAccount, fake));
    // As a browser does after the code: the first page of the new session also sets its CSRF
    // cookie, which every later page then reuses.
    await signedIn.get('/account');
    const siteAccountCookie = signedIn.cookieHeader();
    const logInAll = (list = verifyAccounts) =>
      inBatches(list, SETUP_CONCURRENCY, (account) => logInToCodeStep(site.origin, account, fake!));
    if (verifyAccounts.length > 0)
      log(`logging ${verifyAccounts.length} accounts in as far as the code page…`);
    let codeSessions: CodeSession[] = await logInAll();
    /** Whether the sessions' codes have had wrong guesses since they were sent. */
    let codesGuessed = false;

    const baselineVisitor = createVisitor(baseline.origin, '203.0.113.253');
    await baselineVisitor.post('/login', { username: 'someone' });
    const baselineAccountCookie = baselineVisitor.cookieHeader();
    const baselineSessions: WrongCodeSession[] = await Promise.all(
      verifyAccounts.map(async () => {
        const visitor = createVisitor(baseline.origin, '203.0.113.253');
        const page = await visitor.get('/verify');
        const token = csrfTokenIn(page.html) ?? '';
        return { cookie: visitor.cookieHeader(), token, wrongCode: '000000' };
      }),
    );

    const measure = async (spec: LoadSpec) => {
      await spec.target.settle(30_000);
      return runLoad(spec);
    };
    const duration = options.durationSeconds;
    const throughput = { connections: options.connections, duration };
    const anonymousOn = (target: ServerProcess): LoadSpec => ({
      ...throughput,
      target,
      request: anonymousPage,
      expect: LOGIN_FORM,
    });
    const accountOn = (target: ServerProcess): LoadSpec =>
      target === site
        ? {
            ...throughput,
            target,
            request: signedInPage(siteAccountCookie),
            expect: accountPage(signedInAccount.username),
          }
        : {
            ...throughput,
            target,
            request: signedInPage(baselineAccountCookie),
            expect: accountPage('someone'),
          };
    const wrongCodesOn = (target: ServerProcess, sessions: WrongCodeSession[]): LoadSpec => ({
      target,
      connections: Math.min(options.connections, sessions.length),
      amount: sessions.length * WRONG_CODES_PER_SESSION,
      requests: wrongCodeRequests(sessions),
      expect: WRONG_CODE,
    });
    const pagesAtRate = (target: ServerProcess): PacedSpec => ({
      target,
      rate: options.pageRate,
      duration,
      path: '/login',
      headers: PROXY_HEADERS,
      expect: LOGIN_FORM,
    });
    const siteWrongCodeSessions = () =>
      codeSessions.map((session) => ({
        cookie: session.visitor.cookieHeader(),
        token: session.token,
        wrongCode: session.wrongCode,
      }));

    if (options.warmupSeconds > 0) {
      log('warming up…');
      for (const target of [site, baseline, ...(redisSite ? [redisSite] : [])]) {
        await measure({ ...anonymousOn(target), duration: options.warmupSeconds });
      }
      for (const target of [site, baseline])
        await measure({ ...accountOn(target), duration: options.warmupSeconds });
      if (wants('wrong-code')) {
        await measure(wrongCodesOn(baseline, baselineSessions));
        await measure(wrongCodesOn(site, siteWrongCodeSessions()));
        codesGuessed = true;
      }
    }

    for (let round = 0; round < options.rounds; round += 1) {
      log(`round ${round + 1} of ${options.rounds}…`);
      // Who goes first alternates, so that drift over the run (heat, other load) evens out.
      const both = async (spec: (target: ServerProcess) => LoadSpec): Promise<Pair> => {
        if (round % 2 === 0) {
          const siteRun = await measure(spec(site));
          return { site: siteRun, baseline: await measure(spec(baseline)) };
        }
        const baselineRun = await measure(spec(baseline));
        return { site: await measure(spec(site)), baseline: baselineRun };
      };
      if (wants('anonymous')) {
        results.anonymous.push(await both(anonymousOn));
        if (redisSite) results.redisAnonymous.push(await measure(anonymousOn(redisSite)));
      }
      if (wants('account')) results.account.push(await both(accountOn));

      if (wants('wrong-code')) await measureWrongCodes(both);
      if (wants('logins')) await measureLogins();
    }

    async function measureWrongCodes(both: (spec: (target: ServerProcess) => LoadSpec) => Promise<Pair>) {
      if (codesGuessed) {
        // The right code resets each account's failure count and resend cooldown; then a new code.
        log(`new codes for ${codeSessions.length} accounts (the site hashes each password)…`);
        await inBatches(codeSessions, SETUP_CONCURRENCY, enterRightCode);
        codeSessions = await logInAll();
      }
      const siteSessions = siteWrongCodeSessions();
      codesGuessed = true;
      results.wrongCode.push(
        await both((target) => wrongCodesOn(target, target === site ? siteSessions : baselineSessions)),
      );
    }

    async function measureLogins() {
      await site.settle(30_000);
      results.quietPage.push(await runPaced(pagesAtRate(site)));
      await site.settle(30_000);
      const logins = startLoad({
        target: site,
        connections: options.logins,
        requests: loginRequests(loginAccounts),
        expect: LOGIN_STORM,
      });
      // Long enough for every login connection to have its first password in the queue.
      await sleep(Math.min(1000, (duration * 1000) / 2));
      results.pageDuringLogins.push(await runPaced(pagesAtRate(site)));
      logins.stop();
      results.logins.push(await logins.result);
    }

    if (wants('visits')) {
      log(`${options.visits} cookie-less visits to GET /login…`);
      await site.settle(30_000);
      const before = readDatabaseState(databasePath);
      const load = await measure({
        target: site,
        connections: options.connections,
        amount: options.visits,
        request: anonymousPage,
        expect: LOGIN_FORM,
      });
      results.visits = { load, before, after: readDatabaseState(databasePath) };
    }

    await stopServers();
    if (wants('start')) {
      log('timing npm start…');
      results.npmStartSeconds = await measureNpmStart(REPO, pinning, { databasePath, providerUrl });
    }
  } finally {
    await stopServers();
    await fake?.close();
    if (options.redisUrl) await dropRedisKeys(options.redisUrl, redisKeyPrefix).catch(() => undefined);
    rmSync(workDir, { recursive: true, force: true });
  }

  const rows = buildRows(results, options);
  console.log(`\n## Keyhole benchmark\n`);
  console.log(formatTable(rows));
  console.log();
  for (const line of describeRun(results, options, pinning.note)) console.log(line);
  // Pinning does not keep other processes off the servers' core: a busy machine shows here.
  console.log(
    `Load average (1 min): ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end.`,
  );
  const failed = rows.some((row) => row.verdict === 'FAIL' || row.verdict === 'INVALID');
  if (options.check && failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
