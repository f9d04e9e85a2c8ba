import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import { currentUserOf, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import {
  RECOVERY_CODE_COUNT,
  RECOVERY_CODES_LOW,
  normaliseRecoveryCode,
  shouldOfferRecoveryCodes,
  formatRecoveryCode,
  type RecoveryCodes,
  type RecoveryCodeStatus,
} from '../factors/recovery-codes.js';
import { toSafeReturnPath } from '../http/safe-redirect.js';
import { noStore } from '../http/security-headers.js';
import { formatTime } from '../http/time-format.js';
import { isSettingsVerified, settingsVerifiedUntil } from '../mfa/scopes.js';
import type { Notices } from '../notices/notices.js';
import { SITE_NAME } from '../site.js';
import type { User, UserStore } from '../users/store.js';
import { requireFreshSettingsCode } from './settings-step-up.js';

/**
 * The recovery code pages (issue 12): the account's set (how many left, when made), a new set
 * behind a fresh settings code, the offer after a login, and the new codes, shown once.
 *
 * The codes are never kept anywhere but in the page that shows them: not in the session, not in
 * the database (digests only). "Download as text" posts the codes from that page back, and gets
 * them as a file; it works only from the session that made the set, for that very set (its
 * fingerprint), while the session's slot lasts (10 minutes, or until "I have saved these codes"),
 * and only while that set is still the account's.
 * A reload shows no codes: the page of the set is its POST's answer, and the set page shows none.
 */
export const RECOVERY_CODES_PATH = '/account/recovery-codes';
export const RECOVERY_CODES_OFFER_PATH = `${RECOVERY_CODES_PATH}/offer`;
/** A set may be downloaded this long after it was made (in the session that made it). */
export const RECOVERY_CODES_DOWNLOAD_WINDOW_MS = 10 * 60_000;
/** The offer may make a first set without a settings code this long after the login completed. */
export const RECOVERY_CODES_OFFER_WINDOW_MS = 10 * 60_000;
export const RECOVERY_CODES_FILE_NAME = `${SITE_NAME.toLowerCase()}-recovery-codes.txt`;

declare module 'express-session' {
  interface SessionData {
    /**
     * A set was just shown in this browser: its download is allowed for a while. Never a code:
     * the set's SHA-256 fingerprint (10 codes of 80 random bits: nothing to guess back from it),
     * so that only that set is downloaded; `then` is where "I have saved these codes" leads.
     */
    recoveryCodesShown?: {
      userId: number;
      setMadeAt: number;
      fingerprint: string;
      shownAt: number;
      then: string;
    };
  }
}

/** One digest of a whole set (normalised codes, in the order shown). */
function fingerprintOf(normalisedCodes: string[]): string {
  return createHash('sha256').update(normalisedCodes.join(',')).digest('hex');
}

function isSameFingerprint(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/**
 * Where a full login should lead (the lead's login completion calls it): the offer of recovery
 * codes when the account should get it, carrying the login's own destination along; null for the
 * usual destination.
 */
export function recoveryCodesOfferPath(
  user: Pick<User, 'recoveryCodesOfferedAt' | 'twoFactorOffAt'>,
  status: Pick<RecoveryCodeStatus, 'total'>,
  next?: string,
): string | null {
  if (!shouldOfferRecoveryCodes(user, status)) return null;
  const then = afterOffer(next);
  return then === '/account'
    ? RECOVERY_CODES_OFFER_PATH
    : `${RECOVERY_CODES_OFFER_PATH}?next=${encodeURIComponent(then)}`;
}

/** Where the offer leads once answered: the login's destination, never back to a recovery code page. */
function afterOffer(candidate: unknown): string {
  const path = toSafeReturnPath(candidate, '/account');
  return path.startsWith(RECOVERY_CODES_PATH) ? '/account' : path;
}

export function createRecoveryCodeRouter(deps: {
  recoveryCodes: RecoveryCodes;
  users: UserStore;
  notices: Notices;
  audit: AuditLog;
  clock: Clock;
}): Router {
  const { recoveryCodes, users, notices, audit, clock } = deps;
  const router = Router();
  const freshCode = requireFreshSettingsCode(clock);

  router.use(RECOVERY_CODES_PATH, noStore, requireSignedIn);

  const back = (
    req: Request,
    res: Response,
    kind: 'info' | 'error',
    message: string,
    to = RECOVERY_CODES_PATH,
  ) => {
    req.session.flash = { kind, message };
    res.redirect(303, to);
  };

  const alreadyHasCodes = (req: Request, res: Response) =>
    back(req, res, 'info', 'Your account already has recovery codes. To replace them, make a new set here.');

  /** The new set, on the answer to the POST that made it: the one time it is shown. */
  async function showNewSet(
    req: Request,
    res: Response,
    user: User,
    codes: string[],
    then: string,
    how: string,
  ) {
    const now = clock.now().getTime();
    const status = await recoveryCodes.status(user.id);
    await audit.record({
      type: 'recovery_codes_generated',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: how,
    });
    await notices.notify({ type: 'recovery_codes_generated', user, ip: req.ip });
    req.session.recoveryCodesShown = {
      userId: user.id,
      setMadeAt: status.createdAt?.getTime() ?? now,
      fingerprint: fingerprintOf(codes.map((code) => normaliseRecoveryCode(code)!)),
      shownAt: now,
      then,
    };
    res.render('account/recovery-codes-new', {
      title: 'Your recovery codes',
      codes,
      madeAt: new Date(req.session.recoveryCodesShown.setMadeAt),
    });
  }

  router.get(RECOVERY_CODES_PATH, async (req, res) => {
    const user = currentUserOf(res)!;
    const now = clock.now().getTime();
    const status = await recoveryCodes.status(user.id);
    const until = settingsVerifiedUntil(req.session, user.id, now);
    const flash = req.session.flash;
    delete req.session.flash;
    res.render('account/recovery-codes', {
      title: 'Recovery codes',
      status,
      count: RECOVERY_CODE_COUNT,
      low: status.total > 0 && status.left <= RECOVERY_CODES_LOW,
      settingsVerifiedUntil: until === null ? null : new Date(until),
      flash,
    });
  });

  router.post(RECOVERY_CODES_PATH, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    const codes = await recoveryCodes.generate(user.id);
    await users.markRecoveryCodesOffered(user.id);
    await showNewSet(req, res, user, codes, RECOVERY_CODES_PATH, 'a new set from the settings');
  });

  router.get(RECOVERY_CODES_OFFER_PATH, async (req, res) => {
    const user = currentUserOf(res)!;
    const then = afterOffer(req.query.next);
    // Nothing to offer to an account that has a set (made in another tab, say).
    if ((await recoveryCodes.status(user.id)).total > 0) return res.redirect(303, then);
    res.render('account/recovery-codes-offer', {
      title: 'Save recovery codes',
      next: then,
      count: RECOVERY_CODE_COUNT,
    });
  });

  router.post(RECOVERY_CODES_OFFER_PATH, async (req, res) => {
    const user = currentUserOf(res)!;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const then = afterOffer(body.next);
    const now = clock.now().getTime();
    // True only for the first answer to the offer (one conditional write).
    const answersOfferNow = await users.markRecoveryCodesOffered(user.id);
    // The login that just completed is fresh proof of password and second factor, so the offer
    // makes a first set without a settings code; but only for 10 minutes after it (a session
    // left open is no such proof), and only for an account with no set, so that a stolen session
    // can never replace codes the owner holds. Past that, the settings code is needed as anywhere.
    // A login by a remembered browser or a password alone proved no second factor: no such proof.
    // Nor once the offer was answered ("Skip for now", or a set made): the owner said no, and a
    // session taken after that must not make codes for itself without a settings code.
    const signedIn = req.session.signedIn;
    const signedInAt = signedIn?.signedInAt ?? 0;
    const justLoggedIn =
      answersOfferNow &&
      signedIn?.provedSecondFactor === true &&
      now >= signedInAt &&
      now - signedInAt < RECOVERY_CODES_OFFER_WINDOW_MS;
    if (!justLoggedIn && !isSettingsVerified(req.session, user.id, now)) {
      // Pressed again once the set was made (another tab, the back button): said as it is.
      if ((await recoveryCodes.status(user.id)).total > 0) return alreadyHasCodes(req, res);
      return back(
        req,
        res,
        'error',
        'For your safety, confirm it is you with a new code before making recovery codes.',
      );
    }
    const codes = await recoveryCodes.generateFirstSet(user.id);
    if (!codes) return alreadyHasCodes(req, res);
    await showNewSet(req, res, user, codes, then, 'the first set, from the offer after a login');
  });

  router.post(`${RECOVERY_CODES_OFFER_PATH}/skip`, async (req, res) => {
    const user = currentUserOf(res)!;
    const body = (req.body ?? {}) as Record<string, unknown>;
    await users.markRecoveryCodesOffered(user.id);
    back(
      req,
      res,
      'info',
      'You can make recovery codes at any time from your security settings.',
      afterOffer(body.next),
    );
  });

  router.post(`${RECOVERY_CODES_PATH}/download`, async (req, res) => {
    const user = currentUserOf(res)!;
    const now = clock.now().getTime();
    const shown = req.session.recoveryCodesShown;
    const fresh =
      shown !== undefined &&
      shown.userId === user.id &&
      now >= shown.shownAt &&
      now - shown.shownAt < RECOVERY_CODES_DOWNLOAD_WINDOW_MS;
    if (!fresh) {
      delete req.session.recoveryCodesShown;
      return back(
        req,
        res,
        'error',
        'Those codes can no longer be downloaded. If you did not save them, make a new set.',
      );
    }
    // Only the set this browser was shown, while it is still the account's: not an older page's
    // set (replaced since, in this tab or another), nor anything else posted here.
    const posted = typeof req.body?.codes === 'string' ? (req.body.codes as string).trim().split(/\s+/) : [];
    const codes = posted.map(normaliseRecoveryCode);
    const isShownSet =
      codes.length === RECOVERY_CODE_COUNT &&
      codes.every((code) => code !== null) &&
      isSameFingerprint(fingerprintOf(codes as string[]), shown.fingerprint);
    const status = await recoveryCodes.status(user.id);
    const isCurrentSet = status.createdAt?.getTime() === shown.setMadeAt;
    if (!isCurrentSet) delete req.session.recoveryCodesShown;
    if (!isShownSet || !isCurrentSet) {
      return back(
        req,
        res,
        'error',
        'Those codes were replaced by a newer set and no longer work. Make a new set to get codes you can save.',
      );
    }
    const lines = [
      `${SITE_NAME} recovery codes for ${user.username}`,
      `Made ${formatTime(new Date(shown.setMadeAt))} UTC`,
      '',
      'Each code works once, to log in or to reset your password when you cannot get a code on your phone.',
      'Keep them somewhere safe, apart from your password.',
      '',
      ...codes.map((code, index) => `${String(index + 1).padStart(2, ' ')}. ${formatRecoveryCode(code!)}`),
      '',
    ];
    res
      .status(200)
      .type('text/plain; charset=utf-8')
      .set('Content-Disposition', `attachment; filename="${RECOVERY_CODES_FILE_NAME}"`)
      .send(lines.join('\n'));
  });

  router.post(`${RECOVERY_CODES_PATH}/saved`, (req, res) => {
    const user = currentUserOf(res)!;
    const shown = req.session.recoveryCodesShown;
    const then = shown?.userId === user.id ? shown.then : RECOVERY_CODES_PATH;
    delete req.session.recoveryCodesShown;
    back(req, res, 'info', 'Keep your recovery codes safe. Each one works once.', then);
  });

  return router;
}
