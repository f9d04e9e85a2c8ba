import type { Channel } from '../../src/mfa/provider.js';
import type { Browser } from './agent.js';
import { expectRedirect } from './expectations.js';

let nextPhone = 100;

/** A fresh fictional number (+1 202 555 0100 to 0199), different for each account a test makes. */
export function fictionalPhone(): string {
  const phone = `+1202555${String(100 + (nextPhone++ % 100)).padStart(4, '0')}`;
  return phone;
}

export const GOOD_PASSWORD = 'correct horse battery staple';

/** A six-digit code that is not `code`. */
export const wrongFor = (code: string) => (code === '000000' ? '111111' : '000000');

export interface TestAccount {
  username: string;
  password: string;
  phone: string;
  channel: Channel;
}

export async function register(browser: Browser, overrides: Partial<TestAccount> = {}): Promise<TestAccount> {
  const account: TestAccount = {
    username: overrides.username ?? `user${Math.random().toString(36).slice(2, 8)}`,
    password: overrides.password ?? GOOD_PASSWORD,
    phone: overrides.phone ?? fictionalPhone(),
    channel: overrides.channel ?? 'sms',
  };
  const res = await browser.submit('/register', '/register', {
    username: account.username,
    password: account.password,
    phone: account.phone,
    channel: account.channel,
  });
  expectRedirect(res, /^\/login\?registered=/);
  return account;
}

/** Password step only: leaves the browser on the code page. */
export async function submitPassword(browser: Browser, account: TestAccount, channel?: Channel) {
  return browser.submit('/login', '/login', {
    username: account.username,
    password: account.password,
    ...(channel ? { channel } : {}),
  });
}

export async function submitCode(browser: Browser, code: string) {
  return browser.submit('/verify', '/verify', { code });
}
