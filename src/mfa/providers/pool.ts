import { systemClock, type Clock } from '../../clock.js';
import type {
  Channel,
  MfaProvider,
  ProviderDelivery,
  SendCodeRequest,
  Scope,
  VerifyCodeRequest,
  VerifyOutcome,
} from '../provider.js';
import { ProviderError } from '../provider.js';
import {
  createMemoryProviderHealthStore,
  type ProviderHealth,
  type ProviderHealthStore,
} from './provider-health.js';

/**
 * The providers configured in MFA_PROVIDER, in order. A new code goes to the first provider that
 * is up and can deliver it; on an outage the next one is tried. A code is always checked (or
 * voided) by the provider that sent it, never elsewhere.
 *
 * A simple circuit breaker keeps a provider that keeps failing from slowing every login down:
 * after `failureThreshold` outages in a row it is skipped for `cooldownMs`, then tried again by
 * itself (one more outage skips it again at once; an answer brings it back). When every provider
 * that could deliver is being skipped, the first is tried anyway rather than refusing untried.
 * The breaker's state lives in a ProviderHealthStore, which several instances share (Redis), so a
 * provider skipped by one is skipped by all.
 */
export interface ProviderStatus {
  name: string;
  channels: Channel[];
  /**
   * up: answering; failing: its last call(s) got no answer, or it refused our credentials;
   * skipped: new codes go elsewhere for now.
   */
  state: 'up' | 'failing' | 'skipped';
}

export interface ProviderPool {
  names(): string[];
  /** Each provider's state, for /healthz and the admin page. Never holds a secret. */
  status(): Promise<ProviderStatus[]>;
  channels(): Channel[];
  send(request: SendCodeRequest): Promise<{ provider: string; handle?: string }>;
  verify(provider: string, request: VerifyCodeRequest): Promise<VerifyOutcome>;
  cancel(provider: string, request: { to: string; scope: Scope; handle?: string }): Promise<void>;
}

export interface ProviderPoolOptions {
  clock?: Clock;
  /** How long a provider that keeps failing is skipped (MFA_PROVIDER_COOLDOWN_SECONDS). */
  cooldownMs?: number;
  /** Outages in a row after which a provider is skipped. */
  failureThreshold?: number;
  /** Where the breaker keeps each provider's health; shared (Redis) when several instances run. Default: memory. */
  health?: ProviderHealthStore;
}

export const DEFAULT_PROVIDER_COOLDOWN_MS = 30_000;
export const DEFAULT_FAILURE_THRESHOLD = 2;

const isOutage = (error: unknown) => error instanceof ProviderError && error.kind === 'unavailable';

export function createProviderPool(
  providers: MfaProvider[],
  options: ProviderPoolOptions = {},
): ProviderPool {
  if (providers.length === 0) throw new Error('at least one MFA provider is needed');
  const clock = options.clock ?? systemClock;
  const cooldownMs = options.cooldownMs ?? DEFAULT_PROVIDER_COOLDOWN_MS;
  const threshold = Math.max(1, options.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD);
  const byName = new Map(providers.map((provider) => [provider.name, provider]));
  const health = options.health ?? createMemoryProviderHealthStore(clock);
  const breaker = { threshold, cooldownMs };

  const stateOf = (provider: ProviderHealth): ProviderStatus['state'] =>
    provider.skippedUntil !== null
      ? 'skipped'
      : provider.outagesInARow > 0 || provider.misconfigured
        ? 'failing'
        : 'up';

  /**
   * Keeps a provider's health after a call. The call has happened (a code may be on its way, or
   * accepted), so a health store that does not answer must not turn its outcome into an error:
   * the breaker misses one data point, and the next call records again.
   */
  async function record(update: Promise<void>): Promise<void> {
    await update.catch(() => undefined);
  }

  /** Runs one call on a provider and keeps its health: any answer counts as up, only outages count against it. */
  async function watched<T>(provider: MfaProvider, call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      await record(health.recordAnswer(provider.name));
      return result;
    } catch (error) {
      // A provider on probation (its cooldown is over) is skipped again after a single outage.
      if (isOutage(error)) await record(health.recordOutage(provider.name, breaker));
      else if (error instanceof ProviderError && error.kind === 'auth') {
        // Not an outage (another provider would not help with our own credentials), but the
        // operator must see it on /healthz and the admin page.
        await record(health.recordMisconfigured(provider.name));
      } else if (error instanceof ProviderError) await record(health.recordAnswer(provider.name));
      throw error;
    }
  }

  const providerNamed = (name: string) => {
    const provider = byName.get(name);
    // A challenge from a provider that is no longer configured cannot be checked anywhere else.
    if (!provider) throw new ProviderError('unavailable', name, 'provider is not configured any more');
    return provider;
  };

  return {
    names: () => providers.map((provider) => provider.name),
    async status() {
      const states = await health.read(providers.map((provider) => provider.name));
      return providers.map((provider, i) => ({
        name: provider.name,
        channels: [...provider.channels],
        state: stateOf(states[i]!),
      }));
    },
    channels: () => [...new Set(providers.flatMap((provider) => provider.channels))],

    async send(request) {
      const candidates = providers.filter((provider) => provider.channels.includes(request.channel));
      if (candidates.length === 0) {
        throw new ProviderError('unavailable', 'pool', `no provider delivers by ${request.channel}`);
      }
      // Read before anything is sent: a health store that does not answer is the 503 page, as any store.
      const states = await health.read(candidates.map((provider) => provider.name));
      const live = candidates.filter((_, i) => states[i]!.skippedUntil === null);
      const tried = live.length > 0 ? live : [candidates[0]!];
      let lastError: unknown;
      // The worst of what the providers tried may have delivered: a timeout at the first (the code
      // may be on the phone) is not undone by a refusal at the next.
      let delivered: ProviderDelivery = 'no';
      for (const provider of tried) {
        try {
          const { handle } = await watched(provider, () => provider.send(request));
          return { provider: provider.name, handle };
        } catch (error) {
          lastError = error;
          if (error instanceof ProviderError) delivered = worseDelivery(delivered, error.delivered);
          // Only an outage moves on to the next provider; a bad number or a rate limit would be the same there.
          if (!isOutage(error)) break;
        }
      }
      throw withDelivery(lastError, delivered);
    },

    async verify(name, request) {
      const provider = providerNamed(name);
      return watched(provider, () => provider.verify(request));
    },

    async cancel(name, request) {
      const provider = providerNamed(name);
      if (provider.cancel) await watched(provider, () => provider.cancel!(request));
    },
  };
}

const DELIVERY_ORDER: readonly ProviderDelivery[] = ['no', 'maybe', 'yes'];
const worseDelivery = (a: ProviderDelivery, b: ProviderDelivery) =>
  DELIVERY_ORDER.indexOf(a) >= DELIVERY_ORDER.indexOf(b) ? a : b;

/** The error a failed send ends with, saying the worst any provider tried may have delivered. */
function withDelivery(error: unknown, delivered: ProviderDelivery): unknown {
  if (!(error instanceof ProviderError) || error.delivered === delivered || delivered === 'no') return error;
  return new ProviderError(error.kind, error.provider, error.message.slice(error.provider.length + 2), {
    cause: error,
    delivered: worseDelivery(error.delivered, delivered),
    ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
  });
}
