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
