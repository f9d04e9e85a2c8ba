import { MISSING_BROWSER_MESSAGE, SKIP_MESSAGE, isBrowserInstalled, isBrowserRequired } from './browser.js';

/** Runs once per `vitest run`: one line when the browser tests are skipped, a failure where they may not be. */
export default function checkForBrowser(): void {
  if (isBrowserInstalled()) return;
  if (isBrowserRequired) {
    throw new Error(MISSING_BROWSER_MESSAGE);
  }
  console.warn(SKIP_MESSAGE);
}
