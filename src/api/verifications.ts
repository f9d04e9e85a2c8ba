import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { SendGuard } from '../fraud/send-guard.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { describeFailedSend, settleFailedSend } from '../mfa/failed-send.js';
import type { Channel } from '../mfa/provider.js';
import type { ProviderPool } from '../mfa/providers/pool.js';
import type { MfaRules } from '../mfa/service.js';
import { maskPhone } from '../users/phone.js';
import type { KeyConversion } from './key-conversion.js';
import type { ApiKey } from './keys.js';
import { createVerificationCheck, type CheckOutcome } from './verification-check.js';
import {
  apiUsername,
  cooldownKey,
  describeVerification,
  keySendsKey,
  numberSendsKey,
  type ApiCaller,
} from './verification-keys.js';
import type {
  ApiVerification,
  ApiVerificationStatus,
  ApiVerificationStore,
  ClosedStatus,
} from './verification-store.js';

/**
 * The rules of the verification API (issue 13): another application, holding an API key, has a
 * code sent to a number and asks whether the code it was given is right. The same rules as the
 * site's own codes (src/mfa/service.ts): the pool's choice of provider and its failover, a code
 * checked only by the provider that sent it, the code lifetime, five attempts, the resend
 * cooldown, the sends per number, the wrong codes in a window, the toll-fraud guard; plus a limit
 * per key. Never sees req/res. Expected outcomes are values; a provider or store failure throws.
 */

export type { ApiCaller } from './verification-keys.js';
export type { CheckOutcome } from './verification-check.js';

export type SendRefusal =
  | { ok: false; reason: 'channel_not_allowed' }
  /** No configured provider delivers by this channel. */
  | { ok: false; reason: 'channel_unavailable' }
  /** Which limit stays in the audit log and the operator's; the caller is told how long to wait. */
  | { ok: false; reason: 'too_many_requests'; retryAfterSeconds: number; detail: string }
  | { ok: false; reason: 'destination_refused'; message: string };

/**
 * A failure after the provider took the code (the row not written, a bug): the code is out
 * whatever failed. The caller must not be told to retry at once, and an Idempotency-Key's retry
 * must not send a second code (routes.ts keeps this answer for it).
 */
export class FailedAfterSendError extends Error {
  constructor(
    cause: unknown,
    /** The cooldown before another code to the number under the label may go. */
    readonly retryAfterSeconds: number,
  ) {
    super('the request failed after its code was sent', { cause });
    this.name = 'FailedAfterSendError';
  }
}

export type ApiSendOutcome = { ok: true; verification: ApiVerification } | SendRefusal;

export type CancelOutcome =
  | { kind: 'canceled'; verification: ApiVerification }
  | { kind: 'not_found' }
  | { kind: 'closed'; verification: ApiVerification };

export interface ApiVerifications {
  /** Channels the configured providers deliver by. */
  channels(): Channel[];
  send(caller: ApiCaller, request: { to: string; channel: Channel; label: string }): Promise<ApiSendOutcome>;
  check(caller: ApiCaller, request: { id: string; code: string }): Promise<CheckOutcome>;
  /** /validate-auth: a check of the key's newest pending verification to the number under the label. */
  checkNewest(
    caller: ApiCaller,
    request: { to: string; label: string; code: string },
  ): Promise<CheckOutcome | { kind: 'none_pending' }>;
  find(key: ApiKey, id: string): Promise<ApiVerification | null>;
  cancel(caller: ApiCaller, id: string): Promise<CancelOutcome>;
  /** What a caller sees of a verification's status: a pending one past its expiry is expired. */
  statusOf(verification: ApiVerification): ApiVerificationStatus;
  attemptsLeft(verification: ApiVerification): number;
}

export interface ApiVerificationsDeps {
  verifications: ApiVerificationStore;
  providers: ProviderPool;
  limits: RateLimitStore;
  sendGuard: SendGuard;
  audit: AuditLog;
  clock: Clock;
  rules: MfaRules;
  /** API_KEY_SENDS_PER_HOUR: codes one key may have sent in an hour; 0 for no such limit. */
  keySendsPerHour: number;
  /** The key's share of approved codes, and the API's share of the day's budget. */
  keyConversion: KeyConversion;
}

const KEY_SENDS_WINDOW_MS = 60 * 60_000;

export function createApiVerifications(deps: ApiVerificationsDeps): ApiVerifications {
  const { verifications: store, providers, limits, sendGuard, audit, clock, rules } = deps;
  const now = () => clock.now().getTime();
  const secondsUntil = (at: Date) => Math.max(1, Math.ceil((at.getTime() - now()) / 1000));
  const isExpired = (verification: ApiVerification) => now() >= verification.expiresAt;
  const statusOf = (verification: ApiVerification): ApiVerificationStatus =>
    verification.status === 'pending' && isExpired(verification) ? 'expired' : verification.status;
  const attemptsLeft = (verification: ApiVerification) =>
    statusOf(verification) === 'pending' ? Math.max(0, rules.maxAttemptsPerCode - verification.attempts) : 0;
  const closedAs = (verification: ApiVerification, status: ClosedStatus): ApiVerification => ({
    ...verification,
    status,
    closedAt: now(),
  });
  const { check: checkCode } = createVerificationCheck(deps);
  /** The verification as it is now, for an answer about one this request could not change. */
  const current = async (verification: ApiVerification) =>
    (await store.find(verification.keyId, verification.id)) ?? verification;

  /**
   * Takes one from a counter for this send; over `max`, gives it back at once. `giveBack` hands
   * it back later, when the send does not go out: to the window it was taken in, never to one
   * that opened while the provider was slow to fail.
   */
  async function take(key: string, windowMs: number, max: number) {
    const count = await limits.increment(key, windowMs);
    const giveBack = async () => {
      await limits.decrement(key, count.window);
    };
    if (count.count <= max) return { ok: true as const, giveBack };
    await giveBack();
    return { ok: false as const, retryAfterSeconds: secondsUntil(count.resetAt) };
  }

  return {
    channels: () => providers.channels(),
    statusOf,
    attemptsLeft,
    find: (key, id) => store.find(key.id, id),

    async send(caller, { to, channel, label }) {
      const { key } = caller;
      if (!key.channels.includes(channel)) return { ok: false, reason: 'channel_not_allowed' };
      if (!providers.channels().includes(channel)) return { ok: false, reason: 'channel_unavailable' };
      const refused = (retryAfterSeconds: number, detail: string): SendRefusal => ({
        ok: false,
        reason: 'too_many_requests',
        retryAfterSeconds,
        detail,
      });
      // A key whose codes to new numbers are not completed stops having them sent (SMS pumping):
      // only read here, so it costs nothing to give back.
      const conversion = await deps.keyConversion.check(key, to);
      if (!conversion.allowed) return refused(conversion.retryAfterSeconds, conversion.detail);
      const given: Array<() => Promise<void>> = [];
      const giveBackAll = async () => {
        for (const giveBack of given.reverse()) await giveBack();
      };

      // Each limit is taken before the send, not counted after it, so racing requests (one
      // instance or several) stop at the same limits; a send refused by a later one hands back
      // what the earlier ones took.
      if (deps.keySendsPerHour > 0) {
        const perKey = await take(keySendsKey(key.id), KEY_SENDS_WINDOW_MS, deps.keySendsPerHour);
        if (!perKey.ok)
          return refused(
            perKey.retryAfterSeconds,
            'This API key has had as many codes sent this hour as it may.',
          );
        given.push(perKey.giveBack);
      }
      // The cooldown of a key, label and number: of several sends racing, one goes out.
      const cooldown = cooldownKey(key.id, label, to);
      const claim = await limits.increment(cooldown, rules.resendCooldownMs);
      if (claim.count > 1) {
        await giveBackAll();
        return refused(
          secondsUntil(claim.resetAt),
          'A code was sent to this number under this label a moment ago.',
        );
      }
      const giveBackCooldown = () => limits.reset(cooldown);
      const perNumber = await take(numberSendsKey(key.id, to), rules.sendWindowMs, rules.maxSendsPerWindow);
      if (!perNumber.ok) {
        await giveBackCooldown();
        await giveBackAll();
        return refused(perNumber.retryAfterSeconds, 'Too many codes were sent to this number.');
      }
      given.push(perNumber.giveBack);
      const budget = await deps.keyConversion.takeBudget();
      if (!budget.ok) {
        await giveBackCooldown();
        await giveBackAll();
        return refused(
          budget.retryAfterSeconds,
          'The verification API has had as many codes sent today as the site lets it.',
        );
      }
      given.push(budget.giveBack);

      // The toll-fraud guard (issue 8), as for every code the site sends; the key stands in for an
      // account and its hourly limit for the per-address ones (see SendAttempt.countsPerAddress).
      const guarded = await sendGuard.reserveSend({
        userId: null,
        username: apiUsername(key),
        to,
        clientKey: caller.clientKey,
        channel,
        scope: 'api',
        countsPerAddress: false,
      });
      if (!guarded.allowed) {
        await giveBackCooldown();
        await giveBackAll();
        return 'message' in guarded
          ? { ok: false, reason: 'destination_refused', message: guarded.message }
          : refused(guarded.retryAfterSeconds, 'No code can be sent to this number right now.');
      }

      let sent: { provider: string; handle?: string };
      try {
        sent = await providers.send({ to, channel, scope: 'api', apiKey: key.id, provenHolder: false });
      } catch (error) {
        const delivered = await settleFailedSend(error, {
          guard: guarded,
          giveBackSends: giveBackAll,
          giveBackCooldown,
        });
        await audit.record({
          type: 'code_send_failed',
          username: apiUsername(key),
          ip: caller.ip,
          detail: `${describeFailedSend(error, { scope: 'api', channel }, delivered)}; ${label}: ${maskPhone(to)}`,
        });
        throw error;
      }
      // From here the code is out: a failure is answered as such, never as "nothing happened".
      try {
        await guarded.confirm();
        await deps.keyConversion.countSent(key.id, conversion.newNumber);

        const createdAt = now();
        const verification = await store.create({
          id: `ver_${randomBytes(16).toString('base64url')}`,
          keyId: key.id,
          label,
          phone: to,
          channel,
          provider: sent.provider,
          ...(sent.handle === undefined ? {} : { handle: sent.handle }),
          createdAt,
          expiresAt: createdAt + rules.codeTtlMs,
        });
        // The new code is out: the key's older pending ones to this number under this label are
        // void, so only the newest can be approved. Their providers' cancel is not awaited: the
        // closed row refuses them anyway.
        for (const old of await store.cancelOthers(key.id, label, to, verification.id)) {
          providers
            .cancel(old.provider, { to: old.phone, scope: 'api', handle: old.handle })
            .catch(() => undefined);
        }
        await audit.record({
          type: 'api_code_sent',
          username: apiUsername(key),
          ip: caller.ip,
          detail: `${describeVerification(verification)} via ${sent.provider}`,
        });
        return { ok: true, verification };
      } catch (error) {
        throw new FailedAfterSendError(error, Math.ceil(rules.resendCooldownMs / 1000));
      }
    },

    async check(caller, { id, code }) {
      const verification = await store.find(caller.key.id, id);
      if (!verification) return { kind: 'not_found' };
      return checkCode(caller, verification, code);
    },

    async checkNewest(caller, { to, label, code }) {
      const verification = await store.findNewestPending(caller.key.id, label, to);
      if (!verification) return { kind: 'none_pending' };
      return checkCode(caller, verification, code);
    },

    async cancel(caller, id) {
      const verification = await store.find(caller.key.id, id);
      if (!verification) return { kind: 'not_found' };
      if (verification.status !== 'pending') return { kind: 'closed', verification };
      if (isExpired(verification)) {
        await store.close(verification.id, 'expired');
        return { kind: 'closed', verification: await current(verification) };
      }
      if (!(await store.close(verification.id, 'canceled'))) {
        return { kind: 'closed', verification: await current(verification) };
      }
      // Tried, not awaited: the closed row refuses the code whatever the provider does.
      providers
        .cancel(verification.provider, { to: verification.phone, scope: 'api', handle: verification.handle })
        .catch(() => undefined);
      await audit.record({
        type: 'api_verification_canceled',
        username: apiUsername(caller.key),
        ip: caller.ip,
        detail: describeVerification(verification),
      });
      return { kind: 'canceled', verification: closedAs(verification, 'canceled') };
    },
  };
}
