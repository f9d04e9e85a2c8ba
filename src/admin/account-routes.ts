import type { Request, Response, Router } from 'express';
import type { AccountSessions } from '../auth/account-sessions.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import type { FactorStore } from '../factors/store.js';
import { currentUserOf, isAdminUser } from '../auth/guards.js';
import { describeUserAgent, maskAddress } from '../auth/session-labels.js';
import type { Clock } from '../clock.js';
import { NotFoundError, describeWait } from '../errors.js';
import { COUNTRY_OPTIONS } from '../auth/countries.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import { parseForm, type FieldError } from '../http/validate.js';
import { isAdminVerified } from '../mfa/scopes.js';
import type { MfaService } from '../mfa/service.js';
import { maskPhone, parsePhone } from '../users/phone.js';
import type { User, UserStore } from '../users/store.js';
import {
  OWN_FACTORS_RESET_REFUSAL,
  REASON_MAX_CHARS,
  type AccountHelp,
  type AccountHelpRequest,
} from './account-help.js';
import { OWN_PHONE_REPLACEMENT_REFUSAL, type PhoneReplacement } from './phone-replacement.js';
import { accountActionSchema, replacePhoneSchema, resetSecondFactorsSchema } from './schemas.js';

/**
 * Each action on an account needs an admin code entered this recently, however long the secure
 * area itself stays open (ADMIN_SCOPE_TTL_MINUTES): a session left open at a desk must not be
 * enough to disable someone.
 */
export const ADMIN_ACTION_FRESHNESS_MS = 5 * 60_000;

/** Where an admin whose code is too old gets a fresh one (then comes back). */
export const FRESH_CODE_PATH = '/admin/confirm';

export interface AccountRoutesDeps {
  users: UserStore;
  accountSessions: AccountSessions;
  /** What a reset of second factors would remove, shown on its confirmation page. */
  rememberedBrowsers: Pick<RememberedBrowsers, 'list'>;
  factors: Pick<FactorStore, 'listForUser'>;
  mfa: Pick<MfaService, 'lockedForSeconds' | 'isCodeEntrySuspended'>;
  help: AccountHelp;
  /** The replacement of a lost phone number, on a page of its own. */
  phoneReplacement: PhoneReplacement;
  clock: Clock;
  adminScopeTtlMs: number;
}

const ACCOUNT_ID = /^[1-9]\d{0,9}$/;

/**
 * /admin/accounts/:id, the page of one account and its actions, on the admin router (after its
 * guards: signed in, an admin).
 */
export function addAccountRoutes(router: Router, deps: AccountRoutesDeps): void {
  const { users, accountSessions, mfa, help, clock } = deps;
  const freshnessMs = Math.min(ADMIN_ACTION_FRESHNESS_MS, deps.adminScopeTtlMs);

  async function targetOf(req: Request): Promise<User> {
    const id = String(req.params.id ?? '');
    const target = ACCOUNT_ID.test(id) ? await users.findById(Number(id)) : null;
    if (!target) throw new NotFoundError('There is no such account.');
    return target;
  }

  async function renderAccount(
    req: Request,
    res: Response,
    target: User,
    options: { status?: number; errors?: FieldError[]; refusal?: string; reason?: string } = {},
  ) {
    const actor = currentUserOf(res)!;
    const now = clock.now().getTime();
    const [sessions, lockedSeconds, suspended] = await Promise.all([
      accountSessions.listForUser(target.id),
      mfa.lockedForSeconds(target.id),
      mfa.isCodeEntrySuspended(target.id),
    ]);
    const flash = req.session.flash;
    delete req.session.flash;
    res.status(options.status ?? 200).render('admin/account', {
      title: `Account ${target.username}`,
      target: {
        id: target.id,
        username: target.username,
        maskedPhone: maskPhone(target.phone),
        // An admin's replacement waits for the code at the owner's next login.
        isPhoneUnproven: target.phoneVerifiedAt === null,
        createdAt: target.createdAt,
        lastLoginAt: target.lastLoginAt,
        isAdmin: isAdminUser(target),
        disabledAt: target.disabledAt,
        isSelf: target.id === actor.id,
      },
      codeEntry: suspended
        ? 'Suspended after 100 wrong codes in a row'
        : lockedSeconds !== null
          ? `Paused after too many wrong codes, for ${describeWait(lockedSeconds)}`
          : 'Normal',
      sessions: sessions.map((entry) => ({
        browser: describeUserAgent(entry.userAgent),
        address: maskAddress(entry.ip),
        signedInAt: entry.signedInAt,
        lastSeenAt: entry.lastSeenAt,
      })),
      needsFreshCode: !isAdminVerified(req.session, actor.id, now, freshnessMs),
      freshMinutes: Math.round(freshnessMs / 60_000),
      reasonMaxChars: REASON_MAX_CHARS,
      values: { reason: options.reason ?? '' },
      errors: options.errors ?? [],
      refusal: options.refusal ?? null,
      flash,
    });
  }

  /** The secure area's own verification (ADMIN_SCOPE_TTL_MINUTES); without it, /admin asks for a code. */
  const isInSecureArea = (req: Request, res: Response) =>
    isAdminVerified(req.session, currentUserOf(res)!.id, clock.now().getTime(), deps.adminScopeTtlMs);

  router.get('/admin/accounts/:id', async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    await renderAccount(req, res, await targetOf(req));
  });

  router.post('/admin/accounts/:id', async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    const target = await targetOf(req);
    const actor = currentUserOf(res)!;
    // An admin code from the last few minutes, or a fresh one first: back here after it.
    if (!isAdminVerified(req.session, actor.id, clock.now().getTime(), freshnessMs)) {
      req.session.returnTo = `/admin/accounts/${target.id}`;
      return res.redirect(303, FRESH_CODE_PATH);
    }
    const body = req.body as Record<string, unknown> | undefined;
    const typed = typeof body?.reason === 'string' ? body.reason.slice(0, REASON_MAX_CHARS * 2) : '';
    const form = parseForm(accountActionSchema, req.body);
    if (!form.ok) return renderAccount(req, res, target, { status: 400, errors: form.errors, reason: typed });

    const outcome = await help.perform({
      action: form.data.action,
      actor,
      target,
      reason: form.data.reason,
      ip: req.ip,
      actorSid: req.sessionID,
    });
    if (!outcome.ok) {
      return renderAccount(req, res, target, {
        status: outcome.status,
        refusal: outcome.message,
        reason: typed,
      });
    }
    req.session.flash = { kind: 'info', message: outcome.message };
    res.redirect(303, `/admin/accounts/${target.id}`);
  });

  /**
   * The reset of an account's second factors (issue 12), on a page of its own: what it removes,
   * the reason, and the admin's confirmation that the owner asked (a stranger who took the phone
   * would like nothing better than an account with the phone as its only factor).
   */
  async function renderReset(
    req: Request,
    res: Response,
    target: User,
    options: { status?: number; errors?: FieldError[]; reason?: string; confirmed?: boolean } = {},
  ) {
    const actor = currentUserOf(res)!;
    const isSelf = actor.id === target.id;
    const [factors, browsers] = await Promise.all([
      deps.factors.listForUser(target.id),
      deps.rememberedBrowsers.list(target.id),
    ]);
    res.status(options.status ?? 200).render('admin/reset-factors', {
      title: `Reset the second factors of ${target.username}`,
      target: { id: target.id, username: target.username, maskedPhone: maskPhone(target.phone) },
      apps: factors.filter((factor) => factor.kind === 'totp').length,
      passkeys: factors.filter((factor) => factor.kind === 'passkey').length,
      rememberedBrowsers: browsers.length,
      needsFreshCode: !isAdminVerified(req.session, actor.id, clock.now().getTime(), freshnessMs),
      freshMinutes: Math.round(freshnessMs / 60_000),
      reasonMaxChars: REASON_MAX_CHARS,
      values: { reason: options.reason ?? '', confirm: options.confirmed ? 'yes' : '' },
      errors: options.errors ?? [],
      // One's own account: the page says why not, and offers no form.
      refusal: isSelf ? OWN_FACTORS_RESET_REFUSAL : null,
    });
  }

  router.get('/admin/accounts/:id/reset-factors', async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    await renderReset(req, res, await targetOf(req));
  });

  router.post('/admin/accounts/:id/reset-factors', async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    const target = await targetOf(req);
    const actor = currentUserOf(res)!;
    // Forbidden before anything else is asked for (a fresh code, a reason): it will not happen.
    if (actor.id === target.id) return renderReset(req, res, target, { status: 403 });
    if (!isAdminVerified(req.session, actor.id, clock.now().getTime(), freshnessMs)) {
      req.session.returnTo = `/admin/accounts/${target.id}/reset-factors`;
      return res.redirect(303, FRESH_CODE_PATH);
    }
    const body = req.body as Record<string, unknown> | undefined;
    const typed = typeof body?.reason === 'string' ? body.reason.slice(0, REASON_MAX_CHARS * 2) : '';
    const form = parseForm(resetSecondFactorsSchema, req.body);
    if (!form.ok) {
      return renderReset(req, res, target, {
        status: 400,
        errors: form.errors,
        reason: typed,
        confirmed: body?.confirm === 'yes',
      });
    }
    const request: AccountHelpRequest = {
      action: 'reset_factors',
      actor,
      target,
      reason: form.data.reason,
      ip: req.ip,
      actorSid: req.sessionID,
    };
    const outcome = await help.perform(request);
    req.session.flash = { kind: outcome.ok ? 'info' : 'error', message: outcome.message };
    res.redirect(303, `/admin/accounts/${target.id}`);
  });

  /**
   * The replacement of an account's phone number, for a person who lost the phone and has no other
   * way through the settings step-up: the new number, the reason, and the admin's confirmation that
   * the owner asked (a stranger would like nothing better than the account's codes on their phone).
   */
  type ReplacePhoneValues = { phone: string; country: string; reason: string; confirm: string };
  function renderReplacePhone(
    req: Request,
    res: Response,
    target: User,
    options: { status?: number; errors?: FieldError[]; refusal?: string; values?: ReplacePhoneValues } = {},
  ) {
    const actor = currentUserOf(res)!;
    const isSelf = actor.id === target.id;
    res.status(options.status ?? 200).render('admin/replace-phone', {
      title: `Replace the phone number of ${target.username}`,
      target: { id: target.id, username: target.username, maskedPhone: maskPhone(target.phone) },
      needsFreshCode: !isAdminVerified(req.session, actor.id, clock.now().getTime(), freshnessMs),
      freshMinutes: Math.round(freshnessMs / 60_000),
      reasonMaxChars: REASON_MAX_CHARS,
      countries: COUNTRY_OPTIONS,
      values: options.values ?? { phone: '', country: '', reason: '', confirm: '' },
      errors: options.errors ?? [],
      // One's own account: the page says why not, and offers no form.
      refusal: isSelf ? OWN_PHONE_REPLACEMENT_REFUSAL : (options.refusal ?? null),
      isSelf,
    });
  }

  router.get('/admin/accounts/:id/replace-phone', async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    renderReplacePhone(req, res, await targetOf(req));
  });

  router.post('/admin/accounts/:id/replace-phone', async (req, res) => {
    if (!isInSecureArea(req, res)) return res.redirect(303, '/admin');
    const target = await targetOf(req);
    const actor = currentUserOf(res)!;
    // Forbidden before anything else is asked for (a fresh code, a reason): it will not happen.
    if (actor.id === target.id) return renderReplacePhone(req, res, target, { status: 403 });
    if (!isAdminVerified(req.session, actor.id, clock.now().getTime(), freshnessMs)) {
      req.session.returnTo = `/admin/accounts/${target.id}/replace-phone`;
      return res.redirect(303, FRESH_CODE_PATH);
    }
    const body = req.body as Record<string, unknown> | undefined;
    const echo = (name: string, max: number) =>
      typeof body?.[name] === 'string' ? body[name].slice(0, max) : '';
    const values: ReplacePhoneValues = {
      phone: echo('phone', 64),
      country: echo('country', 8),
      reason: echo('reason', REASON_MAX_CHARS * 2),
      confirm: body?.confirm === 'yes' ? 'yes' : '',
    };
    const form = parseForm(replacePhoneSchema, req.body);
    if (!form.ok) return renderReplacePhone(req, res, target, { status: 400, errors: form.errors, values });
    const phone = parsePhone(form.data.phone, form.data.country);
    if (!phone.ok) {
      return renderReplacePhone(req, res, target, {
        status: 400,
        errors: [{ field: 'phone', message: phone.message }],
        values,
      });
    }
    const outcome = await deps.phoneReplacement.replace({
      actor,
      target,
      phone: phone.e164,
      reason: form.data.reason,
      ip: req.ip,
      clientKey: clientKeyOfRequest(req),
    });
    if (!outcome.ok) {
      return renderReplacePhone(req, res, target, {
        status: outcome.status,
        ...(outcome.field
          ? { errors: [{ field: outcome.field, message: outcome.message }] }
          : { refusal: outcome.message }),
        values,
      });
    }
    req.session.flash = { kind: 'info', message: outcome.message };
    res.redirect(303, `/admin/accounts/${target.id}`);
  });
}
