import type { Request } from 'express';
import { describeWait } from '../errors.js';
import { clientKeyOf } from '../http/client-address.js';
import type { User } from '../users/store.js';
import type { Channel, Scope } from './provider.js';
import type { Challenge, MfaService, SendOutcome } from './service.js';

/**
 * The HTTP side of sending a code: asks the MFA service for a code and keeps the challenge's id
 * in the session. Shared by login, resend and the admin step-up; each decides what to show.
 */
export interface CodeDelivery {
  channels(): Channel[];
  /** `preferred` if a configured provider delivers by it, else the first channel one does. */
  deliverableChannel(preferred: Channel): Channel;
  /**
   * Sends a code. Within the account's cooldown no new code goes out; the session then waits for
   * the code that is already on its way (the one a moment-ago login or resend asked for).
   */
  sendCode(req: Request, request: { user: User; scope: Scope; channel: Channel }): Promise<SendOutcome>;
  /** The challenge this session waits for, if it belongs to this user (and scope, when given). */
  currentChallenge(req: Request, expected: { userId: number; scope?: Scope }): Promise<Challenge | null>;
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
    deliverableChannel(preferred) {
      const channels = mfa.channels();
      return channels.includes(preferred) ? preferred : (channels[0] ?? preferred);
    },
    async sendCode(req, { user, scope, channel }) {
      const outcome = await mfa.sendCode({
        recipient: { userId: user.id, username: user.username, phone: user.phone },
        scope,
        channel,
        ip: req.ip,
        clientKey: clientKeyOf(req.ip ?? ''),
      });
      if (outcome.ok) req.session.challengeId = outcome.challenge.id;
      else if (outcome.reason === 'cooldown' && outcome.pending) req.session.challengeId = outcome.pending.id;
      return outcome;
    },
    async currentChallenge(req, expected) {
      const id = req.session.challengeId;
      if (!id) return null;
      const challenge = await mfa.findChallenge(id);
      if (!challenge || challenge.userId !== expected.userId) return null;
      if (expected.scope && challenge.scope !== expected.scope) return null;
      return challenge;
    },
  };
}

/** For a login or step-up that found a code already on its way (sent a moment ago) and waits for it. */
export function describeCodeOnItsWay(retryAfterSeconds: number): string {
  return `A code was sent a moment ago: enter it here. You can ask for another in ${describeWait(retryAfterSeconds)}.`;
}
