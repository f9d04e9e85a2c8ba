import { describeChannel, ProviderError, type Channel, type ProviderDelivery } from './provider.js';

/**
 * What becomes of the limits a send took before its provider call, when that call fails: shared
 * by the site's codes (service.ts) and the verification API's (src/api/verifications.ts), so both
 * read a provider's failure the same way.
 */
export interface TakenForSend {
  /** The toll-fraud guard's reservation (SendGuard.reserveSend). */
  guard: { release(): Promise<void>; confirm(): Promise<void> };
  /** Hands back the sender's own send counts (the account's or the key's). */
  giveBackSends(): Promise<void>;
  /** Hands back the resend cooldown, so the sender may ask again at once. */
  giveBackCooldown(): Promise<void>;
}

/**
 * Settles what a failed send took, by whether a message may have gone out anyway
 * (ProviderError.delivered), and returns that.
 *
 * Threat: a failed send that still reached the phone must not be free. Twilio re-sends a pending
 * code while refusing a second account's send, and a provider that timed out may have sent anyway;
 * with their counts handed back, a stranger could repeat them without end, bombing the number and
 * running up the bill while no limit saw a thing. So unless nothing went out ('no': everything is
 * handed back, the sender may simply retry), the toll-fraud counts and the sender's send counts
 * stay taken. After a timeout ('maybe') the person may well have nothing, so the resend cooldown
 * alone is given back for them to retry at once; a message that surely went out keeps it.
 */
export async function settleFailedSend(error: unknown, taken: TakenForSend): Promise<ProviderDelivery> {
  // An error that is no provider's answer (a store failing mid-send, a bug) says nothing of the
  // phone: it is read as 'maybe', never as a free retry.
  const delivered = error instanceof ProviderError ? error.delivered : 'maybe';
  if (delivered === 'no') {
    await taken.guard.release();
    await taken.giveBackCooldown();
    await taken.giveBackSends();
  } else {
    await taken.guard.confirm();
    if (delivered === 'maybe') await taken.giveBackCooldown();
  }
  return delivered;
}

/** Said in the audit log of a failed send, for the operator: whether a message may have gone out anyway. */
const DELIVERY_NOTES: Record<ProviderDelivery, string> = {
  no: '',
  maybe: '; may have been delivered',
  yes: '; a message was delivered',
};

/** The audit detail of a failed send: "login code by text message: twilio unavailable; may have been delivered". */
export function describeFailedSend(
  error: unknown,
  what: { scope: string; channel: Channel },
  delivered: ProviderDelivery,
): string {
  const sent = `${what.scope} code by ${describeChannel(what.channel)}`;
  const cause = error instanceof ProviderError ? `: ${error.provider} ${error.kind}` : '';
  return sent + cause + DELIVERY_NOTES[delivered];
}
