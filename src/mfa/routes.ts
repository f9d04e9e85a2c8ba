import { Router, type Request, type Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import { userAgentToKeep } from '../auth/account-sessions.js';
import { currentUserOf } from '../auth/guards.js';
import type { KnownDevices } from '../auth/known-device.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import { rememberChannel } from '../auth/routes.js';
import type { Clock } from '../clock.js';
import { describeWait } from '../errors.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import { toSafeReturnPath } from '../http/safe-redirect.js';
import { noStore } from '../http/security-headers.js';
import { SESSION_ENDED_PATH, logOutThisBrowser, regenerateSession } from '../http/session.js';
import type { Logger } from '../logger.js';
import { createHash } from 'node:crypto';
import { parseForm, type FieldError } from '../http/validate.js';
import { maskPhone, parsePhone, phoneCountryOf } from '../users/phone.js';
import type { User, UserStore } from '../users/store.js';
import { describeSendRefusal, sendRefusalStatus, type CodeDelivery } from './delivery.js';
import { describeChannel, type Channel, type Scope } from './provider.js';
import {
  PENDING_LOGIN_TIMEOUT_MS,
  isSettingsVerified,
  readPendingEnrolment,
  readPendingLogin,
  readPendingPhoneChange,
  readPendingReset,
  readPendingSettings,
} from './scopes.js';
import type { Notices } from '../notices/notices.js';
import { codeSchema, resendSchema } from './schemas.js';
import { needsEnrolment, type Enrolment } from '../auth/enrolment.js';
import { COUNTRY_OPTIONS } from '../auth/countries.js';
import { correctNumberSchema } from '../auth/schemas.js';
import type { RegistrationGuard } from '../fraud/registration-guard.js';
import type { Challenge, MfaService } from './service.js';
import type { EmailVerification } from '../account/email-verification.js';

export interface MfaRouterDeps {
  users: UserStore;
  mfa: MfaService;
  delivery: CodeDelivery;
  throttle: LoginThrottle;
  knownDevices: KnownDevices;
  audit: AuditLog;
  clock: Clock;
  codeDigits: number;
  channelCookie: { name: string; secure: boolean };
  /** A new account's proof of its number: the `enrol` stage of this page. */
  enrolment: Enrolment;
  /** Limits on numbers a sign-up may use (the toll-fraud guard), for a number corrected here. */
  registrations: RegistrationGuard;
  /** The address given at sign-up gets its link once the phone is proven. */
  emailVerification: EmailVerification;
  /** Security notices by email (a changed phone number). */
  notices: Notices;
  isProduction: boolean;
  logger: Logger;
}

/** An opaque, stable key of this session for the step-up's own wrong-code count (never the id itself). */
function stepUpSessionKey(req: Request): string {
  return createHash('sha256').update(req.sessionID).digest('base64url').slice(0, 22);
}

/**
 * What the code page is for. Each kind has its own scope and its own session slot, and a code
 * counts only for the kind it was sent for:
 * - login: the second step of a login; signup: a new account proving its number (`enrol`);
 * - admin: the secure area's step-up; settings: confirming it is you before a change on
 *   /account/security (a code to the account's own number);
 * - phone_change: the new number given there, proven by a code sent to it (`enrol`);
 * - reset: after a password reset link, a code to the account's phone.
 */
type StageKind = 'login' | 'signup' | 'admin' | 'settings' | 'phone_change' | 'reset';

const SCOPE_OF: Record<StageKind, Scope> = {
  login: 'login',
  signup: 'enrol',
  admin: 'admin',
  settings: 'settings',
  phone_change: 'enrol',
  reset: 'reset',
};

interface Stage {
  kind: StageKind;
  scope: Scope;
  /** The account; for phone_change, with the number being proven in place of its own. */
  user: User;
  challenge: Challenge | null;
}

export function createMfaRouter(deps: MfaRouterDeps): Router {
  const { users, mfa, delivery, throttle, audit, clock } = deps;
  const router = Router();
  const formSchema = codeSchema(deps.codeDigits);

  /** A stage whose challenge is the session's, in its scope, and sent to `phone` (no other number's code counts). */
  async function stageFor(req: Request, kind: StageKind, user: User, phone = user.phone): Promise<Stage> {
    const scope = SCOPE_OF[kind];
    const challenge = await delivery.currentChallenge(req, { userId: user.id, scope });
    return {
      kind,
      scope,
      user: { ...user, phone },
      challenge: challenge?.phone === phone ? challenge : null,
    };
  }

  /** Which code this session is waiting for, with the challenge the session holds for it (if any). */
  async function currentStage(req: Request, res: Response): Promise<Stage | null> {
    const now = clock.now().getTime();
    const signedInUser = currentUserOf(res);
    if (signedInUser) {
      const phoneChange = readPendingPhoneChange(req.session, now);
      if (phoneChange?.userId === signedInUser.id) {
        return stageFor(req, 'phone_change', signedInUser, phoneChange.phone);
      }
      if (readPendingSettings(req.session, now)?.userId === signedInUser.id) {
        return stageFor(req, 'settings', signedInUser);
      }
      const challenge = await delivery.currentChallenge(req, { userId: signedInUser.id, scope: 'admin' });
      return challenge ? { kind: 'admin', scope: 'admin', user: signedInUser, challenge } : null;
    }
    const enrolling = readPendingEnrolment(req.session, now);
    if (enrolling) {
      const user = await users.findById(enrolling.userId);
      // Proven meanwhile (in another tab), or disabled by an admin: this stage is over.
      if (!user || !needsEnrolment(user) || user.disabledAt !== null) return null;
      // A code to a number since corrected is no code for this one.
      return stageFor(req, 'signup', user);
    }
    const resetting = readPendingReset(req.session, now);
    if (resetting) {
      const user = await users.findById(resetting.userId);
      // Disabled by an admin since the link was used: no code, and so no new password.
      return user && !needsEnrolment(user) && user.disabledAt === null ? stageFor(req, 'reset', user) : null;
    }
    const pending = readPendingLogin(req.session, now);
    const user = pending ? await users.findById(pending.userId) : null;
    // An account that has not proven its number never gets this far (POST /login enrols it);
    // checked here too, so no other path to a login code can skip that. Nor does a password
    // given before an admin disabled the account lead to a code after.
    if (!user || needsEnrolment(user) || user.disabledAt !== null) return null;
    return {
      kind: 'login',
      scope: 'login',
      user,
      challenge: await delivery.currentChallenge(req, { userId: user.id, scope: 'login' }),
    };
  }

  function leaveCodePage(req: Request, res: Response) {
    if (currentUserOf(res)) {
      // A settings confirmation or a new number that waited too long: back where it started.
      if (req.session.pendingSettings || req.session.pendingPhoneChange) {
        delete req.session.pendingSettings;
        delete req.session.pendingPhoneChange;
        delete req.session.challengeId;
        req.session.flash = { kind: 'error', message: 'That code page timed out. Start again.' };
        return res.redirect(303, '/account/security');
      }
      return res.redirect(303, '/account');
    }
    if (req.session.pendingReset) {
      delete req.session.pendingReset;
      delete req.session.challengeId;
      req.session.flash = {
        kind: 'error',
        message: 'Your reset took too long. Ask for a new link: each link works once.',
      };
      return res.redirect(303, '/forgot');
    }
    if (req.session.pendingLogin || req.session.pendingEnrolment) {
      const enrolling = req.session.pendingEnrolment !== undefined;
      delete req.session.pendingLogin;
      delete req.session.pendingEnrolment;
      delete req.session.challengeId;
      req.session.flash = {
        kind: 'error',
        message: enrolling
          ? 'Your sign-up code page timed out. Log in with your username and password to get a new code.'
          : 'Your login took too long. Please log in again.',
      };
    }
    return res.redirect(303, '/login');
  }

  /** When this half-finished step times out (null for the admin step-up, which lives with the session). */
  function stageEndsAt(req: Request, kind: StageKind): number | null {
    const session = req.session;
    const started: Record<StageKind, number | undefined> = {
      login: session.pendingLogin?.passwordVerifiedAt,
      signup: session.pendingEnrolment?.startedAt,
      reset: session.pendingReset?.startedAt,
      settings: session.pendingSettings?.startedAt,
      phone_change: session.pendingPhoneChange?.startedAt,
      admin: undefined,
    };
    const at = started[kind];
    return at === undefined ? null : at + PENDING_LOGIN_TIMEOUT_MS;
  }

  async function renderVerify(
    req: Request,
    res: Response,
    stage: Stage,
    status = 200,
    errors: FieldError[] = [],
    /** What the number-correction form (sign-up only) shows again. */
    values: Record<string, string> = {},
  ) {
    const lockedSeconds = await mfa.lockedForSeconds(stage.user.id);
    const suspended = await mfa.isCodeEntrySuspended(stage.user.id);
    const challenge = stage.challenge;
    // A wait (code entry paused, a send refused) that outlasts this half-finished step: say so, and
    // offer a start again that works then, rather than a page that will have timed out.
    const now = clock.now().getTime();
    const waitSeconds = Math.max(lockedSeconds ?? 0, Number(res.get('Retry-After') ?? 0) || 0);
    const pageEndsAt = stageEndsAt(req, stage.kind);
    const startAgainAfter =
      waitSeconds > 0 && pageEndsAt !== null && now + waitSeconds * 1000 > pageEndsAt
        ? new Date(now + waitSeconds * 1000)
        : null;
    const channel: Channel = challenge?.channel ?? req.session.channel ?? stage.user.preferredChannel;
    // A suspended account's page says so itself; a flash would only repeat it.
    const flash = suspended ? undefined : req.session.flash;
    delete req.session.flash;
    res.status(status).render('mfa/verify', {
      title: VERIFY_TITLES[stage.kind],
      codeKind: stage.kind,
      startAgainAfter,
      country: values.country ?? phoneCountryOf(stage.user.phone),
      countries: COUNTRY_OPTIONS,
      values,
      maskedPhone: maskPhone(stage.user.phone),
      channel,
      channelLabel: describeChannel(channel),
      otherChannels: mfa.channels().filter((other) => other !== channel),
      unsupportedChannel: mfa.channels().includes(channel) ? null : describeChannel(channel),
      challenge: challenge && {
        expired: mfa.isExpired(challenge),
        expiresAt: new Date(challenge.expiresAt),
        attemptsLeft: mfa.attemptsLeft(challenge),
        usedUp: mfa.attemptsLeft(challenge) === 0,
      },
      cooldownSeconds: challenge ? mfa.cooldownRemainingSeconds(challenge) : 0,
      lockedWait: lockedSeconds === null ? null : describeWait(lockedSeconds),
      suspended,
      codeDigits: deps.codeDigits,
      flash,
      errors,
    });
  }

  router.use('/verify', noStore);

  router.get('/verify', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    await renderVerify(req, res, stage);
  });

  router.post('/verify', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    const form = parseForm(formSchema, req.body);
    if (!form.ok) return renderVerify(req, res, stage, 400, form.errors);

    const challenge = stage.challenge;
    if (!challenge) {
      return renderVerify(req, res, stage, 400, [
        { field: 'code', message: 'No code has been sent yet. Send one first.' },
      ]);
    }

    // A step-up from a signed-in session, or a reset begun from a link: their wrong codes count
    // against this session, never the owner's logins (whoever holds a stolen cookie or a mailbox
    // must not be able to pause or suspend them).
    const sessionCountedStage = stage.kind !== 'login' && stage.kind !== 'signup';
    const result = await mfa.verifyCode({
      challenge,
      code: form.data.code,
      username: stage.user.username,
      ip: req.ip,
      // A step-up's wrong codes count against this session, never the owner's logins.
      ...(sessionCountedStage ? { stepUpSession: stepUpSessionKey(req) } : {}),
    });
    stage.challenge = result.challenge;
    if (!result.ok) {
      switch (result.reason) {
        case 'wrong_code':
          return renderVerify(req, res, stage, 400, [
            {
              field: 'code',
              message: `That code is not right. ${result.attemptsLeft} ${result.attemptsLeft === 1 ? 'attempt' : 'attempts'} left.`,
            },
          ]);
        case 'expired':
          return renderVerify(req, res, stage, 400, [
            { field: 'code', message: 'This code has expired. Send a new one.' },
          ]);
        case 'used_up':
          return renderVerify(req, res, stage, 400, [
            {
              field: 'code',
              message:
                result.challenge.closeReason === 'accepted'
                  ? 'This code has already been used. Send a new one.'
                  : 'Too many wrong attempts for this code. Send a new one.',
            },
          ]);
        case 'replaced':
          return renderVerify(req, res, stage, 400, [
            {
              field: 'code',
              message: 'A newer code was sent since this one, so this one no longer works. Send a new one.',
            },
          ]);
        case 'suspended':
          return renderVerify(req, res, stage, 403);
        case 'locked':
          if (result.lockedBy === 'session' && stage.kind === 'reset') {
            // The reset ends here; its link is spent, and a new one starts afresh.
            delete req.session.pendingReset;
            delete req.session.challengeId;
            await audit.record({
              type: 'code_lockout',
              userId: stage.user.id,
              username: stage.user.username,
              ip: req.ip,
              detail: 'reset abandoned after too many wrong codes',
            });
            req.session.flash = {
              kind: 'error',
              message: 'Too many wrong codes. This reset has ended: ask for a new link to try again.',
            };
            return res.redirect(303, '/forgot');
          }
          if (result.lockedBy === 'session') {
            // Too many wrong step-up codes from one signed-in session: whoever holds it does not
            // hold the phone. The session ends; its owner logs in again with password and code.
            await audit.record({
              type: 'logout',
              userId: stage.user.id,
              username: stage.user.username,
              ip: req.ip,
              detail: 'session ended after too many wrong step-up codes',
            });
            await logOutThisBrowser(req, res, { isProduction: deps.isProduction, logger: deps.logger });
            return res.redirect(303, '/login?stepUpFailed');
          }
          res.set('Retry-After', String(result.retryAfterSeconds));
          return renderVerify(req, res, stage, 429, [
            {
              field: 'code',
              message: `Too many wrong codes. For your safety, wait ${describeWait(result.retryAfterSeconds)} before trying again.`,
            },
          ]);
      }
    }

    const channel = result.challenge.channel;
    const now = clock.now().getTime();
    switch (stage.kind) {
      case 'login':
      case 'signup':
        return completeLogin(req, res, stage, channel);
      case 'admin':
      case 'settings': {
        const signedIn = req.session.signedIn!;
        const kept = {
          adminVerified: req.session.adminVerified,
          settingsVerified: req.session.settingsVerified,
          // A deletion link asked for in this browser keeps working here (src/account/deletion.ts).
          deletionRequest: req.session.deletionRequest,
        };
        const returnTo = req.session.pendingSettings?.returnTo;
        // An admin sent for a fresh code in the middle of an action goes back to it (src/admin/).
        const adminReturnTo = toSafeReturnPath(req.session.returnTo, '/admin');
        // A fresh session id for the raised privilege; the other step-up, if any, carries over.
        if (!(await regenerateSession(req))) return res.redirect(303, SESSION_ENDED_PATH);
        Object.assign(req.session, kept);
        req.session.signedIn = { ...signedIn, lastSeenAt: now };
        req.session.channel = channel;
        const verified = { userId: stage.user.id, verifiedAt: now };
        if (stage.kind === 'admin') req.session.adminVerified = verified;
        else req.session.settingsVerified = verified;
        await audit.record({
          type: stage.kind === 'admin' ? 'admin_verified' : 'settings_verified',
          userId: stage.user.id,
          username: stage.user.username,
          ip: req.ip,
        });
        if (stage.kind === 'admin') {
          return res.redirect(303, adminReturnTo.startsWith('/admin/') ? adminReturnTo : '/admin');
        }
        return res.redirect(303, returnTo ?? '/account/security');
      }
      case 'phone_change':
        return completePhoneChange(req, res, stage);
      case 'reset': {
        if (!(await regenerateSession(req))) return res.redirect(303, SESSION_ENDED_PATH);
        req.session.resetVerified = { userId: stage.user.id, verifiedAt: now };
        await audit.record({
          type: 'password_reset_verified',
          userId: stage.user.id,
          username: stage.user.username,
          ip: req.ip,
        });
        return res.redirect(303, '/reset/password');
      }
    }
  });

  /** The login code, or the sign-up code (which also proves the number): the person is signed in. */
  async function completeLogin(req: Request, res: Response, stage: Stage, channel: Channel) {
    const now = clock.now().getTime();
    let signUpFlash: { kind: 'info' | 'error'; message: string } | undefined;
    if (stage.kind === 'signup') {
      // The code proves the number it went to, only if that is still the account's number.
      if (!(await users.markPhoneProven(stage.user.id, stage.user.phone))) return leaveCodePage(req, res);
      await audit.record({
        type: 'phone_proven',
        userId: stage.user.id,
        username: stage.user.username,
        ip: req.ip,
        detail: maskPhone(stage.user.phone),
      });
      // Only now, with a phone proven, does the address given at sign-up get its link: a bot with
      // no phone cannot make this site mail strangers.
      if (stage.user.pendingEmail) signUpFlash = await sendSignUpEmailLink(req, stage.user);
    }
    const returnTo = req.session.returnTo;
    // A fresh session id now that the person is fully signed in (no fixation).
    if (!(await regenerateSession(req))) return res.redirect(303, SESSION_ENDED_PATH);
    const previousLoginAt = await users.recordLogin(stage.user.id);
    req.session.signedIn = {
      userId: stage.user.id,
      signedInAt: now,
      lastSeenAt: now,
      previousLoginAt: previousLoginAt?.getTime() ?? null,
      // For the account's list of its sessions ("Firefox on Windows, 203.0.x.x").
      userAgent: userAgentToKeep(req.get('user-agent')),
      ip: req.ip ?? null,
    };
    req.session.channel = channel;
    if (signUpFlash) req.session.flash = signUpFlash;
    await throttle.recordSuccess(stage.user.username, clientKeyOfRequest(req));
    await audit.record({
      type: 'login_succeeded',
      userId: stage.user.id,
      username: stage.user.username,
      ip: req.ip,
    });
    rememberChannel(res, deps.channelCookie, channel);
    // This browser has now proved password and code: strangers guessing the password no longer slow it down.
    deps.knownDevices.remember(res, stage.user.id);
    return res.redirect(303, returnTo ?? '/account');
  }

  async function sendSignUpEmailLink(
    req: Request,
    user: User,
  ): Promise<{ kind: 'info' | 'error'; message: string }> {
    const address = user.pendingEmail!;
    const sent = await deps.emailVerification.start({ user, address, ip: req.ip });
    return sent.ok
      ? {
          kind: 'info',
          message: `A link is on its way to ${address}: open it to confirm your email address.`,
        }
      : {
          kind: 'error',
          message:
            'Too many links were sent to that email address today. Ask for one later in your security settings.',
        };
  }

  /**
   * The code sent to the new number was entered: the number replaces the old one, if the settings
   * step-up that allowed the change is still fresh (5 minutes from its code, never sliding).
   */
  async function completePhoneChange(req: Request, res: Response, stage: Stage) {
    const account = currentUserOf(res)!;
    const now = clock.now().getTime();
    delete req.session.pendingPhoneChange;
    delete req.session.challengeId;
    if (!isSettingsVerified(req.session, account.id, now)) {
      req.session.flash = {
        kind: 'error',
        message:
          'Your confirmation ran out before the new number was confirmed. Confirm it is you, then change the number again.',
      };
      return res.redirect(303, '/account/security');
    }
    // The number was checked when the change started; other accounts may have proven it since.
    // (Two accounts finishing at the same instant could still both pass: the cap is a fraud
    // brake, not a uniqueness rule.)
    const admission = await deps.registrations.checkNumberForAccount({
      clientKey: clientKeyOfRequest(req),
      phone: stage.user.phone,
      userId: account.id,
      username: account.username,
    });
    if (!admission.allowed) {
      req.session.flash = { kind: 'error', message: admission.message };
      return res.redirect(303, '/account/security');
    }
    if (!(await users.changeProvenPhone(account.id, account.phone, stage.user.phone))) {
      req.session.flash = {
        kind: 'error',
        message: 'Your number was changed meanwhile. Check it below and try again.',
      };
      return res.redirect(303, '/account/security');
    }
    await audit.record({
      type: 'phone_changed',
      userId: account.id,
      username: account.username,
      ip: req.ip,
      detail: `${maskPhone(account.phone)} to ${maskPhone(stage.user.phone)}`,
    });
    await deps.notices.notify({ type: 'phone_changed', user: account, ip: req.ip });
    req.session.flash = {
      kind: 'info',
      message: `Your phone number is now ${maskPhone(stage.user.phone)}. Codes go to it from now on.`,
    };
    return res.redirect(303, '/account/security');
  }

  /**
   * "Start again": leaves a half-finished step (a login, a sign-up code, a reset, a settings
   * confirmation) for the page it began on, where it can be started afresh once a wait is over.
   */
  router.post('/verify/start-over', (req, res) => {
    const signedIn = currentUserOf(res) !== undefined;
    const resetting = req.session.pendingReset !== undefined;
    for (const slot of [
      'pendingLogin',
      'pendingEnrolment',
      'pendingReset',
      'pendingSettings',
      'pendingPhoneChange',
    ] as const) {
      delete req.session[slot];
    }
    delete req.session.challengeId;
    res.redirect(303, signedIn ? '/account/security' : resetting ? '/forgot' : '/login');
  });

  router.post('/verify/resend', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    const form = parseForm(resendSchema, req.body);
    if (!form.ok) return renderVerify(req, res, stage, 400, form.errors);

    const requested = form.data.channel;
    const current = stage.challenge?.channel ?? req.session.channel ?? stage.user.preferredChannel;
    // "Send a new code" keeps the current channel, unless no provider here can deliver by it.
    const channel = requested ?? delivery.deliverableChannel(current);
    // A number not proven yet (a sign-up's, or the new one of a phone change): within its own daily
    // allowance, whoever asks.
    if (stage.scope === 'enrol') {
      const sent = await deps.enrolment.sendCode(req, stage.user, channel);
      if (!sent.ok) {
        if (sent.retryAfterSeconds !== undefined) res.set('Retry-After', String(sent.retryAfterSeconds));
        req.session.flash = { kind: 'error', message: sent.message };
        stage.challenge = await delivery.currentChallenge(req, { userId: stage.user.id, scope: 'enrol' });
        return renderVerify(req, res, stage, sent.status);
      }
      req.session.channel = channel;
      req.session.flash = {
        kind: 'info',
        message: `A new code is on its way by ${describeChannel(channel)}.`,
      };
      return res.redirect(303, '/verify');
    }
    const outcome = await delivery.sendCode(req, { user: stage.user, scope: stage.scope, channel });
    if (!outcome.ok) {
      if ('retryAfterSeconds' in outcome) res.set('Retry-After', String(outcome.retryAfterSeconds));
      // Within the cooldown the session waits for the code already on its way (delivery adopted it).
      if (outcome.reason === 'cooldown' && outcome.pending) stage.challenge = outcome.pending;
      req.session.flash = { kind: 'error', message: describeSendRefusal(outcome) };
      return renderVerify(req, res, stage, sendRefusalStatus(outcome));
    }
    req.session.channel = channel;
    // Only a login stores the choice: a reset link's holder or a step-up does not change the
    // account's default channel.
    if (stage.kind === 'login' && requested && requested !== stage.user.preferredChannel) {
      await users.setPreferredChannel(stage.user.id, requested);
    }
    req.session.flash = {
      kind: 'info',
      message: `A new code is on its way by ${describeChannel(channel)}. Earlier codes no longer work.`,
    };
    res.redirect(303, '/verify');
  });

  /**
   * A mistyped number, corrected on the sign-up code page: only while the account has not proven
   * one. The new number passes the sign-up rules (countries, VoIP, accounts per number, sign-ups
   * per address), and a code goes to it at once; earlier codes to the old number no longer work.
   */
  router.post('/verify/number', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    if (stage.kind !== 'signup') {
      return renderVerify(req, res, stage, 400, [
        { field: 'code', message: 'The number can only be changed here while signing up.' },
      ]);
    }
    const form = parseForm(correctNumberSchema, req.body);
    if (!form.ok) {
      const body = req.body as Record<string, unknown> | undefined;
      return renderVerify(req, res, stage, 400, form.errors, {
        phone: typeof body?.phone === 'string' ? body.phone.slice(0, 64) : '',
      });
    }
    const phone = parsePhone(form.data.phone, form.data.country);
    if (!phone.ok) {
      return renderVerify(req, res, stage, 400, [{ field: 'phone', message: phone.message }], {
        phone: form.data.phone,
      });
    }
    if (phone.e164 !== stage.user.phone) {
      const admission = await deps.registrations.reserveRegistration({
        clientKey: clientKeyOfRequest(req),
        phone: phone.e164,
      });
      if (!admission.allowed) {
        const message =
          'message' in admission
            ? admission.message
            : `Too many sign-ups from your network right now. Try again in ${describeWait(admission.retryAfterSeconds)}.`;
        if ('retryAfterSeconds' in admission) res.set('Retry-After', String(admission.retryAfterSeconds));
        return renderVerify(
          req,
          res,
          stage,
          'retryAfterSeconds' in admission ? 429 : 400,
          [{ field: 'phone', message }],
          {
            phone: form.data.phone,
          },
        );
      }
      let replaced = false;
      try {
        replaced = await users.replaceUnprovenPhone(stage.user.id, phone.e164);
      } finally {
        await admission.complete(replaced);
      }
      if (!replaced) return leaveCodePage(req, res);
      await audit.record({
        type: 'phone_corrected_at_signup',
        userId: stage.user.id,
        username: stage.user.username,
        ip: req.ip,
        detail: `${maskPhone(stage.user.phone)} to ${maskPhone(phone.e164)}`,
      });
      stage.user = { ...stage.user, phone: phone.e164 };
    }
    const channel = req.session.channel ?? stage.user.preferredChannel;
    const sent = await deps.enrolment.sendCode(req, stage.user, channel);
    req.session.flash = sent.ok
      ? { kind: 'info', message: `A code is on its way to ${maskPhone(stage.user.phone)}.` }
      : { kind: 'error', message: sent.message };
    res.redirect(303, '/verify');
  });

  return router;
}

const VERIFY_TITLES: Record<StageKind, string> = {
  login: 'Enter your code',
  signup: 'Confirm your phone number',
  admin: 'Confirm it is you',
  settings: 'Confirm it is you',
  phone_change: 'Confirm your new number',
  reset: 'Enter your reset code',
};
