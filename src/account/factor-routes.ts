import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../audit/log.js';
import { currentUserOf } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import type { AdminStepUpFactor } from '../factors/config.js';
import {
  FACTOR_KIND_NAMES,
  LAST_ADMIN_FACTOR_MESSAGE,
  defaultChoices,
  isAcceptedBySecureArea,
  kindsToKeep,
  removalRefusal,
} from '../factors/factor-list.js';
import type { FactorStore } from '../factors/store.js';
import type { StageFactors } from '../factors/stage-factors.js';
import { hasDisallowedCharacters, parseForm } from '../http/validate.js';
import type { CodeDelivery } from '../mfa/delivery.js';
import type { Notices } from '../notices/notices.js';
import type { UserStore } from '../users/store.js';
import type { SecurityPage } from './security-page.js';
import { SETTINGS_PATH, requireFreshSettingsCode } from './settings-step-up.js';

/**
 * The factor list's changes on /account/security (issue 12): rename and remove an app or a passkey
 * (each behind a fresh settings code), and choose the default factor (no code: it changes which
 * way the code page opens with, not which ways it accepts, as the default channel does).
 */
export interface FactorRouterDeps {
  page: SecurityPage;
  users: UserStore;
  factors: FactorStore;
  delivery: CodeDelivery;
  notices: Notices;
  audit: AuditLog;
  clock: Clock;
  adminStepUpFactors: readonly AdminStepUpFactor[];
  /** What the admin step-up takes from this account now (a phone code only where a provider delivers it). */
  stageFactors: StageFactors;
  /** A factor removed: the browsers it let skip the second step are forgotten too (remembered browsers). */
  onFactorRemoved?: (userId: number) => Promise<void>;
}

const factorIdSchema = z.coerce
  .number({ error: 'That is not one of your factors.' })
  .int({ error: 'That is not one of your factors.' })
  .positive({ error: 'That is not one of your factors.' })
  .max(2 ** 31 - 1, { error: 'That is not one of your factors.' });

export const renameFactorSchema = z.object({
  label: z
    .string({ error: 'Enter a name.' })
    .transform((value) => value.normalize('NFKC').trim())
    .pipe(
      z
        .string()
        .min(1, { error: 'Enter a name.' })
        .max(64, { error: 'Keep the name to 64 characters or fewer.' })
        .refine((value) => !hasDisallowedCharacters(value), {
          error: 'The name has characters we cannot accept.',
        }),
    ),
});

const defaultFactorSchema = z.object({
  factor: z.enum(['sms', 'voice', 'totp', 'passkey'], { error: 'Choose one of the ways listed.' }),
});

const DEFAULT_NAMES = {
  sms: 'a text message to your phone',
  voice: 'a call to your phone',
  totp: 'your authenticator app',
  passkey: 'a passkey',
};

export function createFactorRouter(deps: FactorRouterDeps): Router {
  const { page, users, factors, audit, clock } = deps;
  const router = Router();
  const freshCode = requireFreshSettingsCode(clock);
  const done = (req: Request, res: Response, message: string) => {
    req.session.flash = { kind: 'info', message };
    res.redirect(303, SETTINGS_PATH);
  };
  const notYours = (req: Request, res: Response) =>
    page.render(req, res, {
      status: 404,
      errors: [{ field: 'factor', message: 'That is not one of your factors (removed meanwhile?).' }],
    });

  router.post(`${SETTINGS_PATH}/factors/:id/rename`, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    const id = factorIdSchema.safeParse(req.params.id);
    if (!id.success) return notYours(req, res);
    const form = parseForm(renameFactorSchema, req.body);
    if (!form.ok) {
      return page.render(req, res, {
        status: 400,
        errors: form.errors.map((error) => ({ ...error, field: `label-${id.data}` })),
      });
    }
    const factor = await factors.findById(user.id, id.data);
    if (!factor || !(await factors.rename(user.id, id.data, form.data.label))) return notYours(req, res);
    await audit.record({
      type: 'factor_renamed',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: `${FACTOR_KIND_NAMES[factor.kind].toLowerCase()}: “${factor.label}” to “${form.data.label}”`,
    });
    done(req, res, `Renamed to “${form.data.label}”.`);
  });

  router.post(`${SETTINGS_PATH}/factors/:id/remove`, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    const id = factorIdSchema.safeParse(req.params.id);
    if (!id.success) return notYours(req, res);
    const all = await factors.listForUser(user.id);
    const factor = all.find((candidate) => candidate.id === id.data);
    if (!factor) return notYours(req, res);
    const adminWays = user.isAdmin ? await deps.stageFactors.options(user, 'admin') : [];
    const adminStep = {
      acceptedKinds: deps.adminStepUpFactors,
      takesPhoneCodes: adminWays.some((way) => way.method === 'phone'),
    };
    const refusal = removalRefusal(user, all, factor, adminStep);
    const refuse = (message: string) =>
      page.render(req, res, { status: 409, errors: [{ field: 'factor', message }] });
    if (refusal) return refuse(refusal);
    // Checked again in the store's transaction: two removals at once (two tabs) must not each
    // leave the other as the admin's last way into the secure area. The store counts by kind (a
    // passkey made without user verification counts there): a factor the secure area does not
    // take is removed without that check, or an admin could never remove one left alone.
    const keep = kindsToKeep(user, adminStep);
    const keepOneOf = keep && isAcceptedBySecureArea(factor, keep) ? keep : undefined;
    if (!(await factors.remove(user.id, factor.id, { keepOneOf }))) {
      if (!(await factors.findById(user.id, factor.id))) return notYours(req, res);
      return refuse(LAST_ADMIN_FACTOR_MESSAGE);
    }
    // The default falls back to the phone when it was the last of its kind.
    if (
      user.defaultFactor === factor.kind &&
      !all.some((other) => other.id !== factor.id && other.kind === factor.kind)
    ) {
      await users.setDefaultFactor(user.id, null);
    }
    await deps.onFactorRemoved?.(user.id);
    await audit.record({
      type: 'factor_removed',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: `${FACTOR_KIND_NAMES[factor.kind].toLowerCase()} “${factor.label}”`,
    });
    await deps.notices.notify({ type: 'factor_removed', user, ip: req.ip });
    done(req, res, `${FACTOR_KIND_NAMES[factor.kind]} “${factor.label}” was removed.`);
  });

  router.post(`${SETTINGS_PATH}/default-factor`, async (req, res) => {
    const user = currentUserOf(res)!;
    const form = parseForm(defaultFactorSchema, req.body);
    if (!form.ok) return page.render(req, res, { status: 400, errors: form.errors });
    const choices = defaultChoices(await factors.listForUser(user.id), deps.delivery.channels());
    const choice = form.data.factor;
    if (!choices.includes(choice)) {
      return page.render(req, res, {
        status: 400,
        errors: [{ field: 'factor', message: 'Choose one of the ways listed.' }],
      });
    }
    await users.setDefaultFactor(user.id, choice);
    // A phone default is the account's channel too, which the code page and the login form show.
    if ((choice === 'sms' || choice === 'voice') && choice !== user.preferredChannel) {
      await users.setPreferredChannel(user.id, choice);
      req.session.channel = choice;
    }
    await audit.record({
      type: 'default_factor_changed',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: choice,
    });
    done(req, res, `From now on you are asked for ${DEFAULT_NAMES[choice]} first.`);
  });

  return router;
}
