import { afterEach, describe, expect, it } from 'vitest';
import { createBrowser } from '../helpers/agent.js';
import { PRODUCTION_ENV, createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage } from '../helpers/expectations.js';
import { register, submitPassword } from '../helpers/flows.js';

describe('GET /healthz', () => {
  let site: TestApp | undefined;
  afterEach(() => site?.close());

  it('answers 200 JSON while the database answers, with each provider’s state and no secrets', async () => {
    site = await createTestApp();
    const res = await createBrowser(site.app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      database: 'up',
      providers: [{ name: 'console', channels: ['sms', 'voice'], state: 'up' }],
    });
  });

  it('shows pages a clear 503 when the database fails, and comes back when it does', async () => {
    site = await createTestApp();
    const app = site.app;
    const browser = createBrowser(app);
    await browser.get('/login');
    site.db.close();
    const page = await browser.get('/login');
    expectPage(page, 503, /cannot reach its data right now\. Nothing you saved is lost/);
    site = undefined;
  });

  it('answers 503 when the database does not', async () => {
    site = await createTestApp();
    const app = site.app;
    site.db.close();
    const res = await createBrowser(app).get('/healthz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'unavailable', database: 'down' });
    site = undefined;
  });
});

describe('GET /dev/outbox', () => {
  let site: TestApp | undefined;
  afterEach(() => site?.close());

  it('lists the console provider’s messages, newest first, outside production', async () => {
    site = await createTestApp();
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await submitPassword(browser, account, 'sms');
    site.clock.advance(30_000);
    await browser.submit('/verify', '/verify/resend', { channel: 'voice' });
    const page = await browser.get('/dev/outbox');
    expectPage(page, 200, /Outbox/);
    const texts = [...page.text.matchAll(/data-outbox-text>([^<]+)</g)].map((match) => match[1]);
    expect(texts).toHaveLength(2);
    expect(texts[0]).toMatch(/^Your Keyhole code is \d \d \d \d \d \d$/);
    expect(texts[1]).toMatch(/^Keyhole code: (\d{6})\n\n@localhost #\1$/);
  });

  it('does not exist in production', async () => {
    site = await createTestApp({ env: PRODUCTION_ENV });
    expectPage(await createBrowser(site.app).get('/dev/outbox'), 404);
  });
});
