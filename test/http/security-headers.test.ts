import express, { type RequestHandler } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createSecurityHeaders, helmetFor } from '../../src/http/security-headers.js';

/** helmet runs once at start (issue 10); every response must still get exactly what it would set. */
const appWith = (headers: RequestHandler) =>
  express()
    .use(headers)
    .get('/page', (_req, res) => res.set('Cache-Control', 'no-store').send('page'));

describe('the security headers', () => {
  for (const isProduction of [true, false]) {
    it(`are helmet's own on every response (${isProduction ? 'production' : 'development'})`, async () => {
      const recorded = appWith(createSecurityHeaders(isProduction));
      const perRequest = appWith(helmetFor(isProduction));
      const expected = (await request(perRequest).get('/page')).headers;
      expect(expected['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(expected['strict-transport-security'] !== undefined).toBe(isProduction);
      for (let visit = 0; visit < 3; visit += 1) {
        const { headers } = await request(recorded).get('/page');
        const { date: _date, ...rest } = headers;
        const { date: _expectedDate, ...expectedRest } = expected;
        expect(rest).toEqual(expectedRest);
        expect(headers['cache-control']).toBe('no-store');
        expect(headers['x-powered-by']).toBeUndefined();
      }
    });
  }
});
