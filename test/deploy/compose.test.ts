import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { BANDWIDTH_TEST_ENV } from '../helpers/create-test-app.js';
import {
  InterpolationError,
  envOf,
  environmentOf,
  interpolate,
  parseCompose,
  parseDockerfile,
  readProjectFile,
  type ComposeService,
} from './deploy-files.js';

// No Docker engine runs where these tests run, so compose.yaml is never started here: these tests
// read it as Compose would and hand the instances' environment to the site's own config check.

const compose = parseCompose(readProjectFile('compose.yaml'));
const services = compose.services;
const APP_SERVICES = ['app1', 'app2'] as const;
const imageEnv = envOf(parseDockerfile(readProjectFile('Dockerfile')).at(-1)!);

/** What a person sets before `docker compose up`, as compose.yaml's header shows (fictional values). */
const OPERATOR_ENV: Record<string, string> = {
  SESSION_SECRET: 'f'.repeat(64),
  FACTOR_ENCRYPTION_KEY: 'e'.repeat(64),
  SMS_COUNTRIES: 'US,CA',
  MFA_PROVIDER: 'twilio',
  TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
  TWILIO_AUTH_TOKEN: 'an-auth-token',
  TWILIO_VERIFY_SERVICE_ID: `VA${'0'.repeat(32)}`,
  EMAIL_FROM: 'no-reply@example.com',
  SMTP_URL: 'smtps://mailer:secret@smtp.example.com',
};

/** Each real provider with the variables it needs, for the pass-through check. */
const PROVIDER_ENVS: Record<string, Record<string, string>> = {
  bandwidth: BANDWIDTH_TEST_ENV,
  'bandwidth with OAuth2': {
    MFA_PROVIDER: 'bandwidth',
    BW_ACCOUNT_ID: '9900001',
    BW_CLIENT_ID: 'client',
    BW_CLIENT_SECRET: 'secret',
    BW_VOICE_APPLICATION_ID: 'voice-app',
    BW_MESSAGING_APPLICATION_ID: 'messaging-app',
    BW_NUMBER: '+12025550100',
  },
  twilio: OPERATOR_ENV,
  signalwire: {
    MFA_PROVIDER: 'signalwire',
    SIGNALWIRE_SPACE: 'example',
    SIGNALWIRE_PROJECT: 'project',
    SIGNALWIRE_TOKEN: 'token',
    SIGNALWIRE_NUMBER: '+12025550101',
    BASE_CALLBACK_URL: 'https://localhost',
  },
  kandy: {
    MFA_PROVIDER: 'kandy',
    KANDY_BASE_URL: 'https://kandy.example',
    KANDY_CLIENT_ID: 'client',
    KANDY_CLIENT_SECRET: 'secret',
  },
};

function service(name: string): ComposeService {
  const found = services[name];
  if (!found) throw new Error(`compose.yaml has no service ${name}`);
  return found;
}

/** What the instance's process sees: the image's ENV, then compose's environment over it. */
function containerEnv(name: string, operatorEnv: Record<string, string>): Record<string, string> {
  return { ...imageEnv, ...environmentOf(service(name), operatorEnv) };
}

function healthcheckOf(name: string): string {
  const test = service(name).healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : (test ?? '');
}

/** The variable names .env.example documents, which the README and the config schema keep in step. */
const documentedVariables = new Set(
  readProjectFile('.env.example')
    .split('\n')
    .map((line) => /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined),
);

describe('interpolate (as Compose fills ${...})', () => {
  it('uses the value, a default when unset or empty, and refuses a required one that is missing', () => {
    expect(interpolate('${A:-x}/${B:-y}/${C-z}/$$D', { A: 'a', B: '' })).toBe('a/y/z/$D');
    expect(() => interpolate('${A:?set A}', { A: '' })).toThrow(new InterpolationError('A: set A'));
  });
});

describe('compose.yaml', () => {
  it('runs two instances of the image the Dockerfile builds', () => {
    for (const name of APP_SERVICES) {
      const { build, image } = service(name);
      expect(typeof build === 'string' ? build : build?.context).toBe('.');
      expect(image).toBe('keyhole');
    }
  });

  it('runs PostgreSQL and Redis with health checks, and starts the instances once both are healthy', () => {
    expect(service('postgres').image).toMatch(/^postgres:1[5-7]\b/);
    expect(healthcheckOf('postgres')).toMatch(/^CMD pg_isready\b/);
    expect(service('redis').image).toMatch(/^redis:7\b/);
    expect(healthcheckOf('redis')).toBe('CMD redis-cli ping');
    for (const name of APP_SERVICES) {
      expect(service(name).depends_on).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
    }
  });

  it('restarts every service unless it was stopped', () => {
    for (const [name, { restart }] of Object.entries(services)) expect(restart, name).toBe('unless-stopped');
  });

  it('sets only variables the site knows', () => {
    expect(documentedVariables.size).toBeGreaterThan(40);
    for (const name of APP_SERVICES) {
      for (const variable of Object.keys(service(name).environment ?? {})) {
        expect(documentedVariables.has(variable), `${name} sets ${variable}`).toBe(true);
      }
    }
  });

  it('gives both instances one SESSION_SECRET, which must come from the environment', () => {
    const [first, second] = APP_SERVICES.map((name) => service(name).environment?.SESSION_SECRET);
    expect(first).toBe(second);
    const { SESSION_SECRET: _omitted, ...withoutSecret } = OPERATOR_ENV;
    expect(() => environmentOf(service('app1'), withoutSecret)).toThrow(/^SESSION_SECRET: /);
  });

  it('gives both instances one FACTOR_ENCRYPTION_KEY, which must come from the environment', () => {
    const [first, second] = APP_SERVICES.map((name) => service(name).environment?.FACTOR_ENCRYPTION_KEY);
    expect(first).toBe(second);
    const { FACTOR_ENCRYPTION_KEY: _omitted, ...withoutKey } = OPERATOR_ENV;
    expect(() => environmentOf(service('app1'), withoutKey)).toThrow(/^FACTOR_ENCRYPTION_KEY: /);
  });

  it('refuses to start without a provider or the countries codes may go to', () => {
    for (const required of ['MFA_PROVIDER', 'SMS_COUNTRIES']) {
      const { [required]: _omitted, ...rest } = OPERATOR_ENV;
      expect(() => environmentOf(service('app1'), rest)).toThrow(new RegExp(`^${required}: `));
    }
  });

  it('gives each instance an environment the production config accepts, on PostgreSQL and Redis', () => {
    for (const name of APP_SERVICES) {
      const config = loadConfig(containerEnv(name, OPERATOR_ENV));
      expect(config).toMatchObject({
        isProduction: true,
        host: '0.0.0.0',
        port: Number(imageEnv.PORT),
        providers: [{ name: 'twilio' }],
        publicUrl: 'https://localhost',
        trustProxy: 1,
      });
      expect(new URL(config.databaseUrl!).host).toBe('postgres:5432');
      expect(new URL(config.redisUrl!).host).toBe('redis:6379');
    }
  });

  it.each(Object.entries(PROVIDER_ENVS))('passes through every variable %s needs', (_provider, env) => {
    const config = loadConfig(containerEnv('app1', { ...OPERATOR_ENV, ...env }));
    expect(config.providers.map((provider) => provider.name)).toEqual([env.MFA_PROVIDER]);
  });

  it('sends email through SMTP, by SMTP_URL or by host, port, TLS and credentials', () => {
    expect(loadConfig(containerEnv('app1', OPERATOR_ENV)).email).toEqual({
      provider: 'smtp',
      from: { address: 'no-reply@example.com' },
      smtp: {
        host: 'smtp.example.com',
        port: 465,
        secure: true,
        requireTLS: false,
        auth: { user: 'mailer', password: 'secret' },
      },
    });
    const { SMTP_URL: _omitted, ...withoutUrl } = OPERATOR_ENV;
    const byHost = {
      ...withoutUrl,
      SMTP_HOST: 'smtp.example.com',
      SMTP_PORT: '2525',
      SMTP_SECURE: 'false',
      SMTP_USER: 'mailer',
      SMTP_PASSWORD: 'secret',
    };
    expect(loadConfig(containerEnv('app2', byHost)).email).toMatchObject({
      smtp: { port: 2525, secure: false, requireTLS: true, auth: { user: 'mailer', password: 'secret' } },
    });
  });

  it("connects to the database PostgreSQL creates, with PostgreSQL's own password", () => {
    for (const operatorEnv of [
      OPERATOR_ENV,
      { ...OPERATOR_ENV, POSTGRES_PASSWORD: 'chosen-for-this-site' },
    ]) {
      const url = new URL(containerEnv('app1', operatorEnv).DATABASE_URL!);
      const postgres = environmentOf(service('postgres'), operatorEnv);
      expect(url.username).toBe(postgres.POSTGRES_USER);
      expect(decodeURIComponent(url.password)).toBe(postgres.POSTGRES_PASSWORD);
      expect(url.pathname).toBe(`/${postgres.POSTGRES_DB}`);
    }
  });
});

describe('compose.yaml: the proxy in front', () => {
  const caddyfile = readProjectFile('deploy/Caddyfile');

  it('is the only way in, which is what makes TRUST_PROXY=1 (one hop) exact', () => {
    for (const name of APP_SERVICES) expect(service(name).ports, name).toBeUndefined();
    expect(service('proxy').ports).toContain('443:443');
    expect(service('proxy').volumes).toContain('./deploy/Caddyfile:/etc/caddy/Caddyfile:ro');
    // Without trusted_proxies Caddy replaces a client's X-Forwarded-For with the client's address.
    expect(caddyfile).not.toMatch(/trusted_proxies/);
  });

  it('spreads requests over both instances on the port they listen on, and skips one whose /healthz fails', () => {
    const upstreams = /reverse_proxy\s+([^{\n]+)\{/.exec(caddyfile)?.[1]?.trim().split(/\s+/);
    expect(upstreams).toEqual(APP_SERVICES.map((name) => `${name}:${imageEnv.PORT}`));
    expect(caddyfile).toMatch(/^\s*health_uri \/healthz$/m);
  });

  it('serves the address the instances name as PUBLIC_URL', () => {
    expect(caddyfile).toMatch(/^\{\$PUBLIC_URL(:[^}]*)?\} \{$/m);
    const proxyUrl = environmentOf(service('proxy'), OPERATOR_ENV).PUBLIC_URL;
    expect(proxyUrl).toBe(containerEnv('app1', OPERATOR_ENV).PUBLIC_URL);
    const chosen = { ...OPERATOR_ENV, PUBLIC_URL: 'https://keyhole.example' };
    expect(environmentOf(service('proxy'), chosen).PUBLIC_URL).toBe(containerEnv('app2', chosen).PUBLIC_URL);
  });
});
