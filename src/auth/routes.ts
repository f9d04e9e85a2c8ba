import { Router, type Request, type Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import { TooManyRequestsError, describeWait } from '../errors.js';
import { abandonmentSignal } from '../http/abandoned.js';
import { readCookie } from '../http/cookies.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import { logOutThisBrowser, saveSession, startNewSession } from '../http/session.js';
import { endPreSession } from '../http/csrf.js';
import type { Logger } from '../logger.js';
import { toSafeReturnPath } from '../http/safe-redirect.js';
import { parseForm, type FieldError } from '../http/validate.js';
import { describeCodeOnItsWay, describeSendRefusal, type CodeDelivery } from '../mfa/delivery.js';
import { ProviderError, type Channel } from '../mfa/provider.js';
import { PENDING_LOGIN_TIMEOUT_MS } from '../mfa/scopes.js';
import { providerErrorToAppError } from '../http/error-pages.js';
import { HashingAbandonedError, type PasswordHasher } from '../users/passwords.js';
import { parsePhone } from '../users/phone.js';
import { openOnPasskeyWhileCodesPaused, openStage, type StageFactors } from '../factors/stage-factors.js';
import type { CompletedFactor, VerificationCompleter } from '../factors/complete-verification.js';
import type { MfaPolicy } from '../factors/config.js';
import { isTwoStepLoginOff } from '../account/two-step.js';
import type { RememberedBrowsers } from './remembered-browsers.js';
import type { User, UserStore } from '../users/store.js';
import { needsEnrolment, type Enrolment } from './enrolment.js';
import { currentUserOf } from './guards.js';
import type { KnownDevices } from './known-device.js';
import type { LoginAttempt, LoginThrottle } from './login-throttle.js';
import { loginSchema, registerSchema } from './schemas.js';
import { loginPage, registerDefaults, registerPage } from './form-pages.js';
import { clientKeyOf } from '../http/client-address.js';
import type { RegistrationGuard } from '../fraud/registration-guard.js';

export interface AuthRouterDeps {
  users: UserStore;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  /** Recognises browsers that completed a login before (the per-client and per-username limits skip them). */
  knownDevices: KnownDevices;
  delivery: CodeDelivery;
  /** The toll-fraud guard's registration limits, countries and VoIP rule (src/fraud/). */
  registrations: RegistrationGuard;
  audit: AuditLog;
  clock: Clock;
  isProduction: boolean;
  logger: Logger;
  /** The channel cookie remembers this browser's last channel, to pre-select it on the login form. */
  channelCookie: { name: string; secure: boolean };
  /** A new account's proof of its number (src/auth/enrolment.ts). */
  enrolment: Enrolment;
  /** Which factor the login's code page opens with (src/factors/stage-factors.ts). */
  stageFactors: StageFactors;
  /** Finishes a login that needs no code (a remembered browser, two-step login turned off). */
  completer: VerificationCompleter;
  /** "Remember this browser": a browser remembered for this account skips the code (src/auth/remembered-browsers.ts). */
  rememberedBrowsers: Pick<RememberedBrowsers, 'redeem'>;
  /** MFA_POLICY: with `optional`, an account that turned the second step off logs in with its password. */
  mfaPolicy: MfaPolicy;
}

/** A login with no second step asked for: how the audit line names what stood in for it. */
const REMEMBERED_BROWSER: CompletedFactor = {
  method: 'remembered_browser',
  describedAs: 'a remembered browser',
};
const PASSWORD_ONLY: CompletedFactor = {
  method: 'password_only',
  describedAs: 'password only (two-step login turned off)',
};

const INVALID_CREDENTIALS = 'Invalid username or password.';
const CHANNEL_COOKIE_MAX_AGE_MS = 365 * 24 * 60 * 60_000;

/** Keeps only what a form may show again: never the password. */
function echoValues(body: unknown, fields: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  const source = (body ?? {}) as Record<string, unknown>;
  for (const name of fields) {
    const value = source[name];
    if (typeof value === 'string') values[name] = value.slice(0, 200);
  }
  return values;
}

export function rememberChannel(res: Response, cookie: AuthRouterDeps['channelCookie'], channel: Channel) {
  res.cookie(cookie.name, channel, {
    httpOnly: true,
    sameSite: 'lax',
    secure: cookie.secure,
    path: '/',
    maxAge: CHANNEL_COOKIE_MAX_AGE_MS,
  });
}

function rememberedChannel(req: Request, cookieName: string): Channel | undefined {
  const value = readCookie(req.headers.cookie, cookieName);
  return value === 'sms' || value === 'voice' ? value : undefined;
}

export function createAuthRouter(deps: AuthRouterDeps): Router {
  const { users, hasher, throttle, knownDevices, delivery, audit, clock } = deps;
  const router = Router();

  const renderRegister = (
    res: Response,
    status: number,
    values: Record<string, string>,
    errors: FieldError[],
  ) => {
    const page = registerPage({ channels: delivery.channels(), values, errors });
    res.status(status).render(page.view, page.locals);
  };

  const renderLogin = (
    req: Request,
    res: Response,
    status: number,
    values: Record<string, string>,
    errors: FieldError[],
    notice?: string,
  ) => {
    const flash = req.session.flash;
    delete req.session.flash;
    const page = loginPage({
      channels: delivery.channels(),
      values: { channel: rememberedChannel(req, deps.channelCookie.name) ?? '', ...values },
      errors,
      notice,
      flash,
    });
    res.status(status).render(page.view, page.locals);
  };

  router.get('/', (_req, res) => res.redirect(303, currentUserOf(res) ? '/account' : '/login'));

  router.get('/register', (_req, res) => {
    if (currentUserOf(res)) return res.redirect(303, '/account');
    renderRegister(res, 200, registerDefaults(delivery.channels()), []);
  });

  router.post('/register', async (req, res) => {
    const values = echoValues(req.body, ['username', 'phone', 'country', 'channel', 'email']);
    const form = parseForm(registerSchema, req.body);
    if (!form.ok) return renderRegister(res, 400, values, form.errors);

    if (!delivery.channels().includes(form.data.channel)) {
      return renderRegister(res, 400, values, [
        { field: 'channel', message: 'Codes cannot be sent that way here. Choose another way.' },
      ]);
    }
    const phone = parsePhone(form.data.phone, form.data.country);
    if (!phone.ok) return renderRegister(res, 400, values, [{ field: 'phone', message: phone.message }]);

    // BEGIN toll-fraud guard (issue 8): taken before the slow hash, completed whatever happens next.
    const admission = await deps.registrations.reserveRegistration({
      clientKey: clientKeyOf(req.ip ?? ''),
      phone: phone.e164,
    });
    if (!admission.allowed) {
      if ('message' in admission) {
        return renderRegister(res, 400, values, [{ field: 'phone', message: admission.message }]);
      }
      throw new TooManyRequestsError(
        `No more accounts can be created from your network right now. Try again in ${describeWait(admission.retryAfterSeconds)}.`,
        admission.retryAfterSeconds,
        { href: '/login', label: 'Go to the login page' },
      );
    }
    let user: Awaited<ReturnType<UserStore['create']>> = null;
    try {
      user = await users.create({
        username: form.data.username,
        // A form posted by a client that hung up while its password waited is not hashed for no one.
        passwordHash: await hasher.hash(form.data.password, { signal: abandonmentSignal(req, res) }),
        phone: phone.e164,
        preferredChannel: form.data.channel,
      });
    } finally {
      await admission.complete(user !== null);
    }
    // END toll-fraud guard
    if (!user) {
      return renderRegister(res, 409, values, [
        { field: 'username', message: 'That username is taken. Choose another.' },
      ]);
    }
    await audit.record({ type: 'account_created', userId: user.id, username: user.username, ip: req.ip });
    // Kept waiting: its link goes out once the phone is proven (a bot without a phone mails no one).
    if (form.data.email) await users.setPendingEmail(user.id, form.data.email);
    // Straight on to the code that proves the number: no second typing of the password.
    await continueToEnrolment(req, res, user, form.data.channel);
  });

  /**
   * For an account that has not proven its number: a new session waiting for its `enrol` code,
   * and the code sent. The code page says what went wrong if none could be sent.
   */
  async function continueToEnrolment(req: Request, res: Response, user: User, channel: Channel) {
    await deps.enrolment.begin(req, user);
    req.session.channel = channel;
    // Stored before the code goes out, as the password step does (see POST /login).
    await saveSession(req);
    endPreSession(res, deps.isProduction);
    try {
      const sent = await deps.enrolment.sendCode(req, user, channel);
      if (!sent.ok) req.session.flash = { kind: 'error', message: sent.message };
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      // The account exists now: its code page, where "Send code" tries again, says what happened,
      // rather than an error page that leaves the person wondering whether they signed up.
      deps.logger.warn({ err: error }, 'the sign-up code could not be sent');
      req.session.flash = { kind: 'error', message: providerErrorToAppError(error).safeMessage };
    }
    res.redirect(303, '/verify');
  }

  router.get('/login', (req, res) => {
    if (currentUserOf(res)) return res.redirect(303, toSafeReturnPath(req.query.next));
    const notice =
      req.query.signedOut !== undefined
        ? 'You have logged out.'
        : req.query.stepUpFailed !== undefined
          ? 'For your safety you were logged out after too many wrong codes. Log in again with your password and a new code.'
          : req.query.sessionEnded !== undefined
            ? 'Your session ended in another tab or window. Please log in again.'
            : undefined;
    const next = typeof req.query.next === 'string' ? toSafeReturnPath(req.query.next, '') : '';
    renderLogin(req, res, 200, { username: '', next }, [], notice);
  });

  router.post('/login', async (req, res) => {
    const values = echoValues(req.body, ['username', 'channel', 'next']);
    const form = parseForm(loginSchema, req.body);
    if (!form.ok) return renderLogin(req, res, 400, values, form.errors);
    const { username, password, channel } = form.data;

    const user = await users.findByUsername(username);
    const attempt: LoginAttempt = {
      username,
      clientKey: clientKeyOfRequest(req),
      knownDevice: user !== null && knownDevices.recognises(req.headers.cookie, user.id),
    };
    const decision = await throttle.reserveAttempt(attempt);
    if (!decision.allowed) {
      await audit.record({ type: 'login_throttled', username, ip: req.ip });
      res.set('Retry-After', String(decision.retryAfterSeconds));
      const wait = describeWait(decision.retryAfterSeconds);
      return renderLogin(req, res, 429, values, [
        {
          field: 'username',
          message:
            decision.reason === 'paced'
              ? `Too many login attempts for this account right now. Try again in ${wait}.`
              : `Too many failed attempts. Wait ${wait} and try again.`,
        },
      ]);
    }

    // Both branches hash once, so the time taken does not tell whether the account exists.
    let passwordMatches: boolean;
    try {
      passwordMatches = await hasher.verify(user?.passwordHash ?? null, password, {
        signal: abandonmentSignal(req, res),
      });
    } catch (error) {
      // Not checked (too many hashes queued: the 503 page), so not a guess: hand the count back.
      // But a client that hung up while its password waited keeps it counted: were it handed
      // back, hanging up would take an account's paced check over and over at no cost.
      if (!(error instanceof HashingAbandonedError)) await throttle.releaseAttempt(decision.reservation);
      throw error;
    }
    // A disabled account answers exactly as a wrong password does (same page, status and work,
    // the hash computed above and the attempt left counted), so the login form never tells a
    // stranger which accounts exist or were disabled. Only the audit log says which it was.
    const isDisabled = user !== null && user.disabledAt !== null;
    if (!user || !passwordMatches || isDisabled) {
      await audit.record({
        type: user && passwordMatches ? 'login_refused_disabled' : 'login_password_failed',
        userId: user?.id ?? null,
        username,
        ip: req.ip,
      });
      return renderLogin(req, res, 401, values, [{ field: 'username', message: INVALID_CREDENTIALS }]);
    }
    await throttle.releaseAttempt(decision.reservation);

    // An account that never proved its number cannot log in: its password leads to that code.
    if (needsEnrolment(user)) {
      return continueToEnrolment(req, res, user, channel ?? user.preferredChannel);
    }

    const returnTo = toSafeReturnPath(form.data.next, '');
    // No code for this login: the person turned the second step off (MFA_POLICY=optional; never an
    // admin), or this browser is remembered for this account (its token rotates as it is used).
    // Checked only now, after the password, the throttle and the account's state.
    const withoutCode = isTwoStepLoginOff(user, deps.mfaPolicy)
      ? PASSWORD_ONLY
      : (await deps.rememberedBrowsers.redeem(req, res, user))
        ? REMEMBERED_BROWSER
        : null;
    if (withoutCode) {
      if (returnTo) req.session.returnTo = returnTo;
      endPreSession(res, deps.isProduction);
      // A fresh session id, the signed-in slot and the audit line, as after any second factor.
      return deps.completer.complete(req, res, { kind: 'login', user }, withoutCode);
    }

    // A new session id once the password is right (no fixation), holding only the half-logged-in slot.
    await startNewSession(req);
    const chosen = channel ?? user.preferredChannel;
    req.session.pendingLogin = { userId: user.id, passwordVerifiedAt: clock.now().getTime() };
    req.session.channel = chosen;
    if (returnTo) req.session.returnTo = returnTo;
    // The session is stored before any code is sent: the login form needed no session, so this is
    // the first the store hears of this browser, and a store that cannot keep it must be the 503
    // page now, not a code sent for a session lost once the redirect is already out.
    await saveSession(req);
    // Only now that the session is kept: a 503 above leaves the login form's token working for a retry.
    endPreSession(res, deps.isProduction);
    if (chosen !== user.preferredChannel && delivery.channels().includes(chosen)) {
      await users.setPreferredChannel(user.id, chosen);
    }
    // An account whose default factor is an app or a passkey is asked for it: no code is sent.
    const opening = await openStage(req.session, deps.stageFactors, user, 'login', chosen);
    if (!('sendBy' in opening)) return res.redirect(303, '/verify');

    const outcome = await delivery.sendCode(req, { user, scope: 'login', channel: opening.sendBy });
    if (!outcome.ok) {
      // Within the cooldown, the code a moment-ago login asked for is on its way: wait for it there.
      if (outcome.reason === 'cooldown' && outcome.pending) {
        req.session.flash = { kind: 'info', message: describeCodeOnItsWay(outcome.retryAfterSeconds) };
        return res.redirect(303, '/verify');
      }
      // Code entry paused or suspended, perhaps by a stranger's wrong codes: the account's passkey
      // still works (its answer cannot be guessed), so the code page offers it rather than a wait.
      if (await openOnPasskeyWhileCodesPaused(req.session, deps.stageFactors, user, 'login', outcome)) {
        return res.redirect(303, '/verify');
      }
      // Not a matter of waiting (no provider delivers that way, a number codes may not go to, code
      // entry suspended): the code page explains and offers what works.
      if (!('retryAfterSeconds' in outcome)) {
        req.session.flash = { kind: 'error', message: describeSendRefusal(outcome) };
        return res.redirect(303, '/verify');
      }
      // A wait longer than the half-logged-in state lasts: the code page would have timed out by
      // then, so the way on is a new login, and the page says so.
      const outlastsLogin = outcome.retryAfterSeconds * 1000 > PENDING_LOGIN_TIMEOUT_MS;
      throw new TooManyRequestsError(
        outlastsLogin
          ? `${describeSendRefusal(outcome)} Your login times out before then, so log in again after that.`
          : describeSendRefusal(outcome),
        outcome.retryAfterSeconds,
        outlastsLogin
          ? { href: '/login', label: 'Back to the login page' }
          : { href: '/verify', label: 'Go to the code page' },
      );
    }
    res.redirect(303, '/verify');
  });

  router.post('/logout', async (req, res) => {
    const user = currentUserOf(res);
    await logOutThisBrowser(req, res, { isProduction: deps.isProduction, logger: deps.logger });
    endPreSession(res, deps.isProduction);
    try {
      if (user) await audit.record({ type: 'logout', userId: user.id, username: user.username, ip: req.ip });
    } catch (error) {
      // Recorded last and allowed to fail: a locked audit log must not keep anyone signed in.
      deps.logger.warn({ err: error }, 'could not record a logout in the audit log');
    }
    res.redirect(303, '/login?signedOut');
  });

  return router;
}
