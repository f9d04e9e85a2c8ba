/**
 * Only ever returns a path on this site ("/admin?tab=1"), so a crafted ?next= cannot send a
 * person elsewhere after login (open redirect). Anything doubtful falls back.
 */
export function toSafeReturnPath(candidate: unknown, fallback = '/account'): string {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > 512) return fallback;
  // "//evil.example" and "/\evil.example" are read by browsers as other hosts.
  if (!candidate.startsWith('/') || candidate.startsWith('//') || candidate.startsWith('/\\'))
    return fallback;
  if (/[\u0000-\u001f\u007f\\]/.test(candidate)) return fallback;
  try {
    const base = 'http://this.site.invalid';
    const url = new URL(candidate, base);
    if (url.origin !== base) return fallback;
    if (url.pathname === '/login' || url.pathname === '/logout' || url.pathname === '/verify')
      return fallback;
    return url.pathname + url.search;
  } catch {
    return fallback;
  }
}
