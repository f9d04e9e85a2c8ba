/**
 * An admin's reset of an account's second factors (issue 12), for a person who lost the app, the
 * passkeys and the recovery codes: everything but the phone goes at once. Backend:
 * src/stores/sql/second-factor-reset.ts.
 */
export interface RemovedSecondFactors {
  /** Authenticator apps and passkeys. */
  factors: number;
  /** Recovery codes, used or not. */
  recoveryCodes: number;
  rememberedBrowsers: number;
}

export interface SecondFactorReset {
  /**
   * Removes the account's authenticator apps, passkeys, recovery codes and remembered browsers, and
   * puts its default factor back to the phone, in one transaction: never half done.
   */
  removeAllSecondFactors(userId: number): Promise<RemovedSecondFactors>;
}
