import type { FakeSignalWire } from './fake-signalwire.js';
import { createVisitor, csrfTokenIn, type Visitor } from './visitor.js';

/**
 * The accounts a run makes, and the steps that bring a session to the code page or past it, each
 * through the site's own forms (the password hashed by the site, the code read from the fake).
 */

export interface BenchAccount {
  username: string;
  password: string;
  /** Fictional numbers only: +1 202 555 0101 to 0199 (0100 sends the codes), shared past 99 accounts. */
  phone: string;
  /** Each account's requests come from its own documentation address (RFC 5737), as through a proxy. */
  address: string;
}

/** A session at the code step: the code that was sent, a wrong one, and the page's CSRF token. */
export interface CodeSession {
  account: BenchAccount;
  visitor: Visitor;
  code: string;
  wrongCode: string;
  token: string;
}

const TEST_NETS = ['192.0.2', '198.51.100', '203.0.113'];
export const PHONES_AVAILABLE = 99;

export function makeAccounts(options: { prefix: string; count: number; password: string }): BenchAccount[] {
  return Array.from({ length: options.count }, (_, index) => ({
    username: `${options.prefix}${index}`,
    password: options.password,
    phone: `+1202555${String(101 + (index % PHONES_AVAILABLE)).padStart(4, '0')}`,
    address: `${TEST_NETS[Math.floor(index / 254) % TEST_NETS.length]}.${(index % 254) + 1}`,
  }));
}

function expectRedirect(step: string, page: { status: number; location: string | null }, to: string) {
  if (page.status !== 303 || !page.location?.startsWith(to)) {
    throw new Error(
      `${step}: expected a 303 to ${to}, got HTTP ${page.status} ${page.location ?? ''}`.trim(),
    );
  }
}

/**
 * Registers through the form and proves the number with the sign-up code read from the fake, as
 * a person would. Callers run at most one registration per phone number at a time (see inBatches).
 */
export async function register(origin: string, account: BenchAccount, fake: FakeSignalWire): Promise<void> {
  const visitor = createVisitor(origin, account.address);
  fake.forget(account.phone);
  const page = await visitor.submit('/register', '/register', {
    username: account.username,
    password: account.password,
    phone: account.phone,
    country: 'US',
    channel: 'sms',
  });
  expectRedirect(`registering ${account.username}`, page, '/verify');
  const code = fake.lastCodeFor(account.phone);
  if (code === undefined) throw new Error(`registering ${account.username}: no sign-up code was sent`);
  const proven = await visitor.submit('/verify', '/verify', { code });
  expectRedirect(`proving ${account.username}'s number`, proven, '/account');
}

/**
 * Password step, then the code page. Callers run at most one login per phone number at a time
 * (see inBatches), so the newest message to the number is this login's code.
 */
export async function logInToCodeStep(
  origin: string,
  account: BenchAccount,
  fake: FakeSignalWire,
): Promise<CodeSession> {
  const visitor = createVisitor(origin, account.address);
  fake.forget(account.phone);
  const page = await visitor.submit('/login', '/login', {
    username: account.username,
    password: account.password,
    channel: 'sms',
  });
  expectRedirect(`logging in ${account.username}`, page, '/verify');
  const code = fake.lastCodeFor(account.phone);
  if (code === undefined) throw new Error(`logging in ${account.username}: no code was sent`);
  const verifyPage = await visitor.get('/verify');
  const token = csrfTokenIn(verifyPage.html);
  if (token === undefined) throw new Error(`/verify (HTTP ${verifyPage.status}) has no CSRF token`);
  const last = Number(code.at(-1));
  return { account, visitor, code, wrongCode: `${code.slice(0, -1)}${(last + 1) % 10}`, token };
}

/** Enters the right code: the session is signed in, and the account's failure counts start again. */
export async function enterRightCode(session: CodeSession): Promise<Visitor> {
  const page = await session.visitor.submit('/verify', '/verify', { code: session.code });
  expectRedirect(`entering ${session.account.username}'s code`, page, '/account');
  return session.visitor;
}

/** Runs `task` on consecutive groups of `size` items, one group after another. */
export async function inBatches<T, R>(items: T[], size: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    results.push(...(await Promise.all(items.slice(start, start + size).map(task))));
  }
  return results;
}
