import type { Config } from '../../config.js';
import type { Outbox } from '../../dev/outbox.js';
import type { CodeStore } from '../code-store.js';
import type { MfaProvider } from '../provider.js';
import { createBandwidthProvider } from './bandwidth.js';
import { createConsoleProvider } from './console.js';
import { createProviderPool, type ProviderPool } from './pool.js';

export interface ProviderDeps {
  config: Config;
  /** The app's own code store, for providers that only deliver (console). */
  codes: CodeStore;
  /** Where the console provider prints its readable lines. */
  print: (line: string) => void;
  outbox?: Outbox;
  /** How long a provider call may take before it counts as unavailable. */
  timeoutMs?: number;
}

/** The only place that turns MFA_PROVIDER into provider objects. */
export function createProviders(deps: ProviderDeps): ProviderPool {
  const { config } = deps;
  const providers = config.providers.map((name): MfaProvider => {
    switch (name) {
      case 'console':
        return createConsoleProvider({
          codes: deps.codes,
          codeDigits: config.codeDigits,
          codeTtlMinutes: config.codeTtlMinutes,
          print: deps.print,
          outbox: deps.outbox,
        });
      case 'bandwidth':
        return createBandwidthProvider({
          config: config.bandwidth!,
          codeDigits: config.codeDigits,
          timeoutMs: deps.timeoutMs,
        });
    }
  });
  return createProviderPool(providers);
}
