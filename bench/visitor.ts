/**
 * A browser for the benchmark's setup steps (register, log in, reach the code page): it keeps
 * cookies and sends each page's CSRF token back with its form. The site runs in production
 * behind no proxy, so every request says it came over https (X-Forwarded-Proto from loopback,
 * which TRUST_PROXY trusts by default) and the site issues its Secure __Host- cookies; and it
 * names its own client address (X-Forwarded-For), as a proxy would for each person.
 */

export interface Page {
  status: number;
  location: string | null;
  html: string;
}

export interface Visitor {
  /** The client address this visitor's requests carry. */
  address: string;
  get(path: string): Promise<Page>;
  post(path: string, fields: Record<string, string>): Promise<Page>;
  /** Loads `pagePath`, then posts `fields` with that page's CSRF token to `action`. */
  submit(pagePath: string, action: string, fields: Record<string, string>): Promise<Page>;
  /** The Cookie header this visitor sends now. */
  cookieHeader(): string;
}

/** The value of the form's hidden `_csrf` field, or undefined. */
export function csrfTokenIn(html: string): string | undefined {
  for (const input of html.match(/<input\b[^>]*>/g) ?? []) {
    if (/\bname="_csrf"/.test(input)) return /\bvalue="([^"]*)"/.exec(input)?.[1];
  }
  return undefined;
}

/** name=value pairs of Set-Cookie headers; a cookie set to expire is removed. */
export function applySetCookies(jar: Map<string, string>, setCookies: readonly string[]): void {
  for (const header of setCookies) {
    const [pair = '', ...attributes] = header.split(';');
    const equals = pair.indexOf('=');
    if (equals <= 0) continue;
    const name = pair.slice(0, equals).trim();
    const expired = attributes.some((attribute) => {
      const [key = '', value = ''] = attribute.trim().split('=');
      if (key.toLowerCase() === 'max-age') return Number(value) <= 0;
      if (key.toLowerCase() === 'expires') return Date.parse(value) <= Date.now();
      return false;
    });
    if (expired) jar.delete(name);
    else jar.set(name, pair.slice(equals + 1).trim());
  }
}

export function cookieHeaderOf(jar: ReadonlyMap<string, string>): string {
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

export function createVisitor(origin: string, address: string): Visitor {
  const jar = new Map<string, string>();
  async function send(method: 'GET' | 'POST', path: string, body?: URLSearchParams): Promise<Page> {
    const headers: Record<string, string> = {
      'x-forwarded-proto': 'https',
      'x-forwarded-for': address,
    };
    if (jar.size > 0) headers.cookie = cookieHeaderOf(jar);
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(`${origin}${path}`, {
      method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(30_000),
    });
    applySetCookies(jar, response.headers.getSetCookie());
    return {
      status: response.status,
      location: response.headers.get('location'),
      html: await response.text(),
    };
  }
  const visitor: Visitor = {
    address,
    get: (path) => send('GET', path),
    post: (path, fields) => send('POST', path, new URLSearchParams(fields)),
    async submit(pagePath, action, fields) {
      const page = await visitor.get(pagePath);
      const token = csrfTokenIn(page.html);
      if (token === undefined) throw new Error(`${pagePath} (HTTP ${page.status}) has no CSRF token`);
      return visitor.post(action, { ...fields, _csrf: token });
    },
    cookieHeader: () => cookieHeaderOf(jar),
  };
  return visitor;
}
