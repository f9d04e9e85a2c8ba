/**
 * What the MFA service needs from a code provider. Providers only talk to the outside world;
 * scopes, attempts, cooldowns and expiry are decided in mfa/service.ts.
 */

export const CHANNELS = ['sms', 'voice'] as const;
export type Channel = (typeof CHANNELS)[number];

/**
 * What a code is for. A code sent for one never satisfies another: `login` (the second step of a
 * login), `admin` (the secure area's step-up), `enrol` (proving the number a new account gave),
 * `settings`, `reset`, and `api` (a code another application asked for through the verification
 * API, src/api/; the site's own stages never accept it, nor the API theirs).
 */
export const SCOPES = ['login', 'admin', 'enrol', 'settings', 'reset', 'api'] as const;
export type Scope = (typeof SCOPES)[number];

/** Scopes whose codes are asked for past the login (or by a reset link): the step-ups. */
export function isStepUpScope(scope: Scope): boolean {
  return scope === 'admin' || scope === 'settings' || scope === 'reset';
}

export interface SendCodeRequest {
  /** E.164 destination. */
  to: string;
  channel: Channel;
  scope: Scope;
  /**
   * The account the code is for. A provider that keeps one pending code per number (Twilio
   * Verify) uses it never to void another account's pending code in order to send this one.
   */
  account?: number;
  /**
   * The account has completed a code to this number before, so it has shown it holds the phone.
   * Twilio lets such an account cancel a code left pending by one that has not (a stranger who
   * registered with the number), so strangers cannot hold its codes back.
   */
  provenHolder?: boolean;
  /**
   * The verification API's key that asked for the code, in place of an account (scope `api`).
   * Twilio Verify tells it apart from every account and every other key, so an API send never
   * voids a code pending for someone else (see twilio-verify.ts).
   */
  apiKey?: number;
}

export interface SendCodeResult {
  /** The provider's reference for this code (record id, verification sid...), kept in the challenge. */
  handle?: string;
}

export interface VerifyCodeRequest {
  to: string;
  scope: Scope;
  code: string;
  handle?: string;
  /**
   * How old, in whole minutes, a code may be and still count (verifyWindowMinutes): for a provider
   * that chooses the window at verify time (Bandwidth), so that it never accepts a code much older
   * than the app's own expiry, which the app checks itself first.
   */
  maxAgeMinutes: number;
}

/**
 * The provider's clock starts before ours: a send is recorded once the provider has answered (and
 * the challenge is written), and the check reaches it a moment after the person pressed Verify.
 * Two provider deadlines and a little clock skew, so that a right code typed just before a whole
 * minute of its age is not refused by a window the provider has already seen pass.
 */
export const PROVIDER_CLOCK_SLACK_MS = 30_000;

/** The window to ask a provider for: the code's age by our clock, plus the slack, in whole minutes. */
export function verifyWindowMinutes(sentAtMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((nowMs - sentAtMs + PROVIDER_CLOCK_SLACK_MS) / 60_000));
}

/** 'invalid' covers a wrong code; 'expired' and 'locked' when the provider can tell them apart. */
export type VerifyOutcome = 'valid' | 'invalid' | 'expired' | 'locked';

export interface MfaProvider {
  readonly name: string;
  /** The channels this provider can deliver over; pages only offer these. */
  readonly channels: readonly Channel[];
  send(request: SendCodeRequest): Promise<SendCodeResult>;
  verify(request: VerifyCodeRequest): Promise<VerifyOutcome>;
  /** Voids a pending code where the provider supports it (a resend, a newer challenge). */
  cancel?(request: { to: string; scope: Scope; handle?: string }): Promise<void>;
}

export type ProviderErrorKind = 'invalid_number' | 'auth' | 'rate_limited' | 'unavailable';

/**
 * Whether a failed send may still have reached the phone: 'no' when nothing went out (the usual
 * case: an HTTP error answer, a refused connection); 'maybe' when the request was sent and no
 * answer came (a timeout, a dropped connection, a 2xx we could not read); 'yes' when a message was
 * delivered although the send is refused (Twilio re-sending a pending code). The MFA service keeps
 * the toll-fraud counts of such a send instead of handing them back.
 */
export type ProviderDelivery = 'no' | 'maybe' | 'yes';

/**
 * A provider call that did not produce an answer about the code. Never read as "valid":
 * the service turns it into a page for the person and a log line for the operator.
 */
export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  readonly provider: string;
  readonly retryAfterSeconds?: number;
  readonly delivered: ProviderDelivery;

  constructor(
    kind: ProviderErrorKind,
    provider: string,
    detail: string,
    options: { retryAfterSeconds?: number; cause?: unknown; delivered?: ProviderDelivery } = {},
  ) {
    super(`${provider}: ${detail}`, { cause: options.cause });
    this.name = 'ProviderError';
    this.kind = kind;
    this.provider = provider;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.delivered = options.delivered ?? 'no';
  }
}

export function describeChannel(channel: Channel): string {
  return channel === 'sms' ? 'text message' : 'voice call';
}
