import type {
  Channel,
  MfaProvider,
  SendCodeRequest,
  Scope,
  VerifyCodeRequest,
  VerifyOutcome,
} from '../provider.js';
import { ProviderError } from '../provider.js';

/**
 * The providers configured in MFA_PROVIDER, in order. A new code goes to the first provider that
 * can deliver it; a code is always checked (or voided) by the provider that sent it.
 */
export interface ProviderStatus {
  name: string;
  channels: Channel[];
  state: 'up' | 'failing' | 'skipped';
}

export interface ProviderPool {
  names(): string[];
  /** Each provider's state, for /healthz and the admin page. Never holds a secret. */
  status(): ProviderStatus[];
  channels(): Channel[];
  send(request: SendCodeRequest): Promise<{ provider: string; handle?: string }>;
  verify(provider: string, request: VerifyCodeRequest): Promise<VerifyOutcome>;
  cancel(provider: string, request: { to: string; scope: Scope; handle?: string }): Promise<void>;
}

export function createProviderPool(providers: MfaProvider[]): ProviderPool {
  if (providers.length === 0) throw new Error('at least one MFA provider is needed');
  const byName = new Map(providers.map((provider) => [provider.name, provider]));

  const providerNamed = (name: string) => {
    const provider = byName.get(name);
    // A challenge from a provider that is no longer configured cannot be checked anywhere else.
    if (!provider) throw new ProviderError('unavailable', name, 'provider is not configured any more');
    return provider;
  };

  return {
    names: () => providers.map((provider) => provider.name),
    status: () =>
      providers.map((provider) => ({ name: provider.name, channels: [...provider.channels], state: 'up' })),
    channels: () => [...new Set(providers.flatMap((provider) => provider.channels))],
    async send(request) {
      const candidates = providers.filter((provider) => provider.channels.includes(request.channel));
      let lastError: unknown = new ProviderError(
        'unavailable',
        'pool',
        `no provider delivers by ${request.channel}`,
      );
      for (const provider of candidates) {
        try {
          const { handle } = await provider.send(request);
          return { provider: provider.name, handle };
        } catch (error) {
          lastError = error;
          // Only an outage moves on to the next provider; a bad number or a rate limit would be the same there.
          if (!(error instanceof ProviderError && error.kind === 'unavailable')) throw error;
        }
      }
      throw lastError;
    },
    verify: (name, request) => providerNamed(name).verify(request),
    async cancel(name, request) {
      await providerNamed(name).cancel?.(request);
    },
  };
}
