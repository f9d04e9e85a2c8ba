import { rateLimit } from 'express-rate-limit';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createFloodGuardStore, createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createTestClock } from '../helpers/clock.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage } from '../helpers/expectations.js';

// Threat: one address flooding the pages (CPU) or the forms (the slow password hash). The limits
// are the operator's: a load test, or many people behind one proxy address, need other numbers.
describe('RATE_LIMIT_REQUESTS_PER_MINUTE and RATE_LIMIT_POSTS_PER_MINUTE', () => {
  let site: TestApp | undefined;
  afterEach(async () => {
    await site?.close();
    site = undefined;
  });

  const page = () => request(site!.app).get('/login');
  const post = () => request(site!.app).post('/login').type('form').send({ username: 'a', password: 'b' });

  it('default to 300 requests and 120 form posts a minute', () => {
    expect(loadConfig({}).floodGuards).toEqual({ requestsPerMinute: 300, postsPerMinute: 120 });
    expect(
      loadConfig({ RATE_LIMIT_REQUESTS_PER_MINUTE: '0', RATE_LIMIT_POSTS_PER_MINUTE: '7' }).floodGuards,
    ).toEqual({ requestsPerMinute: 0, postsPerMinute: 7 });
    expect(() => loadConfig({ RATE_LIMIT_POSTS_PER_MINUTE: '-1' })).toThrow(
      /RATE_LIMIT_POSTS_PER_MINUTE: must be at least 0/,
    );
  });

  it('answer page views past a small limit with the 429 page', async () => {
    site = await createTestApp({ env: { RATE_LIMIT_REQUESTS_PER_MINUTE: '3' } });
    for (let i = 0; i < 3; i += 1) expect((await page()).status).toBe(200);
    const flooded = await page();
    expectPage(flooded, 429, /Too many requests from your address/);
    expect(flooded.headers['retry-after']).toBe('60');
  });

  it('count form posts on their own: past that limit a post is refused, pages still served', async () => {
    site = await createTestApp({ env: { RATE_LIMIT_POSTS_PER_MINUTE: '2' } });
    // Without a form token each post is refused (403) after the guard has counted it.
    expect((await post()).status).toBe(403);
    expect((await post()).status).toBe(403);
    expectPage(await post(), 429, /Too many requests from your address/);
    expect((await page()).status).toBe(200);
  });

  it('0 turns a guard off: no 429 however many requests, and no counter is asked', async () => {
    site = await createTestApp({
      env: { RATE_LIMIT_REQUESTS_PER_MINUTE: '0', RATE_LIMIT_POSTS_PER_MINUTE: '0' },
    });
    // One more of each than the defaults (300 and 120) allow.
    for (let i = 0; i < 301; i += 1) {
      const res = await page();
      expect(res.status).toBe(200);
      // express-rate-limit's draft-8 headers: present on every request a mounted guard sees.
      expect(res.headers.ratelimit).toBeUndefined();
    }
    for (let i = 0; i < 121; i += 1) expect((await post()).status).toBe(403);
  });

  it('with only the post guard off, page views are still counted', async () => {
    site = await createTestApp({
      env: { RATE_LIMIT_REQUESTS_PER_MINUTE: '2', RATE_LIMIT_POSTS_PER_MINUTE: '0' },
    });
    expect((await page()).headers['ratelimit-policy']).toMatch(/; q=2; w=60;/);
    expect((await post()).status).toBe(403);
    expect((await page()).status).toBe(429);
  });
});

describe('a flood guard’s store', () => {
  // Its hand-back names no window, so it hands nothing back: a guard told to skip some requests
  // would silently count them all. Such a guard is refused, loudly, when it is made.
  it('is refused, logged at start and failing every count, for a guard that would skip failed or successful requests', async () => {
    const limits = createMemoryRateLimitStore(createTestClock());
    for (const skipping of [{ skipFailedRequests: true }, { skipSuccessfulRequests: true }]) {
      const errors: string[] = [];
      const store = createFloodGuardStore(limits, 'pages', 60_000);
      rateLimit({
        store,
        ...skipping,
        logger: { error: (error: unknown) => void errors.push(String(error)), warn: () => {} },
      });
      expect(errors).toEqual([expect.stringMatching(/flood guard "pages".*not supported/)]);
      await expect(store.increment('192.0.2.1')).rejects.toThrow(/not supported/);
    }
    const errors: string[] = [];
    rateLimit({
      store: createFloodGuardStore(limits, 'posts', 60_000),
      logger: { error: (error: unknown) => void errors.push(String(error)), warn: () => {} },
    });
    expect(errors).toEqual([]);
  });
});
