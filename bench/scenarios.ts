import type { Context, RequestSpec } from 'autocannon';
import type { BenchAccount } from './accounts.js';
import type { Expectation } from './load.js';
import { applySetCookies, cookieHeaderOf, csrfTokenIn } from './visitor.js';

/**
 * What each scenario sends, and what every answer must be for the run to count. Requests to the
 * site come "through a proxy" on loopback: X-Forwarded-Proto says https (so the site issues and
 * accepts its Secure cookies) and X-Forwarded-For names the client. The baseline gets the same
 * headers and ignores them.
 */

const PAGE_VISITOR_ADDRESS = '203.0.113.254';
export const PROXY_HEADERS = { 'x-forwarded-proto': 'https', 'x-forwarded-for': PAGE_VISITOR_ADDRESS };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

export const LOGIN_FORM: Expectation = {
  statuses: [200],
  bodyIncludes: 'name="password"',
  label: 'the login form',
};

/** GET /login with no cookie: a new visitor every time. */
export const anonymousPage: RequestSpec = { method: 'GET', path: '/login', headers: PROXY_HEADERS };

export function signedInPage(cookie: string): RequestSpec {
  return { method: 'GET', path: '/account', headers: { ...PROXY_HEADERS, cookie } };
}

export const accountPage = (name: string): Expectation => ({
  statuses: [200],
  bodyIncludes: name,
  label: `the account page of ${name}`,
});

export interface WrongCodeSession {
  cookie: string;
  token: string;
  wrongCode: string;
}

export const WRONG_CODE: Expectation = {
  statuses: [400],
  bodyIncludes: 'That code is not right',
  label: 'the "That code is not right" page',
};

/**
 * POST /verify with a wrong code, each request for the next session in turn, so that every
 * session takes the same number of guesses. A page that hands out a new CSRF token is followed.
 */
export function wrongCodeRequests(sessions: WrongCodeSession[]): RequestSpec[] {
  let next = 0;
  return [
    {
      method: 'POST',
      path: '/verify',
      setupRequest(request, context) {
        const index = next++ % sessions.length;
        context.index = index;
        const session = sessions[index]!;
        return {
          ...request,
          headers: { ...PROXY_HEADERS, ...FORM, cookie: session.cookie },
          body: new URLSearchParams({ _csrf: session.token, code: session.wrongCode }).toString(),
        };
      },
      onResponse(_status, body, context) {
        const token = csrfTokenIn(body);
        if (token !== undefined) sessions[context.index as number]!.token = token;
      },
    },
  ];
}

function setCookiesIn(headers: Record<string, string | string[]>): string[] {
  const entry = Object.entries(headers).find(([name]) => name.toLowerCase() === 'set-cookie');
  if (!entry) return [];
  return Array.isArray(entry[1]) ? entry[1] : [entry[1]];
}

/**
 * A login, over and over: load the form (as a new visitor), then post the right password. Each
 * login goes to the next account in turn, from that account's own address, so that no per-client
 * or per-account limit refuses it before the password is hashed.
 */
export function loginRequests(accounts: BenchAccount[]): RequestSpec[] {
  let next = 0;
  const accountOf = (context: Context) => context.account as BenchAccount;
  return [
    {
      method: 'GET',
      path: '/login',
      setupRequest(request, context) {
        const account = accounts[next++ % accounts.length]!;
        context.account = account;
        return { ...request, headers: { ...PROXY_HEADERS, 'x-forwarded-for': account.address } };
      },
      onResponse(_status, body, context, headers) {
        const jar = new Map<string, string>();
        applySetCookies(jar, setCookiesIn(headers));
        context.cookie = cookieHeaderOf(jar);
        context.token = csrfTokenIn(body) ?? '';
      },
    },
    {
      method: 'POST',
      path: '/login',
      setupRequest(request, context) {
        const account = accountOf(context);
        const cookie = context.cookie as string;
        return {
          ...request,
          headers: {
            ...PROXY_HEADERS,
            ...FORM,
            'x-forwarded-for': account.address,
            ...(cookie ? { cookie } : {}),
          },
          body: new URLSearchParams({
            _csrf: context.token as string,
            username: account.username,
            password: account.password,
            channel: 'sms',
          }).toString(),
        };
      },
    },
  ];
}

/**
 * The form (200), then the password step's answers once the password was checked: on to the code
 * page (303; within the resend cooldown the code already sent is waited for), "too many codes for
 * now" (429) or "busy, try again in a moment" (503, from a bounded hashing queue).
 */
export const LOGIN_STORM: Expectation = {
  statuses: [200, 303, 429, 503],
  label: 'the login form, then 303, 429 or 503',
};
