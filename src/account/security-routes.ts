import { Router, type Request, type Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import type { Enrolment } from '../auth/enrolment.js';
import { currentUserOf } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { emailKeyOf } from '../email/address.js';
import { describeWait } from '../errors.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import { SESSION_ENDED_PATH, regenerateSession } from '../http/session.js';
import { parseForm } from '../http/validate.js';
import type { CodeDelivery } from '../mfa/delivery.js';
import { ProviderError, describeChannel, type Channel } from '../mfa/provider.js';
import type { Notices } from '../notices/notices.js';
import { parsePhone } from '../users/phone.js';
import type { UserStore } from '../users/store.js';
import type { EmailVerification, StartOutcome } from './email-verification.js';
import type { PasswordChange } from './password-change.js';
import type { PhoneChange } from './phone-change.js';
import {
  changeChannelSchema,
  changeEmailSchema,
  changePasswordSchema,
  changePhoneSchema,
} from './schemas.js';
import type { SecurityPage } from './security-page.js';
import { SETTINGS_PATH, requireFreshSettingsCode } from './settings-step-up.js';

/**
 * The changes on /account/security (issue 11). Guards in order: signed in and no-store (the
 * settings step-up router, mounted before this one), a fresh settings code (all but the default
 * channel and a link sent again), the form, then the work in a module of its own.
 */
export interface SecurityRouterDeps {
  page: SecurityPage;
  users: UserStore;
  delivery: CodeDelivery;
  enrolment: Enrolment;
  passwordChange: PasswordChange;
  phoneChange: PhoneChange;
  emailVerification: EmailVerification;
  notices: Notices;
  audit: AuditLog;
  clock: Clock;
}

/** Keeps only what a form may show again: never a password. */
function echoValues(body: unknown, fields: string[]): Record<string, string> {
  const source = (body ?? {}) as Record<string, unknown>;
  const values: Record<string, string> = {};
  for (const name of fields) {
    const value = source[name];
    if (typeof value === 'string') values[name] = value.slice(0, 254);
  }
  return values;
}

function describeEmailRefusal(outcome: Exclude<StartOutcome, { ok: true }>): string {
  return `Too many links were sent for this account or to this address. Try again in ${describeWait(outcome.retryAfterSeconds)}.`;
}

export function createSecurityRouter(deps: SecurityRouterDeps): Router {
  const { page, users, audit, clock } = deps;
  const router = Router();
  const freshCode = requireFreshSettingsCode(clock);
  const done = (req: Request, res: Response, message: string) => {
    req.session.flash = { kind: 'info', message };
    res.redirect(303, SETTINGS_PATH);
  };

  router.get(SETTINGS_PATH, (req, res) => page.render(req, res));

  router.post(`${SETTINGS_PATH}/password`, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    const form = parseForm(changePasswordSchema, req.body);
    if (!form.ok) return page.render(req, res, { status: 400, errors: form.errors });
    const outcome = await deps.passwordChange.change({
      user,
      currentPassword: form.data.current_password,
      newPassword: form.data.new_password,
      keepSid: req.sessionID,
      ip: req.ip,
    });
    if (!outcome.ok) {
      if (outcome.reason === 'too_many') {
        res.set('Retry-After', String(outcome.retryAfterSeconds));
        const message = `Too many wrong passwords. Try again in ${describeWait(outcome.retryAfterSeconds)}.`;
        return page.render(req, res, { status: 429, errors: [{ field: 'current_password', message }] });
      }
      return page.render(req, res, {
        status: 400,
        errors: [
          outcome.reason === 'wrong_current'
            ? { field: 'current_password', message: 'That is not your current password.' }
            : { field: 'new_password', message: 'Choose a new password, different from your current one.' },
        ],
      });
    }
    // The browser that changed it stays signed in, under a new session id (no fixation), with its
    // confirmations: the person has just proved the new password is theirs.
    const kept = {
      signedIn: req.session.signedIn!,
      channel: req.session.channel,
      settingsVerified: req.session.settingsVerified,
      adminVerified: req.session.adminVerified,
    };
    if (!(await regenerateSession(req))) return res.redirect(303, SESSION_ENDED_PATH);
    Object.assign(req.session, kept, { signedIn: { ...kept.signedIn, lastSeenAt: clock.now().getTime() } });
    const others = outcome.endedSessions;
    done(
      req,
      res,
      `Your password was changed.${others > 0 ? ` ${others} other ${others === 1 ? 'session was' : 'sessions were'} ended.` : ''}`,
    );
  });

  router.post(`${SETTINGS_PATH}/phone`, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    const values = echoValues(req.body, ['phone', 'country']);
    const form = parseForm(changePhoneSchema, req.body);
    if (!form.ok) return page.render(req, res, { status: 400, errors: form.errors, values });
    const phone = parsePhone(form.data.phone, form.data.country);
    if (!phone.ok) {
      return page.render(req, res, {
        status: 400,
        errors: [{ field: 'phone', message: phone.message }],
        values,
      });
    }
    const start = await deps.phoneChange.start({
      user,
      phone: phone.e164,
      clientKey: clientKeyOfRequest(req),
    });
    if (!start.ok) {
      if (start.retryAfterSeconds !== undefined) res.set('Retry-After', String(start.retryAfterSeconds));
      return page.render(req, res, {
        status: start.status,
        errors: [{ field: 'phone', message: start.message }],
        values,
      });
    }
    // The code page now waits for a code sent to the NEW number (src/mfa/routes.ts, 'phone_change'):
    // no code to the old one (a login or settings code) can prove it.
    delete req.session.pendingSettings;
    req.session.pendingPhoneChange = { userId: user.id, phone: phone.e164, startedAt: clock.now().getTime() };
    const channels = deps.delivery.channels();
    const preferred: Channel = req.session.channel ?? user.preferredChannel;
    const channel = channels.includes(preferred) ? preferred : (channels[0] ?? preferred);
    let sent: Awaited<ReturnType<Enrolment['sendCode']>>;
    try {
      sent = await deps.enrolment.sendCode(req, { ...user, phone: phone.e164 }, channel);
    } catch (error) {
      delete req.session.pendingPhoneChange;
      // Only a send that surely went nowhere gives the day's new-number allowance back: one that
      // may have been delivered (a timeout, Twilio re-sending a pending code) or failed after it
      // went out keeps it, or failing sends would cost the account nothing, again and again.
      if (error instanceof ProviderError && error.delivered === 'no') await start.release();
      throw error;
    }
    if (!sent.ok) {
      delete req.session.pendingPhoneChange;
      await start.release();
      if (sent.retryAfterSeconds !== undefined) res.set('Retry-After', String(sent.retryAfterSeconds));
      return page.render(req, res, {
        status: sent.status,
        errors: [{ field: 'phone', message: sent.message }],
        values,
      });
    }
    res.redirect(303, '/verify');
  });

  /** The default way codes are sent: no code needed (it changes where nothing goes). */
  router.post(`${SETTINGS_PATH}/channel`, async (req, res) => {
    const user = currentUserOf(res)!;
    const form = parseForm(changeChannelSchema, req.body);
    if (!form.ok) return page.render(req, res, { status: 400, errors: form.errors });
    const channel = form.data.channel;
    if (!deps.delivery.channels().includes(channel)) {
      return page.render(req, res, {
        status: 400,
        errors: [{ field: 'channel', message: 'Codes cannot be sent that way here. Choose another way.' }],
      });
    }
    if (channel !== user.preferredChannel) {
      await users.setPreferredChannel(user.id, channel);
      await audit.record({
        type: 'channel_changed',
        userId: user.id,
        username: user.username,
        ip: req.ip,
        detail: `${describeChannel(user.preferredChannel)} to ${describeChannel(channel)}`,
      });
    }
    req.session.channel = channel;
    done(req, res, `Your codes are now sent by ${describeChannel(channel)}.`);
  });

  /**
   * A new address (added, or in place of the verified one): it gets a link, and becomes the
   * account's only once that link is opened. The old address stays until then, and then hears
   * of the change (src/account/email-verification.ts). Whether another account uses the address
   * is not said here (that would tell strangers who has an account); its link says so.
   */
  router.post(`${SETTINGS_PATH}/email`, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    const values = echoValues(req.body, ['email']);
    const form = parseForm(changeEmailSchema, req.body);
    if (!form.ok) return page.render(req, res, { status: 400, errors: form.errors, values });
    const address = form.data.email;
    if (user.email && emailKeyOf(user.email) === emailKeyOf(address)) {
      return page.render(req, res, {
        status: 400,
        errors: [{ field: 'email', message: 'This is already your email address.' }],
        values,
      });
    }
    const sent = await deps.emailVerification.start({ user, address, ip: req.ip });
    if (!sent.ok) {
      res.set('Retry-After', String(sent.retryAfterSeconds));
      return page.render(req, res, {
        status: 429,
        errors: [{ field: 'email', message: describeEmailRefusal(sent) }],
        values,
      });
    }
    done(req, res, `We sent a link to ${address}. Open it within 24 hours to confirm the address.`);
  });

  /** The link again, to the address already waiting: no code needed, it goes nowhere new. */
  router.post(`${SETTINGS_PATH}/email/resend`, async (req, res) => {
    const user = currentUserOf(res)!;
    if (!user.pendingEmail) {
      req.session.flash = { kind: 'error', message: 'No email address is waiting for its link.' };
      return res.redirect(303, SETTINGS_PATH);
    }
    const sent = await deps.emailVerification.start({ user, address: user.pendingEmail, ip: req.ip });
    if (!sent.ok) {
      res.set('Retry-After', String(sent.retryAfterSeconds));
      req.session.flash = { kind: 'error', message: describeEmailRefusal(sent) };
      return res.redirect(303, SETTINGS_PATH);
    }
    done(req, res, `We sent a new link to ${user.pendingEmail}. Earlier links no longer work.`);
  });

  /** No more email: notices and resets stop. The address that was verified hears of it, last. */
  router.post(`${SETTINGS_PATH}/email/remove`, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    if (!user.email && !user.pendingEmail) {
      req.session.flash = { kind: 'error', message: 'Your account has no email address to remove.' };
      return res.redirect(303, SETTINGS_PATH);
    }
    await deps.emailVerification.remove({ user, ip: req.ip });
    done(
      req,
      res,
      'Your email address was removed. Without one, you cannot reset a forgotten password by yourself.',
    );
  });

  return router;
}
