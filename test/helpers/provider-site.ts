import { createTestApp, type TestApp } from './create-test-app.js';

/** The site running against a provider's fake, with every line it logs kept for inspection. */
export interface ProviderSite {
  site: TestApp;
  /** The app's log lines (JSON), oldest first. */
  logLines: string[];
}

/**
 * Starts the whole site with MFA_PROVIDER=`provider`, configured by `env` (the provider's
 * credentials and its fake's base URL). A provider call that takes longer than `providerTimeoutMs`
 * counts as the provider not answering.
 */
export async function startProviderSite(
  provider: string,
  env: Record<string, string>,
  // Long enough for a loopback call on a loaded two-core machine (an OAuth token fetch and a send),
  // short enough that the "hang" specs stay quick.
  { providerTimeoutMs = 1000 }: { providerTimeoutMs?: number } = {},
): Promise<ProviderSite> {
  const logLines: string[] = [];
  const site = await createTestApp({
    env: { MFA_PROVIDER: provider, ...env },
    providerTimeoutMs,
    logLines,
  });
  return { site, logLines };
}

/** Makes a fake keep the site's time, `aheadMs()` ahead of it (to expire a code at the provider only). */
export function followSiteClock(
  fake: { setClock(now: () => Date): void },
  site: TestApp,
  aheadMs: () => number = () => 0,
): void {
  fake.setClock(() => new Date(site.clock.now().getTime() + aheadMs()));
}

/** Stops the site, then its provider's fake. */
export async function stopProviderSite(site: TestApp, fake: { close(): Promise<void> }): Promise<void> {
  await site.close();
  await fake.close();
}
