import type { Request, Response } from 'express';
import { sessionHandleOf, type AccountSessions } from '../auth/account-sessions.js';
import { COUNTRY_OPTIONS } from '../auth/countries.js';
import { currentUserOf } from '../auth/guards.js';
import { describeUserAgent, maskAddress } from '../auth/session-labels.js';
import type { Clock } from '../clock.js';
import { RECOVERY_CODES_LOW, type RecoveryCodes } from '../factors/recovery-codes.js';
import type { FieldError } from '../http/validate.js';
import type { CodeDelivery } from '../mfa/delivery.js';
import { describeChannel } from '../mfa/provider.js';
import { readPendingPhoneChange, settingsVerifiedUntil } from '../mfa/scopes.js';
import { maskPhone, phoneCountryOf } from '../users/phone.js';
import type { User } from '../users/store.js';
import type { SecondStepView } from './second-step-routes.js';
import type { PasskeySection } from '../factors/passkey-section.js';
import type { SecurityLog } from './security-log.js';
import { defaultChoices, effectiveDefault, listFactors } from '../factors/factor-list.js';
import type { FactorStore } from '../factors/store.js';
import { appStatusOf } from '../factors/totp.js';

/**
 * The one page of /account/security: what protects the account, the changes to it (their forms
 * only while a settings code is fresh), the account's sessions and its security log. Each change
 * handler re-renders it with its field errors (400), or redirects back to it with a message.
 */
export interface SecurityPage {
  render(
    req: Request,
    res: Response,
    options?: { status?: number; errors?: FieldError[]; values?: Record<string, string> },
  ): Promise<void>;
}

export function createSecurityPage(deps: {
  delivery: CodeDelivery;
  sessions: AccountSessions;
  securityLog: SecurityLog;
  /** The remembered browsers and the two-step switch (src/account/second-step-routes.ts). */
  secondStep: (user: User) => Promise<SecondStepView>;
  recoveryCodes: Pick<RecoveryCodes, 'status'>;
  /** The account's passkeys (views/account/security-passkeys.ejs). */
  passkeySection: PasskeySection;
  clock: Clock;
  /** The account's apps and passkeys, for the list of its factors (issue 12). */
  factors: FactorStore;
}): SecurityPage {
  return {
    async render(req, res, { status = 200, errors = [], values = {} } = {}) {
      const user = currentUserOf(res)!;
      const now = deps.clock.now().getTime();
      const until = settingsVerifiedUntil(req.session, user.id, now);
      const pendingPhone = readPendingPhoneChange(req.session, now);
      const currentHandle = sessionHandleOf(req.sessionID);
      const [stored, log, factors, secondStep, recovery, passkeySection] = await Promise.all([
        deps.sessions.listForUser(user.id),
        deps.securityLog.forUser(user.id),
        deps.factors.listForUser(user.id),
        deps.secondStep(user),
        deps.recoveryCodes.status(user.id),
        deps.passkeySection.forUser(user.id),
      ]);
      const sessions = stored
        .map((session) => ({
          handle: session.handle,
          browser: describeUserAgent(session.userAgent),
          address: maskAddress(session.ip),
          signedInAt: session.signedInAt,
          lastSeenAt: session.lastSeenAt,
          isCurrent: session.handle === currentHandle,
        }))
        // This browser's own session first; the others as the store lists them (latest seen first).
        .sort((a, b) => Number(b.isCurrent) - Number(a.isCurrent));
      const flash = req.session.flash;
      delete req.session.flash;
      res.status(status).render('account/security', {
        title: 'Security settings',
        wide: true,
        user,
        maskedPhone: maskPhone(user.phone),
        channelLabel: describeChannel(req.session.channel ?? user.preferredChannel),
        defaultChannelLabel: describeChannel(user.preferredChannel),
        channels: deps.delivery.channels(),
        settingsVerifiedUntil: until === null ? null : new Date(until),
        pendingPhone: pendingPhone && pendingPhone.userId === user.id ? maskPhone(pendingPhone.phone) : null,
        countries: COUNTRY_OPTIONS,
        values: { country: phoneCountryOf(user.phone), channel: user.preferredChannel, ...values },
        sessions,
        otherSessions: sessions.filter((session) => !session.isCurrent).length,
        log,
        recoveryCodes: { ...recovery, low: recovery.total > 0 && recovery.left <= RECOVERY_CODES_LOW },
        factorList: listFactors(user, factors),
        defaultChoices: defaultChoices(factors, deps.delivery.channels()),
        currentDefault: effectiveDefault(user, factors),
        secondStep,
        authenticatorApp: appStatusOf(factors),
        passkeySection,
        errors,
        flash,
      });
    },
  };
}
