import type { Request } from 'express';
import { describeWait } from '../errors.js';
import { clientKeyOf } from '../http/client-address.js';
import type { User } from '../users/store.js';
import type { Channel, Scope } from './provider.js';
import type { MfaService, SendOutcome } from './service.js';

/**
 * The HTTP side of sending a code: hands the session's current challenge to the MFA service and
 * keeps what it returns. Shared by login, resend and the admin step-up; each decides what to show.
 */
export interface CodeDelivery {
  channels(): Channel[];
  sendCode(req: Request, request: { user: User; scope: Scope; channel: Channel }): Promise<SendOutcome>;
}

declare module 'express-session' {
  interface SessionData {
    /** A one-off message for the next page (e.g. why no code was sent). */
    flash?: { kind: 'info' | 'error'; message: string };
  }
}

export function describeSendRefusal(outcome: Exclude<SendOutcome, { ok: true }>): string {
  switch (outcome.reason) {
    case 'cooldown':
      return `A code was sent a moment ago. You can ask for another in ${describeWait(outcome.retryAfterSeconds)}.`;
    case 'too_many_codes':
      return `Too many codes requested. You can ask for another in ${describeWait(outcome.retryAfterSeconds)}.`;
    case 'locked':
      return `Too many wrong codes were entered for this account. Wait ${describeWait(outcome.retryAfterSeconds)} and try again.`;
    case 'channel_unavailable':
      return 'Codes cannot be sent that way here. Choose another way to receive your code.';
    // Which site-wide limit it was stays in the audit and operator logs: naming it would help an attacker tune.
    case 'not_now':
      return `No code can be sent right now. Try again in ${describeWait(outcome.retryAfterSeconds)}.`;
    case 'destination_refused':
      return outcome.message;
    case 'suspended':
      return CODE_ENTRY_SUSPENDED_MESSAGE;
  }
}

export const CODE_ENTRY_SUSPENDED_MESSAGE =
  'Too many wrong codes were entered for this account, so code entry is suspended. Contact the site’s admins to have it unlocked.';

/** The HTTP status of a refused send: 429 when waiting helps, 403 when suspended, else 400. */
export function sendRefusalStatus(outcome: Exclude<SendOutcome, { ok: true }>): number {
  if ('retryAfterSeconds' in outcome) return 429;
  return outcome.reason === 'suspended' ? 403 : 400;
}

export function createCodeDelivery(mfa: MfaService): CodeDelivery {
  return {
    channels: () => mfa.channels(),
    async sendCode(req, { user, scope, channel }) {
      const outcome = await mfa.sendCode({
        recipient: { userId: user.id, username: user.username, phone: user.phone },
        scope,
        channel,
        previous: req.session.challenge,
        ip: req.ip,
        clientKey: clientKeyOf(req.ip ?? ''),
      });
      if (outcome.ok) req.session.challenge = outcome.challenge;
      return outcome;
    },
  };
}
