import { AxeBuilder } from '@axe-core/playwright';
import type { Page } from 'playwright-core';

/** WCAG 2.1 levels A and AA: what the site promises. */
export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

/**
 * Runs axe-core on the page as it is now, once in light and once in dark mode (the site follows
 * the system setting, so both colour schemes must pass contrast), and returns readable violations.
 */
export async function findViolations(page: Page): Promise<string[]> {
  const found: string[] = [];
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    // Legacy mode runs axe in the page itself in one go. Our pages have no frames, and the default
    // mode opens an extra blank page for every run, which doubles the time of these tests.
    const results = await new AxeBuilder({ page }).withTags(WCAG_TAGS).setLegacyMode(true).analyze();
    for (const violation of results.violations) {
      const targets = violation.nodes.map(
        (node) =>
          `${node.target.join(' ')}${node.failureSummary ? ` (${node.failureSummary.replace(/\s+/g, ' ')})` : ''}`,
      );
      found.push(`[${colorScheme}] ${violation.id}: ${violation.help} -> ${targets.join('; ')}`);
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return found;
}
