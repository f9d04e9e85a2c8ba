import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import { KEY_NAME_MAX_LENGTH, type ApiKey, type ApiKeyStore } from '../api/keys.js';
import { currentUserOf } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { NotFoundError } from '../errors.js';
import { parseForm, type FieldError } from '../http/validate.js';
import { CHANNELS, describeChannel, type Channel } from '../mfa/provider.js';
import type { ProviderPool } from '../mfa/providers/pool.js';
import { isAdminVerified } from '../mfa/scopes.js';
import type { UserStore } from '../users/store.js';
import { ADMIN_ACTION_FRESHNESS_MS, FRESH_CODE_PATH } from './account-routes.js';
import { describeApiKey, type ApiKeyManagement } from './api-key-management.js';
import { newApiKeySchema } from './schemas.js';

declare module 'express-session' {
  interface SessionData {
    /**
     * The create form on /admin/api-keys carries this; a creation uses it up. A reload of the page
     * that shows a new key (the browser sends the form again) then makes no second key.
     */
    apiKeyFormToken?: string;
  }
}

export const API_KEYS_PATH = '/admin/api-keys';

export interface ApiKeyRoutesDeps {
  apiKeys: Pick<ApiKeyStore, 'list' | 'findById'>;
  management: ApiKeyManagement;
  /** Who made each key, by name. */
  users: Pick<UserStore, 'findById'>;
  /** The channels a new key may be given: those this site's providers deliver. */
  providers: Pick<ProviderPool, 'channels'>;
  clock: Clock;
  adminScopeTtlMs: number;
}

const KEY_ID = /^[1-9]\d{0,9}$/;

/**
 * /admin/api-keys (issue 13), on the admin router after its guards (signed in, an admin): the
 * keys of the verification API, a new one, a revocation. Like an action on an account, a change
 * needs an admin code from the last few minutes: a key sends codes at the site's cost, so a
 * secure area left open at a desk must not be enough to make one.
 */
export function addApiKeyRoutes(router: Router, deps: ApiKeyRoutesDeps): void {
  const { apiKeys, management, users, clock } = deps;
  const freshnessMs = Math.min(ADMIN_ACTION_FRESHNESS_MS, deps.adminScopeTtlMs);

  const isInSecureArea = (req: Request, res: Response) =>
    isAdminVerified(req.session, currentUserOf(res)!.id, clock.now().getTime(), deps.adminScopeTtlMs);
  const hasFreshCode = (req: Request, res: Response) =>
    isAdminVerified(req.session, currentUserOf(res)!.id, clock.now().getTime(), freshnessMs);
  const deliverableChannels = () => CHANNELS.filter((channel) => deps.providers.channels().includes(channel));

  async function keyOf(req: Request): Promise<ApiKey> {
    const id = String(req.params.id ?? '');
    const key = KEY_ID.test(id) ? await apiKeys.findById(Number(id)) : null;
    if (!key) throw new NotFoundError('There is no such API key.');
    return key;
  }

  /** A key as the pages show it: its hint, never more of it. */
  async function describeKeys(keys: ApiKey[]) {
    const creatorIds = [...new Set(keys.flatMap((key) => (key.createdBy === null ? [] : [key.createdBy])))];
    const creators = new Map(
      await Promise.all(
        creatorIds.map(async (id) => [id, (await users.findById(id))?.username ?? null] as const),
      ),
    );
    return keys.map((key) => ({
      id: key.id,
      name: key.name,
      hint: key.hint,
      channels: key.channels.map(describeChannel).join(', '),
      createdAt: key.createdAt,
      createdBy: key.createdBy === null ? null : (creators.get(key.createdBy) ?? null),
      lastUsedAt: key.lastUsedAt,
      revokedAt: key.revokedAt,
    }));
  }

  async function renderList(
    req: Request,
    res: Response,
    options: {
      status?: number;
      errors?: FieldError[];
      values?: { name: string; channels: string[] };
      refusal?: string;
    } = {},
  ) {
    req.session.apiKeyFormToken ??= randomBytes(16).toString('base64url');
    const flash = req.session.flash;
    delete req.session.flash;
    const deliverable = deliverableChannels();
    res.status(options.status ?? 200).render('admin/api-keys', {
      title: 'API keys',
      keys: await describeKeys(await apiKeys.list()),
      channels: CHANNELS.map((channel) => ({
        value: channel,
        label: channel === 'sms' ? 'Text messages' : 'Voice calls',
        deliverable: deliverable.includes(channel),
      })),
      formToken: req.session.apiKeyFormToken,
      nameMaxLength: KEY_NAME_MAX_LENGTH,
      needsFreshCode: !hasFreshCode(req, res),
      freshMinutes: Math.round(freshnessMs / 60_000),
      // A fresh form offers the first channel a provider delivers: the least a key needs.
      values: options.values ?? { name: '', channels: deliverable.slice(0, 1) },
      errors: options.errors ?? [],
      refusal: options.refusal ?? null,
      flash,
    });
  }

  /** The fields as typed, to show them again with the form's errors. */
  function typedValues(body: Record<string, unknown> | undefined) {
    const name = typeof body?.name === 'string' ? body.name.slice(0, KEY_NAME_MAX_LENGTH * 2) : '';
    const sent = body?.channels;
    const channels = (Array.isArray(sent) ? sent : [sent]).filter(
      (value): value is Channel =>
        typeof value === 'string' && (CHANNELS as readonly string[]).includes(value),
    );
    return { name, channels };
  }

  /** Whether the form sent is the one this session's list page holds (see apiKeyFormToken). */
  function isCurrentForm(req: Request, sent: unknown): boolean {
    const expected = req.session.apiKeyFormToken;
    if (typeof sent !== 'string' || expected === undefined) return false;
    const a = Buffer.from(sent);
    const b = Buffer.from(expected);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  router.get(API_KEYS_PATH, async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    await renderList(req, res);
  });

  router.post(API_KEYS_PATH, async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    // An admin code from the last few minutes, or a fresh one first: back to the list after it.
    if (!hasFreshCode(req, res)) {
      req.session.returnTo = API_KEYS_PATH;
      return res.redirect(303, FRESH_CODE_PATH);
    }
    const body = req.body as Record<string, unknown> | undefined;
    if (!isCurrentForm(req, body?.form)) {
      return renderList(req, res, {
        status: 409,
        refusal:
          'This form was already sent, or is out of date: no key was made now. A key made before is in the list below; its key is never shown again. To make a new key, fill in the form again.',
      });
    }
    const form = parseForm(newApiKeySchema(deliverableChannels()), body);
    if (!form.ok)
      return renderList(req, res, { status: 400, errors: form.errors, values: typedValues(body) });

    // Used up before the key exists: a reload of the next page sends the form again, and must be
    // refused rather than make a second key. (Two submissions at the very same moment can both
    // read the token before either saves the session: both keys are listed, and revocable.)
    delete req.session.apiKeyFormToken;
    const admin = currentUserOf(res)!;
    const made = await management.create({ ...form.data, admin, ip: req.ip });
    // The key is in this response and nowhere else: not in a URL, not in the session, not in a
    // later page. The admin router sends every page with Cache-Control: no-store.
    res.status(201).render('admin/api-keys-created', {
      title: 'Your new API key',
      key: made.key,
      name: made.apiKey.name,
      channels: made.apiKey.channels.map(describeChannel).join(' and '),
    });
  });

  router.get(`${API_KEYS_PATH}/:id/revoke`, async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    const [key] = await describeKeys([await keyOf(req)]);
    res.render('admin/api-keys-revoke', {
      title: `Revoke the API key ${key!.name}`,
      key,
      needsFreshCode: !hasFreshCode(req, res),
      freshMinutes: Math.round(freshnessMs / 60_000),
    });
  });

  router.post(`${API_KEYS_PATH}/:id/revoke`, async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    const key = await keyOf(req);
    if (!hasFreshCode(req, res)) {
      req.session.returnTo = `${API_KEYS_PATH}/${key.id}/revoke`;
      return res.redirect(303, FRESH_CODE_PATH);
    }
    const outcome = await management.revoke({ key, admin: currentUserOf(res)!, ip: req.ip });
    req.session.flash = {
      kind: 'info',
      message:
        outcome === 'revoked'
          ? `The key ${describeApiKey(key)} is revoked: the API refuses it from now on.`
          : `The key ${describeApiKey(key)} was already revoked: nothing changed.`,
    };
    res.redirect(303, API_KEYS_PATH);
  });
}
