import { CookieAccessInfo } from 'cookiejar';
import type { Express } from 'express';
import request from 'supertest';

export type Agent = ReturnType<typeof request.agent>;
export type Response = request.Response;

export function csrfTokenIn(html: string): string {
  const match = html.match(/name="_csrf" value="([^"]+)"/);
  if (!match) throw new Error('no CSRF token on the page');
  return match[1]!;
}

/**
 * A browser-like client: keeps cookies, and submits forms the way a person does, by loading the
 * page first and sending its CSRF token back with the fields.
 */
export interface Browser {
  agent: Agent;
  get(path: string): Promise<Response>;
  /** Loads `pagePath`, then posts `fields` (plus the page's CSRF token) to `action`. */
  submit(pagePath: string, action: string, fields?: Record<string, string>): Promise<Response>;
  /**
   * "name=value" of the cookie this browser holds under `name` (as it would send it), or undefined.
   * A page that changes nothing sets no cookie, so the jar, not the last response, is where it is.
   */
  cookie(name: string): string | undefined;
}

/** "name=value" of the cookie a supertest agent holds under `name`, or undefined. */
export function cookieInJar(agent: Agent, name: string): string | undefined {
  const jar = (agent as unknown as { jar: import('cookiejar').CookieJar }).jar;
  const found = jar.getCookies(CookieAccessInfo.All).find((cookie) => cookie.name === name);
  return found ? `${found.name}=${found.value}` : undefined;
}

export function createBrowser(app: Express): Browser {
  const agent = request.agent(app);
  return {
    agent,
    get: (path) => agent.get(path),
    cookie: (name) => cookieInJar(agent, name),
    async submit(pagePath, action, fields = {}) {
      const page = await agent.get(pagePath);
      return agent
        .post(action)
        .type('form')
        .send({ ...fields, _csrf: csrfTokenIn(page.text) });
    },
  };
}
