import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../src/config.js';
import { PROJECT_ROOT } from '../src/paths.js';
import { problemsOf } from './helpers/config.js';

const BANDWIDTH_ENV: Record<string, string> = {
  MFA_PROVIDER: 'bandwidth',
  BW_ACCOUNT_ID: '9900001',
  BW_USERNAME: 'user',
  BW_PASSWORD: 'pass',
  BW_VOICE_APPLICATION_ID: 'voice-app',
  BW_MESSAGING_APPLICATION_ID: 'msg-app',
  BW_NUMBER: '+12025550100',
};

const PRODUCTION_BANDWIDTH = {
  ...BANDWIDTH_ENV,
  NODE_ENV: 'production',
  SMS_COUNTRIES: 'US',
  PUBLIC_URL: 'https://keyhole.example',
  EMAIL_PROVIDER: 'smtp',
  SMTP_URL: 'smtp://127.0.0.1:9',
  EMAIL_FROM: 'Keyhole <no-reply@example.com>',
  FACTOR_ENCRYPTION_KEY: 'ab'.repeat(32),
};

describe('loadConfig', () => {
  it('runs on its defaults with an empty environment: console provider, SQLite under ./data', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      isProduction: false,
      port: 3000,
      host: '127.0.0.1',
      trustProxy: ['loopback'],
      databasePath: './data/app.db',
      adminUsernames: [],
      adminScopeTtlMinutes: 15,
      codeDigits: 6,
      codeTtlMinutes: 5,
      providers: [{ name: 'console' }],
      sessionSecretGenerated: true,
    });
    expect(config.sessionSecret).toHaveLength(64);
  });

  it('names every bad variable at once, with what is wrong', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      MFA_CODE_DIGITS: '9',
      MFA_CODE_TTL_MINUTES: '30',
      MFA_PROVIDER: 'carrier-pigeon',
      NODE_ENV: 'staging',
      BASE_CALLBACK_URL: 'not a url',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^PORT: must be a whole number/),
        expect.stringMatching(/^MFA_CODE_DIGITS: must be at most 8/),
        expect.stringMatching(/^MFA_CODE_TTL_MINUTES: must be at most 15/),
        expect.stringMatching(/^MFA_PROVIDER: unknown provider "carrier-pigeon"/),
        expect.stringMatching(/^NODE_ENV: must be development, production or test/),
        expect.stringMatching(/^BASE_CALLBACK_URL: must be an http\(s\) URL/),
      ]),
    );
  });

  it('names missing provider variables together with values the schema refused', () => {
    const problems = problemsOf({ PORT: 'eighty', NODE_ENV: 'production', MFA_PROVIDER: 'bandwidth,kandy' });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^PORT: /),
        expect.stringMatching(/^SESSION_SECRET: is required/),
        expect.stringMatching(/^BW_ACCOUNT_ID: is required/),
        expect.stringMatching(/^KANDY_BASE_URL: is required/),
      ]),
    );
  });

  it('refuses the console provider and a plain-http callback address in production', () => {
    const problems = problemsOf({
      NODE_ENV: 'production',
      SESSION_SECRET: 's'.repeat(32),
      SMS_COUNTRIES: 'US',
      PUBLIC_URL: 'https://keyhole.example',
      MFA_PROVIDER: 'signalwire,console',
      SIGNALWIRE_SPACE: 'example',
      SIGNALWIRE_PROJECT: 'project',
      SIGNALWIRE_TOKEN: 'token',
      SIGNALWIRE_NUMBER: '+12025550100',
      BASE_CALLBACK_URL: 'http://mfa.example.com',
      EMAIL_PROVIDER: 'smtp',
      SMTP_HOST: 'smtp.example.com',
      EMAIL_FROM: 'no-reply@example.com',
      FACTOR_ENCRYPTION_KEY: 'ab'.repeat(32),
    });
    expect(problems).toEqual([
      expect.stringMatching(/^MFA_PROVIDER: console only prints codes/),
      expect.stringMatching(/^BASE_CALLBACK_URL: must be https in production/),
    ]);
  });

  it('requires SESSION_SECRET in production and has no default admin there', () => {
    expect(problemsOf({ ...PRODUCTION_BANDWIDTH, SESSION_SECRET: '' })).toEqual([
      expect.stringMatching(/^SESSION_SECRET: is required/),
    ]);
    const config = loadConfig({ ...PRODUCTION_BANDWIDTH, SESSION_SECRET: 's'.repeat(32) });
    expect(config.adminUsernames).toEqual([]);
    expect(config.sessionSecretGenerated).toBe(false);
  });

  it('requires FACTOR_ENCRYPTION_KEY in production, as 64 hex characters, and warns of phone codes at the admin step-up there', () => {
    expect(
      problemsOf({ ...PRODUCTION_BANDWIDTH, SESSION_SECRET: 's'.repeat(32), FACTOR_ENCRYPTION_KEY: '' }),
    ).toEqual([expect.stringMatching(/^FACTOR_ENCRYPTION_KEY: is required/)]);
    expect(problemsOf({ FACTOR_ENCRYPTION_KEY: 'not-hex' })).toEqual([
      expect.stringMatching(/^FACTOR_ENCRYPTION_KEY: must be 64 hex characters/),
    ]);
    const production = loadConfig({ ...PRODUCTION_BANDWIDTH, SESSION_SECRET: 's'.repeat(32) });
    expect(production.factors.encryptionKey).toEqual(Buffer.from('ab'.repeat(32), 'hex'));
    expect(production.factors.adminStepUpFactors).toEqual(['passkey', 'totp', 'sms', 'voice']);
    expect(production.warnings).toEqual([
      expect.stringMatching(/^ADMIN_STEP_UP_FACTORS includes sms and voice/),
    ]);
    const strong = loadConfig({
      ...PRODUCTION_BANDWIDTH,
      SESSION_SECRET: 's'.repeat(32),
      ADMIN_STEP_UP_FACTORS: 'totp, PASSKEY',
    });
    expect(strong.factors.adminStepUpFactors).toEqual(['totp', 'passkey']);
    expect(strong.warnings).toEqual([]);
    // Outside production: no warning, no key (server.ts keeps one beside the database).
    expect(loadConfig({}).factors).toEqual({
      adminStepUpFactors: ['passkey', 'totp', 'sms', 'voice'],
      policy: 'required',
    });
  });

  it('refuses recovery codes or unknown names in ADMIN_STEP_UP_FACTORS, and an unknown MFA_POLICY', () => {
    expect(problemsOf({ ADMIN_STEP_UP_FACTORS: 'passkey,recovery' })).toEqual([
      expect.stringMatching(
        /^ADMIN_STEP_UP_FACTORS: must list some of passkey, totp, sms, voice.*unknown: recovery/,
      ),
    ]);
    expect(problemsOf({ ADMIN_STEP_UP_FACTORS: ' , ' })).toEqual([
      expect.stringMatching(/^ADMIN_STEP_UP_FACTORS: must list some of/),
    ]);
    expect(problemsOf({ MFA_POLICY: 'sometimes' })).toEqual([
      expect.stringMatching(/^MFA_POLICY: must be required or optional/),
    ]);
    expect(loadConfig({ MFA_POLICY: 'optional' }).factors.policy).toBe('optional');
  });

  it('refuses a short SESSION_SECRET', () => {
    expect(problemsOf({ SESSION_SECRET: 'short' })).toEqual([
      expect.stringMatching(/^SESSION_SECRET: must be at least 32/),
    ]);
  });

  it('reads TRUST_PROXY as false, a hop count or a list, and refuses "true"', () => {
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.1, 10.0.0.2' }).trustProxy).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(problemsOf({ TRUST_PROXY: 'true' })).toEqual([expect.stringMatching(/^TRUST_PROXY: /)]);
  });

  it('reads ADMIN_USERNAMES as a comma-separated list, without case or width, as usernames are compared', () => {
    expect(loadConfig({ ADMIN_USERNAMES: 'Alice, bob ,ｃａｒｏｌ' }).adminUsernames).toEqual([
      'alice',
      'bob',
      'carol',
    ]);
  });

  it('names no admin by default, in development either', () => {
    // Threat: with a default name, whoever registers it first on a fresh site is made its admin.
    expect(loadConfig({ NODE_ENV: 'development' }).adminUsernames).toEqual([]);
    expect(loadConfig({ NODE_ENV: 'test' }).adminUsernames).toEqual([]);
  });

  it('names each missing Bandwidth variable when MFA_PROVIDER=bandwidth', () => {
    const problems = problemsOf({ MFA_PROVIDER: 'bandwidth' });
    for (const name of [
      'BW_ACCOUNT_ID',
      'BW_VOICE_APPLICATION_ID',
      'BW_MESSAGING_APPLICATION_ID',
      'BW_NUMBER',
      'BW_USERNAME',
      'BW_PASSWORD',
    ]) {
      expect(problems.some((problem) => problem.startsWith(`${name}: is required`))).toBe(true);
    }
  });

  it('accepts OAuth2 client credentials instead of a Bandwidth user', () => {
    const { BW_USERNAME: _user, BW_PASSWORD: _pass, ...rest } = BANDWIDTH_ENV;
    const config = loadConfig({ ...rest, BW_CLIENT_ID: 'id', BW_CLIENT_SECRET: 'secret' });
    expect(config.providers).toEqual([
      expect.objectContaining({
        name: 'bandwidth',
        clientId: 'id',
        clientSecret: 'secret',
        baseUrl: 'https://mfa.bandwidth.com/api/v1',
      }),
    ]);
    expect(problemsOf({ ...rest, BW_CLIENT_ID: 'id' })).toEqual([
      expect.stringMatching(/^BW_CLIENT_SECRET: is required/),
    ]);
  });

  it('refuses a BW_NUMBER that is not E.164', () => {
    expect(problemsOf({ ...BANDWIDTH_ENV, BW_NUMBER: '202-555-0100' })).toEqual([
      expect.stringMatching(/^BW_NUMBER: must be an E\.164/),
    ]);
  });
});

describe('starting the server with a bad environment', () => {
  it('exits non-zero, names every offending variable, and starts nothing', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: PROJECT_ROOT,
      env: {
        PATH: process.env.PATH,
        PORT: 'nope',
        MFA_CODE_DIGITS: '99',
        MFA_PROVIDER: 'bandwidth',
        DATABASE_PATH: '/nonexistent/never-created.db',
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/PORT: must be a whole number/);
    expect(result.stderr).toMatch(/MFA_CODE_DIGITS: must be at most 8/);
    expect(result.stderr).toMatch(/BW_ACCOUNT_ID: is required/);
    expect(result.stdout).not.toMatch(/Site running/);
  });
});

describe('the documentation of the variables', () => {
  const readProjectFile = (name: string) => readFileSync(join(PROJECT_ROOT, name), 'utf8');

  it('lists every variable the config reads in .env.example and in the README’s table, and no other', () => {
    const inEnvExample = readProjectFile('.env.example')
      .split('\n')
      .flatMap((line) => /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1] ?? []);
    const readmeTable = readProjectFile('README.md').split('\n## Environment\n')[1]!.split('\n## ')[0]!;
    const inReadme = [
      ...readmeTable.matchAll(/^\| `([A-Z][A-Z0-9_]*)`(?:, `([A-Z][A-Z0-9_]*)`)* \|/gm),
    ].flatMap((row) => [...row[0].matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((name) => name[1]!));
    expect([...inEnvExample].sort()).toEqual([...CONFIG_VARIABLES].sort());
    expect([...new Set(inReadme)].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });
});
