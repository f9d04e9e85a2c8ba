import { createRequire } from 'node:module';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createTestApp } from './helpers/create-test-app.js';

// `npm start` with nothing to compile should answer within a second or so: what a site does not
// use is not loaded at start (each of these takes 0.1 to 0.3 s).
describe('starting the site', () => {
  it('loads no Redis, PostgreSQL or Bandwidth library when none is configured', async () => {
    const site = await createTestApp();
    try {
      expect((await request(site.app).get('/login')).status).toBe(200);
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      expect(
        loaded.filter((path) => /\/node_modules\/(redis|@redis\/[^/]+|pg|bandwidth-sdk)\//.test(path)),
      ).toEqual([]);
    } finally {
      await site.close();
    }
  });
});
