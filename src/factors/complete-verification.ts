import type { Request, Response } from 'express';
import type { EmailVerification } from '../account/email-verification.js';
import type { AuditLog } from '../audit/log.js';
import { userAgentToKeep } from '../auth/account-sessions.js';
import { currentUserOf } from '../auth/guards.js';
import type { KnownDevices } from '../auth/known-device.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import { rememberChannel } from '../auth/routes.js';
import type { Clock } from '../clock.js';
import type { RegistrationGuard } from '../fraud/registration-guard.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import { toSafeReturnPath } from '../http/safe-redirect.js';
import { SESSION_ENDED_PATH, regenerateSession } from '../http/session.js';
import type { Channel } from '../mfa/provider.js';
import { isSettingsVerified } from '../mfa/scopes.js';
import type { Notices } from '../notices/notices.js';
import { maskPhone } from '../users/phone.js';
import type { User, UserStore } from '../users/store.js';
import type { StageKind, StageMethod } from './stage-factors.js';

/**
 * The one place a successful verification is finished, whichever factor did it (a phone code, an
 * authenticator app, a passkey, a recovery code, a remembered browser, or the password alone when
 * the person turned the second step off): a fresh session id for the raised privilege, the
 * scope's slot, the audit line and the notices. No factor repeats these steps.
 */
export interface CompletedFactor {
  method: StageMethod | 'remembered_browser' | 'password_only';
  /** The phone's channel, when the phone did it: remembered as the browser's channel. */
  channel?: Channel;
  /** How the audit line names it: "text message", "authenticator app", "passkey “Laptop”". */
  describedAs: string;
}

export interface VerificationCompleter {
  /** Finishes the stage and answers (a redirect). `user` is the account; for phone_change, with the new number. */
  complete(
    req: Request,
    res: Response,
    stage: { kind: StageKind; user: User },
    factor: CompletedFactor,
    options?: { rememberBrowser?: boolean },
  ): Promise<void>;
}

/** Hooks of other features into a completed login (remembered browsers, the recovery codes offer). */
export interface LoginCompletionHooks {
  /** "Remember this browser" was ticked on the login's code page. */
  rememberBrowser?(req: Request, res: Response, user: User): Promise<void>;
  /** Where to go after the login instead of the usual page (the recovery codes offer), or null. */
  afterLoginPath?(user: User): Promise<string | null>;
  /** A recovery code let the person in: the notice says how many are left. */
  recoveryCodeUsed?(req: Request, user: User): Promise<void>;
  /** The account's number changed: what it let skip the second step must prove it again. */
  phoneChanged?(userId: number): Promise<void>;
}

export interface VerificationCompleterDeps {
  users: UserStore;
  audit: AuditLog;
  clock: Clock;
  throttle: LoginThrottle;
  knownDevices: KnownDevices;
  channelCookie: { name: string; secure: boolean };
  registrations: RegistrationGuard;
  emailVerification: EmailVerification;
  notices: Notices;
  hooks?: LoginCompletionHooks;
}

export function createVerificationCompleter(deps: VerificationCompleterDeps): VerificationCompleter {
  const { users, audit, clock } = deps;

  async function recordFactorUse(req: Request, user: User, factor: CompletedFactor) {
    if (factor.method === 'phone') await users.recordPhoneUse(user.id);
    if (factor.method === 'recovery') await deps.hooks?.recoveryCodeUsed?.(req, user);
  }

  /** The login's code, the sign-up's code (which also proves the number), or a login that needs none. */
  async function completeLogin(
    req: Request,
    res: Response,
    stage: { kind: StageKind; user: User },
    factor: CompletedFactor,
    rememberBrowser: boolean,
  ) {
    const { user } = stage;
    const now = clock.now().getTime();
    let signUpFlash: { kind: 'info' | 'error'; message: string } | undefined;
    if (stage.kind === 'signup') {
      // The code proves the number it went to, only if that is still the account's number; if not,
      // the code page finds the stage over and says so.
      if (!(await users.markPhoneProven(user.id, user.phone))) return res.redirect(303, '/verify');
      await audit.record({
        type: 'phone_proven',
        userId: user.id,
        username: user.username,
        ip: req.ip,
        detail: maskPhone(user.phone),
      });
      // Only now, with a phone proven, does the address given at sign-up get its link: a bot with
      // no phone cannot make this site mail strangers.
      if (user.pendingEmail) signUpFlash = await sendSignUpEmailLink(req, user);
    }
    const returnTo = req.session.returnTo;
    const provedSecondFactor = factor.method !== 'password_only' && factor.method !== 'remembered_browser';
    // A fresh session id now that the person is fully signed in (no fixation).
    if (!(await regenerateSession(req))) return res.redirect(303, SESSION_ENDED_PATH);
    const previousLoginAt = await users.recordLogin(user.id);
    req.session.signedIn = {
      userId: user.id,
      signedInAt: now,
      lastSeenAt: now,
      previousLoginAt: previousLoginAt?.getTime() ?? null,
      // For the account's list of its sessions ("Firefox on Windows, 203.0.x.x").
      userAgent: userAgentToKeep(req.get('user-agent')),
      ip: req.ip ?? null,
      provedSecondFactor,
    };
    if (factor.channel) req.session.channel = factor.channel;
    if (signUpFlash) req.session.flash = signUpFlash;
    await deps.throttle.recordSuccess(user.username, clientKeyOfRequest(req));
    await audit.record({
      type: 'login_succeeded',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: `by ${factor.describedAs}`,
    });
    await recordFactorUse(req, user, factor);
    if (factor.channel) rememberChannel(res, deps.channelCookie, factor.channel);
    // This browser has now proved password and a second factor: strangers guessing the password no
    // longer slow it down.
    deps.knownDevices.remember(res, user.id);
    if (rememberBrowser && stage.kind === 'login') await deps.hooks?.rememberBrowser?.(req, res, user);
    // The recovery codes offer follows only a login that proved a second factor.
    const offer =
      stage.kind === 'login' && provedSecondFactor ? await deps.hooks?.afterLoginPath?.(user) : null;
    return res.redirect(303, offer ?? returnTo ?? '/account');
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

  /** The admin or the settings step-up: its slot, in a fresh session id; the other step-up carries over. */
  async function completeStepUp(
    req: Request,
    res: Response,
    stage: { kind: 'admin' | 'settings'; user: User },
    factor: CompletedFactor,
  ) {
    const now = clock.now().getTime();
    const signedIn = req.session.signedIn!;
    const kept = {
      adminVerified: req.session.adminVerified,
      settingsVerified: req.session.settingsVerified,
      // A deletion link asked for in this browser keeps working here (src/account/deletion.ts).
      deletionRequest: req.session.deletionRequest,
      // An app being added when the settings code ran out: its QR code stays the one scanned.
      pendingAppEnrolment: req.session.pendingAppEnrolment,
    };
    const returnTo = req.session.pendingSettings?.returnTo;
    // An admin sent for a fresh code in the middle of an action goes back to it (src/admin/).
    const adminReturnTo = toSafeReturnPath(req.session.returnTo, '/admin');
    if (!(await regenerateSession(req))) return res.redirect(303, SESSION_ENDED_PATH);
    Object.assign(req.session, kept);
    req.session.signedIn = { ...signedIn, lastSeenAt: now };
    if (factor.channel) req.session.channel = factor.channel;
    const verified = { userId: stage.user.id, verifiedAt: now };
    if (stage.kind === 'admin') req.session.adminVerified = verified;
    else req.session.settingsVerified = verified;
    await audit.record({
      type: stage.kind === 'admin' ? 'admin_verified' : 'settings_verified',
      userId: stage.user.id,
      username: stage.user.username,
      ip: req.ip,
      detail: `by ${factor.describedAs}`,
    });
    await recordFactorUse(req, stage.user, factor);
    if (stage.kind === 'admin') {
      return res.redirect(303, adminReturnTo.startsWith('/admin/') ? adminReturnTo : '/admin');
    }
    return res.redirect(303, returnTo ?? '/account/security');
  }

  /**
   * The code sent to the new number was entered: the number replaces the old one, if the settings
   * step-up that allowed the change is still fresh (5 minutes from its code, never sliding).
   */
  async function completePhoneChange(req: Request, res: Response, newNumber: string) {
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
      phone: newNumber,
      userId: account.id,
      username: account.username,
    });
    if (!admission.allowed) {
      req.session.flash = { kind: 'error', message: admission.message };
      return res.redirect(303, '/account/security');
    }
    if (!(await users.changeProvenPhone(account.id, account.phone, newNumber))) {
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
      detail: `${maskPhone(account.phone)} to ${maskPhone(newNumber)}`,
    });
    await deps.hooks?.phoneChanged?.(account.id);
    await deps.notices.notify({ type: 'phone_changed', user: account, ip: req.ip });
    req.session.flash = {
      kind: 'info',
      message: `Your phone number is now ${maskPhone(newNumber)}. Codes go to it from now on.`,
    };
    return res.redirect(303, '/account/security');
  }

  return {
    async complete(req, res, stage, factor, options = {}) {
      switch (stage.kind) {
        case 'login':
        case 'signup':
          return completeLogin(req, res, stage, factor, options.rememberBrowser === true);
        case 'admin':
        case 'settings':
          return completeStepUp(req, res, { kind: stage.kind, user: stage.user }, factor);
        case 'phone_change':
          return completePhoneChange(req, res, stage.user.phone);
        case 'reset': {
          if (!(await regenerateSession(req))) return res.redirect(303, SESSION_ENDED_PATH);
          req.session.resetVerified = { userId: stage.user.id, verifiedAt: clock.now().getTime() };
          await audit.record({
            type: 'password_reset_verified',
            userId: stage.user.id,
            username: stage.user.username,
            ip: req.ip,
            detail: `by ${factor.describedAs}`,
          });
          await recordFactorUse(req, stage.user, factor);
          return res.redirect(303, '/reset/password');
        }
      }
    },
  };
}
