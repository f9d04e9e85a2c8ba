import { SKIP_MESSAGE, isBrowserInstalled, isBrowserRequired } from './browser.js';

/** Runs once per `vitest run`: one line when the browser tests are skipped, a failure where they may not be. */
export default function checkForBrowser(): void {
  if (isBrowserInstalled()) return;
  if (isBrowserRequired) {
    throw new Error(`REQUIRE_BROWSER_TESTS is set but ${SKIP_MESSAGE.replace('Browser tests skipped: no', 'there is no')}`);
  }
  console.warn(SKIP_MESSAGE);
}
