import type { Express } from 'express';
import request from 'supertest';
import { expect } from 'vitest';
import { generateApiKey, type ApiKey } from '../../src/api/keys.js';
import { problemType, PROBLEMS, type ProblemSlug } from '../../src/api/problem.js';
import type { Channel, MfaProvider, VerifyOutcome } from '../../src/mfa/provider.js';
import { createConsoleProvider } from '../../src/mfa/providers/console.js';
import { createProviderPool, type ProviderPool } from '../../src/mfa/providers/pool.js';
import { createCodeTexts } from '../../src/mfa/sms-text.js';
import { SITE_NAME } from '../../src/site.js';
import type { Response } from './agent.js';
import { expectMatchesContract, expectProblem, type ContractOperation } from './api-contract.js';
import type { TestApp } from './create-test-app.js';

/** A key made as the admin page makes one, and the key itself (which only its creator ever sees). */
export interface TestApiKey {
  key: string;
  apiKey: ApiKey;
}

export async function createTestApiKey(
  site: Pick<TestApp, 'stores' | 'config'>,
  options: { name?: string; channels?: Channel[] } = {},
): Promise<TestApiKey> {
  const { key, keyHash, hint } = generateApiKey(site.config.isProduction);
  const apiKey = await site.stores.apiKeys.create({
    name: options.name ?? 'checkout app',
    keyHash,
    hint,
    channels: options.channels ?? ['sms', 'voice'],
    createdBy: null,
  });
  return { key, apiKey };
}

/** What no answer under /api/ (nor of the voice sample's routes) may lack or carry. */
export function expectApiHeaders(res: Response): void {
  expect(res.headers['set-cookie'], 'an API answer sets no cookie').toBeUndefined();
  expect(res.headers['cache-control']).toBe('no-store');
  // No stack trace, whatever the status.
  expect(res.text ?? '').not.toMatch(/\bat [\w.<>]+ \(.*:\d+:\d+\)/);
}

/** A problem document (RFC 9457) of this kind, with its fixed title and the status it names. */
export function expectApiProblem(res: Response, status: number, slug: ProblemSlug): Record<string, unknown> {
  expect(res.status, res.text?.slice(0, 500)).toBe(status);
  // As openapi.yaml's Problem schema and x-problem-types have it.
  expectProblem(res, slug);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  expect(body).toMatchObject({ type: problemType(slug), title: PROBLEMS[slug].title, status });
  expect(typeof body.detail).toBe('string');
  if (status === 429) {
    expect(res.headers['retry-after']).toBe(String(body.retryAfterSeconds));
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  }
  expectApiHeaders(res);
  return body;
}

type Body = Record<string, unknown> | string;

/** The operation of openapi.yaml a request is, as the document writes its path; null for none. */
function documentedOperation(method: string, path: string): ContractOperation | null {
  const bare = path.split('?')[0]!;
  const documented = [
    /^\/api\/v1\/verifications$/,
    /^\/api\/v1\/verifications\/[^/]+\/check$/,
    /^\/api\/v1\/verifications\/[^/]+$/,
    /^\/request-auth$/,
    /^\/validate-auth$/,
  ];
  if (!documented.some((pattern) => pattern.test(bare))) return null;
  return { method, path: bare.replace(/^\/api\/v1\/verifications\/[^/]+/, '/api/v1/verifications/{id}') };
}

/**
 * A caller of the API with one key (or none). Every answer is checked before the test sees it: no
 * cookie, no-store, and, for an operation of openapi.yaml, what the document promises for its status.
 */
export function createApiClient(app: Express, key?: string) {
  const authorized = (test: request.Test, headers: Record<string, string>) => {
    if (key !== undefined) test.set('Authorization', `Bearer ${key}`);
    for (const [name, value] of Object.entries(headers)) test.set(name, value);
    return test;
  };
  const checked = async (method: string, path: string, test: request.Test) => {
    const res = await test;
    expectApiHeaders(res);
    const operation = documentedOperation(method, path);
    if (operation) expectMatchesContract(res, operation);
    return res;
  };
  return {
    post: (path: string, body?: Body, headers: Record<string, string> = {}) => {
      const test = authorized(request(app).post(path), headers);
      return checked('POST', path, body === undefined ? test : test.send(body));
    },
    postForm: (path: string, fields: Record<string, string>) =>
      checked('POST', path, authorized(request(app).post(path), {}).type('form').send(fields)),
    get: (path: string) => checked('GET', path, authorized(request(app).get(path), {})),
    delete: (path: string) => checked('DELETE', path, authorized(request(app).delete(path), {})),
    /** POST /api/v1/verifications. */
    send: (body: Body, headers: Record<string, string> = {}) =>
      checked(
        'POST',
        '/api/v1/verifications',
        authorized(request(app).post('/api/v1/verifications'), headers).send(body),
      ),
    check: (id: string, code: string) => {
      const path = `/api/v1/verifications/${id}/check`;
      return checked('POST', path, authorized(request(app).post(path), {}).send({ code }));
    },
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;

/**
 * The digits of a console message: the site's "Keyhole code: 123456 ..." or "Your Keyhole code is
 * 1 2 3 4 5 6", an API code's "Your verification code: 123456 ..." or "... for another service, is 1 2 3 ...".
 */
export function digitsOfConsoleMessage(text: string): string {
  const match =
    text.match(/(?:Keyhole|verification) code: (\d+)/) ??
    text.match(/Keyhole code is ([\d ]+)/) ??
    text.match(/another service, is ([\d ]+)/);
  if (!match) throw new Error(`no code in "${text}"`);
  return match[1]!.replace(/ /g, '');
}

/** The newest code the console provider sent to this number, from the development outbox. */
export function consoleCodeTo(site: Pick<TestApp, 'outbox'>, phone: string): string {
  const message = site.outbox.list().find((sent) => sent.to === phone);
  if (!message) throw new Error(`no code was sent to ${phone}`);
  return digitsOfConsoleMessage(message.text);
}

/** How many messages the console provider sent to this number. */
export const consoleMessagesTo = (site: Pick<TestApp, 'outbox'>, phone: string) =>
  site.outbox.list().filter((sent) => sent.to === phone).length;

/**
 * The console provider behind a gate, as a slow provider would be: a test holds its sends until it
 * lets them go, and its checks take `checkDelayMs`. Built before the site (createTestApp's
 * `providers`), then bound to the site's code store and outbox.
 */
export interface GatedConsole {
  pool: ProviderPool;
  bind(site: Pick<TestApp, 'stores' | 'config' | 'outbox'>): void;
  /** Holds every send from now on; the function returned lets them all go. */
  holdSends(): () => void;
  /** Holds the next check only (later ones go on): see HeldCheck. */
  holdNextCheck(): HeldCheck;
  checkDelayMs: number;
}

/** A check the provider has not answered yet, as a slow provider's. */
export interface HeldCheck {
  /** Resolves once the check reached the provider (every limit before it is taken). */
  reached: Promise<void>;
  /** The provider's answer, or the error it fails with. */
  answer(outcome: VerifyOutcome | Error): void;
}

export function createGatedConsole(): GatedConsole {
  let inner: MfaProvider | undefined;
  let sendsHeld: Promise<void> = Promise.resolve();
  let nextCheck: { reached(): void; answered: Promise<VerifyOutcome | Error> } | undefined;
  const bound = () => {
    if (!inner) throw new Error('bind the gated console to the site first');
    return inner;
  };
  const gated: GatedConsole = {
    checkDelayMs: 0,
    pool: createProviderPool([
      {
        name: 'console',
        channels: ['sms', 'voice'],
        async send(request) {
          await sendsHeld;
          return bound().send(request);
        },
        async verify(request) {
          const held = nextCheck;
          if (held) {
            nextCheck = undefined;
            held.reached();
            const outcome = await held.answered;
            if (outcome instanceof Error) throw outcome;
            return outcome;
          }
          await new Promise((resolve) => setTimeout(resolve, gated.checkDelayMs));
          return bound().verify(request);
        },
        cancel: (request) => bound().cancel!(request),
      },
    ]),
    bind(site) {
      inner = createConsoleProvider({
        codes: site.stores.codes,
        codeDigits: site.config.codeDigits,
        codeTtlMinutes: site.config.codeTtlMinutes,
        print: () => undefined,
        outbox: site.outbox,
        texts: createCodeTexts({ siteName: SITE_NAME, publicHost: site.config.publicHost }),
      });
    },
    holdSends() {
      let release!: () => void;
      sendsHeld = new Promise((resolve) => (release = resolve));
      return () => {
        sendsHeld = Promise.resolve();
        release();
      };
    },
    holdNextCheck() {
      let reached!: () => void;
      let answer!: (outcome: VerifyOutcome | Error) => void;
      const held: HeldCheck = {
        reached: new Promise<void>((resolve) => (reached = resolve)),
        answer: (outcome) => answer(outcome),
      };
      nextCheck = { reached, answered: new Promise((resolve) => (answer = resolve)) };
      return held;
    },
  };
  return gated;
}
