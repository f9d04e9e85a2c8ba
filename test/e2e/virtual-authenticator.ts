import type { BrowserContext, CDPSession, Page } from 'playwright-core';

/**
 * The DevTools protocol's virtual authenticator (WebAuthn domain), as the passkey journeys use it:
 * a device that answers at once, with no prompt, and holds its passkeys where a test can count them.
 */
export interface VirtualAuthenticator {
  /** The passkeys this device holds. */
  credentials(): Promise<unknown[]>;
}

/**
 * A platform authenticator in this page's browser (as a laptop's fingerprint reader), with or
 * without user verification. Without it, the device is one that only checks someone is there (a
 * touch, as a security key without a PIN): the browser then refuses it any request that requires
 * user verification. It stays a platform one ('internal'): a USB key without user verification
 * makes Chromium wait for another key instead of refusing.
 */
export async function addVirtualAuthenticator(
  context: BrowserContext,
  page: Page,
  { userVerification = true }: { userVerification?: boolean } = {},
): Promise<VirtualAuthenticator> {
  const cdp: CDPSession = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: userVerification,
      isUserVerified: userVerification,
      automaticPresenceSimulation: true,
    },
  });
  return {
    async credentials() {
      return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
    },
  };
}
