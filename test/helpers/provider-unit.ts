import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { ProviderError, type MfaProvider, type VerifyOutcome } from '../../src/mfa/provider.js';

/**
 * The mechanics the provider unit tests (one provider against its fake, no site) share.
 */

/** When the provider unit tests start: the fake's clock and the provider's both begin here. */
export const PROVIDER_TEST_START = new Date('2026-11-02T10:00:00Z');

/**
 * Sends `to` a login code by SMS: what the service keeps (the handle) and what the person
 * received (the code, as the provider's fake delivered it).
 */
export async function smsLoginChallenge(
  provider: MfaProvider,
  fake: { lastCodeFor(to: string): string | undefined },
  to: string,
) {
  const { handle } = await provider.send({ to, channel: 'sms', scope: 'login' });
  return { handle, code: fake.lastCodeFor(to)! };
}

/** The ProviderError `promise` rejects with; the test fails if it resolves or rejects with anything else. */
export async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => expect.fail('expected a ProviderError'),
    (rejection: unknown) => rejection,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

/** What a verify came to: its outcome, or the kind of the ProviderError it raised. */
export function outcomeOrErrorKind(verifying: Promise<VerifyOutcome>): Promise<unknown> {
  return verifying.catch((error: unknown) => (error instanceof ProviderError ? error.kind : error));
}

/** `attempt` raises an unavailable ProviderError in less than `withinMs`. Returns that error. */
export async function expectUnavailableWithin(
  withinMs: number,
  attempt: () => Promise<unknown>,
): Promise<ProviderError> {
  const started = performance.now();
  const error = await providerError(attempt());

  expect(error.kind).toBe('unavailable');
  expect(performance.now() - started).toBeLessThan(withinMs);
  return error;
}

/** http://127.0.0.1:PORT where nothing listens any more: a connection there is refused. */
export async function refusedOrigin(): Promise<string> {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** No error's message, stack, JSON or cause mentions any of `secrets`, and none carries a cause. */
export function expectErrorsRevealNone(errors: ProviderError[], secrets: string[]) {
  for (const error of errors) {
    const text = `${error.message} ${error.stack} ${JSON.stringify(error)} ${String(error.cause ?? '')}`;
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(error.cause).toBeUndefined();
  }
}
