import { systemClock, type Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { Outbox } from '../../dev/outbox.js';
import type { CodeStore } from '../code-store.js';
import { createCodeTexts } from '../sms-text.js';
import { SITE_NAME } from '../../site.js';
import type { MfaProvider } from '../provider.js';
import { createBandwidthProvider } from './bandwidth.js';
import { createConsoleProvider } from './console.js';
import { createKandyProvider } from './kandy.js';
import { createProviderPool, type ProviderPool } from './pool.js';
import type { ProviderHealthStore } from './provider-health.js';
import { createSignalWireProvider } from './signalwire.js';
import type { VoiceDocumentStore } from './signalwire-voice-route.js';
import type { TwilioVerificationLedger } from './twilio-verification-ledger.js';
import { createTwilioVerifyProvider } from './twilio-verify.js';

export interface ProviderDeps {
  config: Config;
  /** The app's own code store, for providers that only deliver (console, SignalWire). */
  codes: CodeStore;
  /** Where the console provider prints its readable lines. */
  print: (line: string) => void;
  outbox?: Outbox;
  /** How long a provider call may take before it counts as unavailable. */
  timeoutMs?: number;
  /** Decides the failover cooldown and when tokens are refreshed. */
  clock?: Clock;
  /** Needed when SignalWire is configured: the voice documents app.ts serves to SignalWire. */
  voiceDocuments?: VoiceDocumentStore;
  /** Who started each pending Twilio verification; shared (Redis) when several instances run. Default: memory. */
  twilioVerifications?: TwilioVerificationLedger;
  /** The circuit breaker's state; shared (Redis) when several instances run. Default: memory. */
  providerHealth?: ProviderHealthStore;
}

/** The only place that turns MFA_PROVIDER into provider objects. */
export function createProviders(deps: ProviderDeps): ProviderPool {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const now = () => clock.now().getTime();
  // Every message names the site and is bound to its public host (src/mfa/sms-text.ts).
  const texts = createCodeTexts({ siteName: SITE_NAME, publicHost: config.publicHost });
  const providers = config.providers.map((settings): MfaProvider => {
    switch (settings.name) {
      case 'console':
        return createConsoleProvider({
          codes: deps.codes,
          codeDigits: config.codeDigits,
          codeTtlMinutes: config.codeTtlMinutes,
          print: deps.print,
          outbox: deps.outbox,
          texts,
        });
      case 'bandwidth':
        return createBandwidthProvider({
          config: settings,
          codeDigits: config.codeDigits,
          timeoutMs: deps.timeoutMs,
          texts,
        });
      case 'twilio':
        return createTwilioVerifyProvider({
          config: settings,
          timeoutMs: deps.timeoutMs,
          now,
          codeTtlMs: config.codeTtlMinutes * 60_000,
          ledger: deps.twilioVerifications,
        });
      case 'signalwire':
        if (!deps.voiceDocuments) throw new Error('the signalwire provider needs the voice document store');
        return createSignalWireProvider({
          config: settings,
          codes: deps.codes,
          voiceDocuments: deps.voiceDocuments,
          codeDigits: config.codeDigits,
          codeTtlMinutes: config.codeTtlMinutes,
          timeoutMs: deps.timeoutMs,
          texts,
        });
      case 'kandy':
        return createKandyProvider({
          config: settings,
          codeDigits: config.codeDigits,
          codeTtlMinutes: config.codeTtlMinutes,
          timeoutMs: deps.timeoutMs,
          now,
          texts,
        });
    }
  });
  return createProviderPool(providers, {
    clock,
    cooldownMs: config.providerCooldownSeconds * 1000,
    health: deps.providerHealth,
  });
}
