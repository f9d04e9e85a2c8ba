import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Response } from 'express';
import type { Clock } from '../clock.js';

/**
 * The known-device cookie: a browser that completed a full login (password and code) for an
 * account carries a signed note of it, "v1.<user id>.<issued at, ms>.<HMAC>". Its only use is
 * in the login throttle: that browser's attempts on that account skip the per-username pace and
 * the per-client count, and count only in their own (username, client) pair, so neither strangers
 * guessing the account's password nor a stranger sharing the owner's address can keep her out.
 * It grants nothing else: the password and the code are still asked for.
 */
export interface KnownDevices {
  /** Sets (or renews) the cookie after a full login for this user. */
  remember(res: Response, userId: number): void;
  /** True only for a well-formed, correctly signed, unexpired cookie naming this user. */
  recognises(cookieHeader: string | undefined, userId: number): boolean;
}

export const KNOWN_DEVICE_MAX_AGE_MS = 365 * 24 * 60 * 60_000;
const COOKIE_VALUE = /^v1\.(\d{1,15})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/;
/** A cookie issued a little "in the future" is accepted, in case the server's clock stepped back. */
const CLOCK_SKEW_MS = 5 * 60_000;

export function knownDeviceCookieName(isProduction: boolean): string {
  // __Host- makes the browser refuse the cookie unless it is Secure, host-only and Path=/.
  return isProduction ? '__Host-mfa.device' : 'mfa.device';
}

/** Every raw value sent for a cookie name; no decoding, so no malformed input can throw. */
function cookieValues(header: string | undefined, name: string): string[] {
  if (typeof header !== 'string') return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const equals = part.indexOf('=');
    if (equals !== -1 && part.slice(0, equals).trim() === name) values.push(part.slice(equals + 1).trim());
  }
  return values;
}

export function createKnownDevices(deps: {
  /** The session secret; a key for this cookie alone is derived from it. */
  secret: string;
  clock: Clock;
  isProduction: boolean;
}): KnownDevices {
  const { clock } = deps;
  const name = knownDeviceCookieName(deps.isProduction);
  // Its own key, so that a value signed for this cookie can never pass for anything else the secret signs.
  const key = createHmac('sha256', deps.secret).update('keyhole known-device cookie v1').digest();
  const sign = (userId: number, issuedAt: number) =>
    createHmac('sha256', key).update(`v1.${userId}.${issuedAt}`).digest('base64url');

  const isValid = (value: string, userId: number) => {
    const match = COOKIE_VALUE.exec(value);
    if (!match) return false;
    const [, id, issued, mac] = match as unknown as [string, string, string, string];
    if (Number(id) !== userId) return false;
    const issuedAt = Number(issued);
    const age = clock.now().getTime() - issuedAt;
    if (age > KNOWN_DEVICE_MAX_AGE_MS || age < -CLOCK_SKEW_MS) return false;
    // Compare in constant time: the signature is the only secret part.
    return timingSafeEqual(Buffer.from(mac), Buffer.from(sign(userId, issuedAt)));
  };

  return {
    remember(res, userId) {
      const issuedAt = clock.now().getTime();
      res.cookie(name, `v1.${userId}.${issuedAt}.${sign(userId, issuedAt)}`, {
        httpOnly: true,
        sameSite: 'lax',
        secure: deps.isProduction,
        path: '/',
        maxAge: KNOWN_DEVICE_MAX_AGE_MS,
      });
    },
    recognises(cookieHeader, userId) {
      return cookieValues(cookieHeader, name).some((value) => isValid(value, userId));
    },
  };
}
