/**
 * Reads one cookie from a Cookie header. Cookies come from the browser, so anyone can send any
 * bytes: a value that is not valid percent-encoding (`%`, `%zz`) is treated as absent, never thrown.
 */
/** RFC 6265 whitespace only: a wider trim would let "\u00a0__Host-x" pass for "__Host-x". */
const trimCookieText = (text: string) => text.replace(/^[ \t]+|[ \t]+$/g, '');

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator === -1 || trimCookieText(part.slice(0, separator)) !== name) continue;
    const raw = trimCookieText(part.slice(separator + 1));
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
    if (separator !== -1 && trimCookieText(part.slice(0, separator)) === name) {
      values.push(trimCookieText(part.slice(separator + 1)));
    }
  }
  return values;
}
