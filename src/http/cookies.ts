/**
 * Reads one cookie from a Cookie header. Cookies come from the browser, so anyone can send any
 * bytes: a value that is not valid percent-encoding (`%`, `%zz`) is treated as absent, never thrown.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator === -1 || part.slice(0, separator).trim() !== name) continue;
    const raw = part.slice(separator + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Every raw value sent for a cookie name, in the order sent; no decoding, so no input can throw.
 * A browser sends a name twice when cookies of that name were set for more than one domain or path
 * (a sibling subdomain can "toss" one onto ours): callers that must not guess refuse such a pair.
 */
export function readCookieValues(header: string | undefined, name: string): string[] {
  if (typeof header !== 'string') return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator !== -1 && part.slice(0, separator).trim() === name) {
      values.push(part.slice(separator + 1).trim());
    }
  }
  return values;
}
