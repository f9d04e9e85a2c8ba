import { existsSync, readFileSync } from 'node:fs';
import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKeyAuthentication } from '../../src/api/authenticate.js';
import { hashApiKey } from '../../src/api/keys.js';
import type { MfaProvider } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { createBrowser, csrfTokenIn, type Browser, type Response } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

/**
 * The verification API's keys in the secure area (issue 13). Threats: a person who is not an
 * admin, or a secure area left open at a desk, making a key that sends codes at the site's cost;
 * a key left where someone else can read it later (a second page, a URL, the session, the
 * database, the audit log, a browser's cache); a reload making a second key; a revocation nobody
 * can account for, or one the API does not see at once.
 */

const KEY_PATTERN = /kh_test_[A-Za-z0-9_-]{43}/;
const LIST = '/admin/api-keys';
const revokePage = (id: number | string) => `${LIST}/${id}/revoke`;

function formTokenIn(html: string): string {
  const match = html.match(/name="form" value="([^"]+)"/);
  if (!match) throw new Error('no create form on the page');
  return match[1]!;
}

/** The key a created page shows, or an error: it must be there, once. */
function keyShownOn(res: Response): string {
  const found = res.text.match(new RegExp(KEY_PATTERN.source, 'g')) ?? [];
  expect(found, 'the key, exactly once on the page').toHaveLength(1);
  return found[0]!;
}

/** The text of each row of the keys' table, as a person reads it. */
function rowsOf(html: string): string[] {
  const body = html.slice(html.indexOf('<tbody>'), html.indexOf('</tbody>'));
  return body.split('<tr role="row">').slice(1).map(visibleText);
}

/** The secure area's own code, entered now. */
async function enterSecureArea(site: TestApp, browser: Browser) {
  expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
  expectRedirect(await submitCode(browser, lastConsoleCode(site.printed, 'admin')), '/admin');
}

describe('API keys in the secure area', () => {
  let site: TestApp;
  let admin: Browser;
  let rootId: number;
  let ann: TestAccount;

  /** The create form as a person sends it: the list page loaded first, its tokens sent back. */
  async function createKey(fields: Record<string, string | string[]>, browser = admin) {
    const page = await browser.get(LIST);
    return browser.agent
      .post(LIST)
      .type('form')
      .send({ ...fields, _csrf: csrfTokenIn(page.text), form: formTokenIn(page.text) });
  }
  const auditOf = async (type: string) =>
    (await site.audit.recent(200)).filter((event) => event.type === type);
  const storedKeys = () => site.stores.apiKeys.list();

  /** The API's own check of a key, as the /api routes run it. */
  const authenticate = (key: string) => {
    const api = express();
    api.use(createApiKeyAuthentication({ apiKeys: site.stores.apiKeys, clock: site.clock }));
    api.get('/who', (req, res) => res.json({ name: req.apiKey?.name }));
    return request(api).get('/who').set('Authorization', `Bearer ${key}`);
  };

  beforeEach(async () => {
    site = await createTestApp();
    admin = createBrowser(site.app);
    const root = await register(admin, { username: 'root' });
    ann = await register(createBrowser(site.app), { username: 'ann' });
    rootId = (await site.users.findByUsername('root'))!.id;
    await site.grantAdmin('root');
    await logIn(site, admin, root);
    await enterSecureArea(site, admin);
  });
  afterEach(() => site.close());

  describe('who may see and change them', () => {
    it('refuses a signed-in person who is not an admin, with her own valid tokens, and makes no key', async () => {
      const annBrowser = createBrowser(site.app);
      await logIn(site, annBrowser, ann);
      expectPage(await annBrowser.get(LIST), 403, /for administrators only/);
      expectPage(
        await annBrowser.submit('/account', LIST, { name: 'mine', channels: 'sms', form: 'guess' }),
        403,
        /for administrators only/,
      );
      const made = await createKey({ name: 'Shop', channels: 'sms' });
      const id = (await storedKeys())[0]!.id;
      expectPage(await annBrowser.get(revokePage(id)), 403);
      expectPage(await annBrowser.submit('/account', revokePage(id)), 403);
      expect(made.status).toBe(201);
      expect((await storedKeys()).map((key) => [key.name, key.revokedAt])).toEqual([['Shop', null]]);
      expect((await auditOf('admin_denied')).length).toBeGreaterThanOrEqual(4);
      expect(await auditOf('api_key_revoked')).toEqual([]);
    });

    it('sends a visitor to the login, and an admin without the secure area’s code to it', async () => {
      expectRedirect(await createBrowser(site.app).get(LIST), `/login?next=${encodeURIComponent(LIST)}`);
      site.clock.advanceMinutes(16);
      expectRedirect(await admin.get(LIST), '/admin');
      expectRedirect(await admin.get(revokePage(1)), '/admin');
      expectPage(await admin.get('/admin'), 200, /Confirm it is you/);
    });

    it('is linked from the secure area', async () => {
      expect((await admin.get('/admin')).text).toContain(`href="${LIST}"`);
      const page = await admin.get(LIST);
      expectPage(page, 200, /API keys/);
      expect(visibleText(page.text)).toContain('No API keys yet.');
      expect(page.headers['cache-control']).toBe('no-store');
    });

    it('needs an admin code from the last 5 minutes to make a key, then comes back to the list', async () => {
      // Threat: a secure area left open at a desk (it lasts 15 minutes) used to make a key.
      site.clock.advanceMinutes(6);
      expectPage(await admin.get(LIST), 200, /admin code from the last 5 minutes/);
      expectRedirect(await createKey({ name: 'Left open', channels: 'sms' }), '/admin/confirm');
      expect(await storedKeys()).toEqual([]);
      expectPage(await admin.get('/admin/confirm'), 200, /Changing API keys needs an admin code/);
      expectRedirect(await admin.submit('/admin/confirm', '/admin/step-up'), '/verify');
      expectRedirect(await submitCode(admin, lastConsoleCode(site.printed, 'admin')), LIST);
      expect((await createKey({ name: 'Shop', channels: 'sms' })).status).toBe(201);
      expect(await storedKeys()).toHaveLength(1);
    });
  });

  describe('making a key', () => {
    it('shows the key once, in the answer to the form itself: no redirect, no-store, a warning', async () => {
      const res = await createKey({ name: '  Shop   checkout ', channels: ['sms', 'voice'] });
      expectPage(res, 201, /Your new API key/);
      expect(res.headers.location).toBeUndefined();
      expect(res.headers['cache-control']).toBe('no-store');
      const key = keyShownOn(res);
      const text = visibleText(res.text);
      expect(text).toContain('it will not be shown again');
      expect(text).toContain('The key Shop checkout may send codes by text message and voice call.');
      expect(text).toContain('Authorization: Bearer');

      // Only its digest was kept: the key the admin copied is the one the API accepts.
      const [stored] = await storedKeys();
      expect(stored).toMatchObject({
        name: 'Shop checkout',
        hint: key.slice(0, 12),
        channels: ['sms', 'voice'],
        createdBy: rootId,
        revokedAt: null,
      });
      expect(await site.stores.apiKeys.findByHash(hashApiKey(key))).toEqual(stored);
      const used = await authenticate(key);
      expect(used.status).toBe(200);
      expect(used.body).toEqual({ name: 'Shop checkout' });
    });

    it('never shows the key again: not on the list, the secure area, the key’s page, nor after a reload of the form', async () => {
      const page = await admin.get(LIST);
      const fields = {
        name: 'Shop',
        channels: 'sms',
        _csrf: csrfTokenIn(page.text),
        form: formTokenIn(page.text),
      };
      const created = await admin.agent.post(LIST).type('form').send(fields);
      const key = keyShownOn(created);
      const [stored] = await storedKeys();

      for (const path of [LIST, '/admin', revokePage(stored!.id), '/account', '/account/security']) {
        const later = await admin.get(path);
        expect(later.text, path).not.toContain(key);
        expect(later.text, path).not.toMatch(KEY_PATTERN);
      }
      const list = await admin.get(LIST);
      expect(list.text).toContain(`${stored!.hint}…`);

      // The browser's "send the form again" on the created page makes no second key, shows no key.
      const again = await admin.agent.post(LIST).type('form').send(fields);
      expectPage(again, 409, /This form was already sent/);
      expect(again.text).not.toMatch(KEY_PATTERN);
      expect(await storedKeys()).toHaveLength(1);
    });

    it('leaves the key nowhere on the server: not in the database files (sessions, audit log), only its digest', async () => {
      const key = keyShownOn(await createKey({ name: 'Shop', channels: 'sms' }));
      await admin.get(LIST);
      const files = [site.databasePath, `${site.databasePath}-wal`].filter((file) => existsSync(file));
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        const bytes = readFileSync(file);
        expect(bytes.includes(key), file).toBe(false);
        expect(bytes.includes(key.slice(12)), file).toBe(false);
      }
      expect(JSON.stringify(await site.audit.recent(200))).not.toContain(key.slice(12));
    });

    it('audits the creation with the admin, the key’s name and hint, never the key', async () => {
      const key = keyShownOn(await createKey({ name: 'Voice sample', channels: 'voice' }));
      const [event] = await auditOf('api_key_created');
      expect(event).toMatchObject({
        userId: rootId,
        username: 'root',
        detail: `“Voice sample” (${key.slice(0, 12)}…) for voice`,
      });
      expect(event!.detail).not.toContain(key.slice(12, 16));
    });

    it('refuses a missing, blank, too long or unreadable name with a 400 on the form, as typed, and makes nothing', async () => {
      const cases: Array<[Record<string, string | string[]>, RegExp]> = [
        [{ channels: 'sms' }, /Give the key a name\./],
        [{ name: '', channels: 'sms' }, /Give the key a name\./],
        [{ name: '   ', channels: 'sms' }, /Give the key a name\./],
        [{ name: 'x'.repeat(61), channels: 'sms' }, /at most 60 characters/],
        [{ name: 'Shop\u202Ekcehc', channels: 'sms' }, /characters we cannot accept/],
        [{ name: ['one', 'two'], channels: 'sms' }, /Give the key a name\./],
      ];
      for (const [fields, message] of cases) {
        const res = await createKey(fields);
        expectPage(res, 400, message);
        expect(res.text).toContain('There is a problem');
        expect(res.text).toContain('aria-invalid="true"');
      }
      const typed = await createKey({ name: 'Kept as typed', channels: [] });
      expectPage(typed, 400, /Choose at least one way the key may send codes/);
      expect(typed.text).toContain('value="Kept as typed"');
      expect(await storedKeys()).toEqual([]);
      expect(await auditOf('api_key_created')).toEqual([]);
    });

    it('takes a name of 60 characters after trimming', async () => {
      const name = 'n'.repeat(60);
      expect((await createKey({ name: `  ${name}  `, channels: 'sms' })).status).toBe(201);
      expect((await storedKeys())[0]!.name).toBe(name);
    });

    it('refuses no channel or an unknown one with a 400', async () => {
      expectPage(await createKey({ name: 'Shop' }), 400, /Choose at least one way/);
      expectPage(
        await createKey({ name: 'Shop', channels: 'fax' }),
        400,
        /Choose text messages, voice calls or both/,
      );
      expectPage(
        await createKey({ name: 'Shop', channels: ['sms', 'email'] }),
        400,
        /Choose text messages, voice calls or both/,
      );
      expect(await storedKeys()).toEqual([]);
    });

    it('refuses a form without its token, or another session’s, with a 409 and no key', async () => {
      const page = await admin.get(LIST);
      const csrf = csrfTokenIn(page.text);
      const missing = await admin.agent
        .post(LIST)
        .type('form')
        .send({ name: 'Shop', channels: 'sms', _csrf: csrf });
      expectPage(missing, 409, /no key was made now/);
      const forged = await admin.agent
        .post(LIST)
        .type('form')
        .send({ name: 'Shop', channels: 'sms', _csrf: csrf, form: 'x'.repeat(22) });
      expectPage(forged, 409);
      expect(await storedKeys()).toEqual([]);
    });
  });

  describe('the list', () => {
    it('shows each key’s name, hint, channels, creator, last use and status, the newest first, never a key', async () => {
      const first = keyShownOn(await createKey({ name: 'Shop checkout', channels: 'sms' }));
      site.clock.advanceMinutes(1);
      const second = keyShownOn(await createKey({ name: 'Voice sample', channels: ['voice', 'sms'] }));
      site.clock.advanceMinutes(1);
      expect((await authenticate(first)).status).toBe(200);
      const [voice] = await storedKeys();
      expectRedirect(await admin.submit(revokePage(voice!.id), revokePage(voice!.id)), LIST);

      const page = await admin.get(LIST);
      // The admin who hands a key out can hand out the reference with it.
      expect(page.text).toContain('<a href="/api/docs">API reference</a>');
      expect(page.text).not.toContain(first);
      expect(page.text).not.toContain(second);
      const rows = rowsOf(page.text);
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatch(
        new RegExp(
          `^Voice sample ${second.slice(0, 12)}… text message, voice call .* UTC by root never Revoked .* UTC$`,
        ),
      );
      expect(rows[1]).toMatch(
        new RegExp(
          `^Shop checkout ${first.slice(0, 12)}… text message .* UTC by root .* UTC active Revoke the key Shop checkout ?…$`,
        ),
      );
      expect(rows[1]).not.toMatch(/never/);
    });

    it('says “a deleted account” for a key whose admin has since deleted their account', async () => {
      const bob = await register(createBrowser(site.app), { username: 'bob' });
      await site.grantAdmin(bob.username);
      const bobId = (await site.users.findByUsername('bob'))!.id;
      await site.stores.apiKeys.create({
        name: 'Old integration',
        keyHash: 'a'.repeat(64),
        hint: 'kh_test_Old0',
        channels: ['sms'],
        createdBy: bobId,
      });
      expect(await site.users.deleteAccount(bobId)).toBe('deleted');
      expect(rowsOf((await admin.get(LIST)).text)).toEqual([
        expect.stringMatching(
          /^Old integration kh_test_Old0… text message .* UTC by a deleted account never active/,
        ),
      ]);
    });
  });

  describe('revoking a key', () => {
    let key: string;
    let id: number;

    beforeEach(async () => {
      key = keyShownOn(await createKey({ name: 'Shop checkout', channels: 'sms' }));
      id = (await storedKeys())[0]!.id;
    });

    it('is a button on the key’s own page, which says what revoking does', async () => {
      const list = await admin.get(LIST);
      expect(list.text).toContain(`href="${revokePage(id)}"`);
      const page = await admin.get(revokePage(id));
      expectPage(page, 200, /Revoke the API key Shop checkout/);
      expect(visibleText(page.text)).toContain('the API refuses this key');
      expect(page.text).toContain(`action="${revokePage(id)}"`);
      expect(page.text).not.toContain(key);
    });

    it('revokes it: the API refuses it at once, the list says so, and the audit log says who', async () => {
      expect((await authenticate(key)).status).toBe(200);
      expectRedirect(await admin.submit(revokePage(id), revokePage(id)), LIST);
      expect(visibleText((await admin.get(LIST)).text)).toContain(
        `The key “Shop checkout” (${key.slice(0, 12)}…) is revoked: the API refuses it from now on.`,
      );
      const refused = await authenticate(key);
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.text)).toMatchObject({ type: 'urn:keyhole:problem:key-revoked' });
      expect(await auditOf('api_key_revoked')).toMatchObject([
        { userId: rootId, username: 'root', detail: `“Shop checkout” (${key.slice(0, 12)}…)` },
      ]);
      const page = await admin.get(revokePage(id));
      expectPage(page, 200, /This key was revoked/);
      expect(page.text).not.toContain(`action="${revokePage(id)}"`);
    });

    it('revoking twice is harmless: the second is told the key was already revoked, and not audited again', async () => {
      const page = await admin.get(revokePage(id));
      const send = () =>
        admin.agent
          .post(revokePage(id))
          .type('form')
          .send({ _csrf: csrfTokenIn(page.text) });
      const [one, two] = await Promise.all([send(), send()]);
      expectRedirect(one, LIST);
      expectRedirect(two, LIST);
      expectRedirect(await send(), LIST);
      expect(visibleText((await admin.get(LIST)).text)).toContain(
        `The key “Shop checkout” (${key.slice(0, 12)}…) was already revoked: nothing changed.`,
      );
      expect(await auditOf('api_key_revoked')).toHaveLength(1);
    });

    it('needs an admin code from the last 5 minutes, then comes back to the key’s page', async () => {
      site.clock.advanceMinutes(6);
      expectPage(await admin.get(revokePage(id)), 200, /admin code from the last 5 minutes/);
      expectRedirect(await admin.submit(revokePage(id), revokePage(id)), '/admin/confirm');
      expect((await site.stores.apiKeys.findById(id))!.revokedAt).toBeNull();
      expectRedirect(await admin.submit('/admin/confirm', '/admin/step-up'), '/verify');
      expectRedirect(await submitCode(admin, lastConsoleCode(site.printed, 'admin')), revokePage(id));
      expectRedirect(await admin.submit(revokePage(id), revokePage(id)), LIST);
      expect((await site.stores.apiKeys.findById(id))!.revokedAt).not.toBeNull();
    });

    it('answers 404 for a key that does not exist, or an id that is not one', async () => {
      for (const bad of ['999999', '0', '1e3', 'abc', '-1', `${id}.0`]) {
        expectPage(await admin.get(revokePage(bad)), 404, /There is no such API key/);
      }
      const page = await admin.get(LIST);
      const res = await admin.agent
        .post(revokePage(999_999))
        .type('form')
        .send({ _csrf: csrfTokenIn(page.text) });
      expectPage(res, 404, /There is no such API key/);
      expect(await auditOf('api_key_revoked')).toEqual([]);
    });
  });
});

describe('API keys where the providers send text messages only', () => {
  const CODE = '246810';
  let site: TestApp;
  let admin: Browser;

  beforeEach(async () => {
    const smsOnly: MfaProvider = {
      name: 'sms-only',
      channels: ['sms'],
      send: async () => ({ handle: 'scripted' }),
      verify: async ({ code }) => (code === CODE ? 'valid' : 'invalid'),
    };
    site = await createTestApp({ providers: createProviderPool([smsOnly]) });
    admin = createBrowser(site.app);
    const root = await register(admin, { username: 'root' }, { enrolCode: () => CODE });
    await site.grantAdmin('root');
    expectRedirect(await submitPassword(admin, root), '/verify');
    expectRedirect(await submitCode(admin, CODE), '/account');
    expectRedirect(await admin.submit('/admin', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(admin, CODE), '/admin');
  });
  afterEach(() => site.close());

  it('offers text messages only, and refuses a key that would send by voice call', async () => {
    const page = await admin.get(LIST);
    expect(page.text).toContain('value="sms"');
    expect(page.text).not.toContain('value="voice"');
    expect(visibleText(page.text)).toContain('Voice calls: no provider of this site sends them.');
    const form = { _csrf: csrfTokenIn(page.text), form: formTokenIn(page.text) };
    for (const channels of ['voice', ['sms', 'voice']]) {
      const res = await admin.agent
        .post(LIST)
        .type('form')
        .send({ ...form, name: 'Calls', channels });
      expectPage(res, 400, /No provider of this site sends codes by voice call/);
    }
    expect(await site.stores.apiKeys.list()).toEqual([]);
    const made = await admin.agent
      .post(LIST)
      .type('form')
      .send({ ...form, name: 'Texts', channels: 'sms' });
    expect(made.status).toBe(201);
  });
});
