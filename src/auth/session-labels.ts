import { parseClient } from '../http/client-address.js';

/**
 * How a list of sessions names each one to a person: the browser and system from its User-Agent
 * ("Firefox on Windows", "Safari on iPhone") and its address, masked. Plain text, escaped by the
 * page as any other. Only a few well-known names are told apart: a list of sessions needs to be
 * recognisable, not exact, and a User-Agent can say anything its sender likes.
 */

/** Checked in order: each browser built on another's engine says the other's name too. */
const BROWSERS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bEdg(?:e|A|iOS)?\//, 'Edge'],
  [/\bOPR\/|\bOpera\b/, 'Opera'],
  [/\bSamsungBrowser\//, 'Samsung Internet'],
  [/\bFirefox\/|\bFxiOS\//, 'Firefox'],
  [/\bChrome\/|\bCriOS\//, 'Chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
];

const SYSTEMS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\biPhone\b/, 'iPhone'],
  [/\biPad\b/, 'iPad'],
  [/\bAndroid\b/, 'Android'],
  [/\bWindows\b/, 'Windows'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bMacintosh\b|\bMac OS X\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
];

const firstMatch = (table: ReadonlyArray<readonly [RegExp, string]>, text: string) =>
  table.find(([pattern]) => pattern.test(text))?.[1];

/** "Firefox on Windows", "Safari on iPhone", "Chrome", "A browser on Linux", or "Unknown browser". */
export function describeUserAgent(userAgent: string | null | undefined): string {
  if (!userAgent) return 'Unknown browser';
  const browser = firstMatch(BROWSERS, userAgent);
  const system = firstMatch(SYSTEMS, userAgent);
  if (browser && system) return `${browser} on ${system}`;
  if (browser) return browser;
  if (system) return `A browser on ${system}`;
  return 'Unknown browser';
}

/**
 * An address with its host part hidden: an IPv4 address keeps its first two octets
 * ("203.0.x.x", also when written "::ffff:203.0.113.7"), an IPv6 address its first two groups
 * ("2001:db8:x:x:x:x:x:x"). Enough to tell home from abroad, not to find the person.
 */
export function maskAddress(address: string | null | undefined): string {
  const client = address ? parseClient(address) : null;
  if (client === null) return 'Unknown address';
  if (client.family === 4) {
    const [a, b] = client.key.split('.');
    return `${a}.${b}.x.x`;
  }
  const [first, second] = client.groups.map((group) => group.toString(16));
  return `${first}:${second}:x:x:x:x:x:x`;
}
