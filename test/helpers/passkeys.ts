import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import { expect } from 'vitest';
import { csrfTokenIn, type Browser, type Response } from './agent.js';
import { expectPage } from './expectations.js';
import { passkeyOptionsIn, type SoftwareAuthenticator } from './software-authenticator.js';

/**
 * The passkey pages as public/js/passkeys.js drives them, answered by a software authenticator.
 * The browser must already be past the settings confirmation the "add a passkey" page asks for.
 */

/** Adds `device` as a passkey named `label`; the add page's own answer when it does not open. */
export async function postNewPasskey(
  who: Browser,
  device: SoftwareAuthenticator,
  label: string,
): Promise<Response> {
  const page = await who.get('/account/security/passkeys/new');
  if (page.status !== 200) return page;
  const options = passkeyOptionsIn<PublicKeyCredentialCreationOptionsJSON>(page.text);
  return who.agent
    .post('/account/security/passkeys')
    .type('form')
    .send({ _csrf: csrfTokenIn(page.text), label, credential: JSON.stringify(device.register(options)) });
}

/** The passkey form on the code page, answered by `device` (its options shown to `inspect` first). */
export async function answerWithPasskey(
  who: Browser,
  device: SoftwareAuthenticator,
  use: { userVerified?: boolean; inspect?: (options: PublicKeyCredentialRequestOptionsJSON) => void } = {},
): Promise<Response> {
  const page = await who.get('/verify');
  expectPage(page, 200);
  expect(page.text).toContain('data-passkey="authenticate"');
  const options = passkeyOptionsIn<PublicKeyCredentialRequestOptionsJSON>(page.text);
  use.inspect?.(options);
  return who.agent
    .post('/verify')
    .type('form')
    .send({
      _csrf: csrfTokenIn(page.text),
      method: 'passkey',
      credential: JSON.stringify(
        device.authenticate(
          options,
          use.userVerified === undefined ? {} : { userVerified: use.userVerified },
        ),
      ),
    });
}
