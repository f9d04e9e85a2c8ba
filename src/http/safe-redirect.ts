/**
 * Only ever returns a path on this site ("/admin?tab=1"), so a crafted ?next= cannot send a
 * person elsewhere after login (open redirect). Anything doubtful falls back.
 */
const NEVER_RETURN_TO = new Set(['/login', '/logout', '/verify']);

/** "//evil.example" and "/\evil.example" are read by browsers as other hosts. */
const looksLikeAnotherHost = (path: string) => path.startsWith('//') || path.startsWith('/\\');

export function toSafeReturnPath(candidate: unknown, fallback = '/account'): string {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > 512) return fallback;
  if (!candidate.startsWith('/') || looksLikeAnotherHost(candidate)) return fallback;
  if (/[\u0000-\u001f\u007f\\]/.test(candidate)) return fallback;
  try {
    const base = 'http://this.site.invalid';
    const url = new URL(candidate, base);
    if (url.origin !== base || NEVER_RETURN_TO.has(url.pathname)) return fallback;
    // Check what is returned, not only what came in: dot segments ("/..//evil.example")
    // normalise into a path that starts with "//".
    const path = url.pathname + url.search;
    return looksLikeAnotherHost(path) ? fallback : path;
  } catch {
    return fallback;
  }
}
