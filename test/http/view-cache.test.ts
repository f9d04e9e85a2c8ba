import fs from 'node:fs';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VIEWS_DIR } from '../../src/paths.js';
import { PRODUCTION_ENV, createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { createBrowser } from '../helpers/agent.js';
import { expectPage } from '../helpers/expectations.js';

describe('views in production', () => {
  let site: TestApp;
  afterEach(async () => {
    vi.restoreAllMocks();
    await site.close();
  });

  it('are compiled once, includes too: later pages touch no template file on disk', async () => {
    site = await createTestApp({ env: PRODUCTION_ENV });
    // With a query string the login form is rendered by the engine (not the anonymous form pages'
    // kept copy): its head, foot and form partials.
    const pages = ['/login', '/login?next=%2Faccount', '/register', '/no-such-page'];
    for (const path of pages) await request(site.app).get(path);

    const touched: string[] = [];
    const record = (file: unknown) => {
      if (String(file).startsWith(VIEWS_DIR)) touched.push(String(file));
    };
    for (const method of ['existsSync', 'statSync', 'readFileSync'] as const) {
      const original = fs[method] as (...args: unknown[]) => unknown;
      vi.spyOn(fs, method).mockImplementation(((...args: unknown[]) => {
        record(args[0]);
        return original.apply(fs, args);
      }) as never);
    }
    expectPage(await request(site.app).get('/login'), 200, /Log in/);
    expectPage(await request(site.app).get('/login?next=%2Faccount'), 200, /name="_csrf"/);
    expectPage(await request(site.app).get('/register'), 200, /Create an account/);
    expectPage(await request(site.app).get('/no-such-page'), 404);
    expect(touched).toEqual([]);
  });
});

describe('entity tags', () => {
  // Each page carries its own CSRF token, so a tag would never match; hashing every page to make
  // one only cost CPU (issue 10). Files keep theirs, so browsers revalidate them cheaply.
  it('are not made for pages, and are kept for files under /assets', async () => {
    const site = await createTestApp();
    try {
      const browser = createBrowser(site.app);
      for (const path of ['/login', '/register', '/']) {
        expect((await browser.get(path)).headers.etag).toBeUndefined();
      }
      expect((await browser.get('/assets/css/site.css')).headers.etag).toMatch(/^W\/"/);
    } finally {
      await site.close();
    }
  });
});
