import { createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import { readCookieValues } from '../http/cookies.js';
import type { User, UserStore } from '../users/store.js';
import type { RememberedBrowserStore } from './remembered-browser-store.js';
import { describeUserAgent } from './session-labels.js';

/**
 * "Remember this browser" (issue 12). After a full login with a second factor, a person may ask
 * that this browser's next logins skip the code for 30 days. The browser gets a token of 256
 * random bits in a cookie; the database keeps only its SHA-256, so a copy of it lets no one skip
 * a code. Each use rotates the token in one conditional write: a copied cookie works once at most,
 * and its use voids the owner's, who then notices a code asked for again.
 *
 * A remembered browser satisfies the LOGIN scope only: the password is still asked for, and the
 * admin, settings and reset steps still take their code. The password's own throttle still applies.
 * Never for an admin, who always needs the second step: an admin's browser is not remembered, and
 * one remembered before the account became an admin's is not honoured (its cookie is left alone,
 * for the day the role is taken away).
 */
export interface RememberedBrowsers {
  /** After a full login with a second factor, when the person ticked "remember this browser" (never an admin). */
  remember(req: Request, res: Response, user: User): Promise<void>;
  /**
   * At the password step: whether this browser's cookie is a live remembered token OF THIS ACCOUNT,
   * which is no admin's.
   * If so it is rotated (a new token, the old one void) and the cookie replaced: true, the login may
   * skip the code. Otherwise false, and a cookie that no longer opens anything is cleared.
   */
  redeem(req: Request, res: Response, user: User): Promise<boolean>;
  list(userId: number): Promise<RememberedBrowserSummary[]>;
  /** Forgets one remembered browser of the account; false when it was not there. */
  revoke(userId: number, id: number): Promise<boolean>;
  /** Every remembered browser of the account; `reason` goes to the audit log. Returns how many. */
  revokeAll(userId: number, reason: string): Promise<number>;
}

export interface RememberedBrowserSummary {
  id: number;
  label: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
}

export const REMEMBER_BROWSER_MS = 30 * 24 * 60 * 60_000;
export const MAX_REMEMBERED_BROWSERS = 10;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function rememberCookieName(isProduction: boolean): string {
  // __Host- makes the browser refuse the cookie unless it is Secure, host-only and Path=/: no
  // sibling subdomain can set or overwrite it.
  return isProduction ? '__Host-keyhole.remember' : 'keyhole.remember';
}

const newToken = () => randomBytes(32).toString('base64url');
const digestOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

export function createRememberedBrowsers(deps: {
  store: RememberedBrowserStore;
  users: Pick<UserStore, 'findById'>;
  audit: AuditLog;
  clock: Clock;
  isProduction: boolean;
}): RememberedBrowsers {
  const { store, audit, clock } = deps;
  const name = rememberCookieName(deps.isProduction);

  function setCookie(res: Response, token: string, expiresAt: Date) {
    res.cookie(name, token, {
      httpOnly: true,
      sameSite: 'lax',
      secure: deps.isProduction,
      path: '/',
      // The row's expiry, not 30 days from each use: rotating keeps the token fresh, not the promise.
      maxAge: Math.max(0, expiresAt.getTime() - clock.now().getTime()),
    });
  }

  function clearCookie(res: Response) {
    res.clearCookie(name, { httpOnly: true, sameSite: 'lax', secure: deps.isProduction, path: '/' });
  }

  return {
    async remember(req, res, user) {
      if (user.isAdmin) return;
      const token = newToken();
      const expiresAt = new Date(clock.now().getTime() + REMEMBER_BROWSER_MS);
      const label = describeUserAgent(req.get('user-agent'));
      await store.add(
        { userId: user.id, tokenHash: digestOf(token), label, expiresAt },
        { maxPerAccount: MAX_REMEMBERED_BROWSERS },
      );
      setCookie(res, token, expiresAt);
      await audit.record({
        type: 'browser_remembered',
        userId: user.id,
        username: user.username,
        ip: req.ip,
        detail: label,
      });
    },

    async redeem(req, res, user) {
      if (user.isAdmin) return false;
      const sent = readCookieValues(req.headers.cookie, name);
      if (sent.length === 0) return false;
      // Only one well-formed value is ever set; anything else opens nothing and is cleared.
      const token = sent.find((value) => TOKEN.test(value));
      if (!token) {
        clearCookie(res);
        return false;
      }
      const tokenHash = digestOf(token);
      const next = newToken();
      const rotated = await store.rotate({
        userId: user.id,
        tokenHash,
        newTokenHash: digestOf(next),
        usedAt: clock.now(),
      });
      if (rotated) {
        setCookie(res, next, rotated.expiresAt);
        return true;
      }
      // Another account's live token (a browser two people share) stays for its owner's next
      // login; one used, revoked or expired opens nothing and goes.
      if (!(await store.isLive(tokenHash))) clearCookie(res);
      return false;
    },

    async list(userId) {
      const browsers = await store.listForUser(userId);
      return browsers.map(({ id, label, createdAt, lastUsedAt, expiresAt }) => ({
        id,
        label,
        createdAt,
        lastUsedAt,
        expiresAt,
      }));
    },

    revoke(userId, id) {
      return store.remove(userId, id);
    },

    async revokeAll(userId, reason) {
      const count = await store.removeAllForUser(userId);
      if (count > 0) {
        const user = await deps.users.findById(userId);
        await audit.record({
          type: 'remembered_browsers_revoked',
          userId,
          username: user?.username ?? null,
          detail: `${count} remembered ${count === 1 ? 'browser' : 'browsers'}: ${reason}`,
        });
      }
      return count;
    },
  };
}
