import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createAnonymousFormPages } from '../../src/auth/form-pages.js';
import type { Channel } from '../../src/mfa/provider.js';

/**
 * A new visitor's login and registration forms are one page for everyone but the CSRF token
 * (issue 10): rendered once per set of channels, each visit only puts its own token in. Anything
 * that could make the page differ (a session, a remembered channel, a query string) goes on to
 * the full routes.
 */
function siteWith(options: { keepRendered: boolean; channels?: Channel[] }) {
  const renders: Array<{ view: string; locals: Record<string, unknown> }> = [];
  let tokens = 0;
  const channels = options.channels ?? ['sms', 'voice'];
  const app = express();
  app.use(
    createAnonymousFormPages({
      channels: () => channels,
      render: async (view, locals) => {
        renders.push({ view, locals });
        const token = (locals.csrfToken as () => string)();
        // A page with two forms carries the one token twice.
        return `<form>${view} ${String(locals.channels)} <input value="${token}"></form><form><input value="${token}"></form>`;
      },
      csrfTokenFor: (_req, res) => {
        tokens += 1;
        res.cookie('token-cookie', `t${tokens}`);
        return `token-${tokens}`;
      },
      sessionCookieName: 'mfa.sid',
      channelCookieName: 'mfa.channel',
      keepRendered: options.keepRendered,
    }),
  );
  app.use((req, res) => res.status(299).send(`full route for ${req.url}`));
  return { app, renders, setChannels: (next: Channel[]) => channels.splice(0, channels.length, ...next) };
}

describe('a new visitor’s login and registration forms', () => {
  it('are rendered once, and each visit gets its own token in every form', async () => {
    const site = siteWith({ keepRendered: true });
    const first = await request(site.app).get('/login');
    const second = await request(site.app).get('/login');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toMatch(/^text\/html/);
    expect(first.text).toBe(
      '<form>auth/login sms,voice <input value="token-1"></form><form><input value="token-1"></form>',
    );
    expect(second.text).toContain('value="token-2"');
    expect(second.text).not.toContain('token-1');
    expect(second.headers['set-cookie']).toEqual([expect.stringMatching(/^token-cookie=t2;/)]);
    expect(site.renders.map((render) => render.view)).toEqual(['auth/login']);

    await request(site.app).get('/register');
    await request(site.app).get('/register');
    expect(site.renders.map((render) => render.view)).toEqual(['auth/login', 'auth/register']);
    expect(site.renders[0]!.locals).toMatchObject({
      values: { username: '', next: '', channel: '' },
      errors: [],
    });
    expect(site.renders[1]!.locals).toMatchObject({ values: { channel: 'sms', country: 'US' } });
  });

  it('are rendered again when the channels a provider delivers change', async () => {
    const site = siteWith({ keepRendered: true });
    await request(site.app).get('/login');
    site.setChannels(['voice']);
    const page = await request(site.app).get('/login');
    expect(page.text).toContain('auth/login voice ');
    expect(site.renders).toHaveLength(2);
  });

  it('are rendered on every visit outside production, so an edited view shows at once', async () => {
    const site = siteWith({ keepRendered: false });
    await request(site.app).get('/login');
    await request(site.app).get('/login');
    expect(site.renders).toHaveLength(2);
  });

  it('leave every other request to the full routes', async () => {
    const site = siteWith({ keepRendered: true });
    const passedOn = [
      request(site.app).get('/login').set('Cookie', 'mfa.sid=s%3Aabc'),
      request(site.app).get('/register').set('Cookie', 'other=1; mfa.sid=s%3Aabc'),
      request(site.app).get('/login').set('Cookie', 'mfa.channel=voice'),
      request(site.app).get('/login?next=%2Faccount'),
      request(site.app).get('/login?signedOut'),
      request(site.app).post('/login'),
      request(site.app).get('/login/'),
      request(site.app).get('/account'),
    ];
    for (const answer of await Promise.all(passedOn)) expect(answer.status).toBe(299);
    expect(site.renders).toEqual([]);
    // A remembered channel only changes the login form.
    expect((await request(site.app).get('/register').set('Cookie', 'mfa.channel=voice')).status).toBe(200);
  });
});
