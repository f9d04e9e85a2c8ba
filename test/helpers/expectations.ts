import { expect } from 'vitest';
import type { Response } from './agent.js';

export function expectRedirect(res: Response, location: string | RegExp) {
  expect(
    res.status,
    `expected a redirect, got ${res.status}: ${res.text?.slice(0, 300)}`,
  ).toBeGreaterThanOrEqual(300);
  expect(res.status).toBeLessThan(400);
  if (typeof location === 'string') expect(res.headers.location).toBe(location);
  else expect(res.headers.location).toMatch(location);
}

export function expectPage(res: Response, status: number, text?: string | RegExp) {
  expect(res.status, res.text?.slice(0, 500)).toBe(status);
  expect(res.headers['content-type']).toMatch(/text\/html/);
  if (text !== undefined) expect(res.text).toMatch(text);
  // No page, whatever its status, ever shows a stack trace.
  expect(res.text).not.toMatch(/\bat [\w.<>]+ \(.*:\d+:\d+\)/);
}

export function setCookieHeaders(res: Response): string[] {
  const header = res.headers['set-cookie'] as unknown;
  if (!header) return [];
  return Array.isArray(header) ? (header as string[]) : [String(header)];
}

/** The text of a page without tags, for "what a person reads" assertions. */
export function visibleText(html: string): string {
  return html
    .replace(/<script[\s\S]*?<\/script>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}
