import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { SETTINGS_PATH, requireFreshSettingsCode } from '../account/settings-step-up.js';
import type { AuditLog } from '../audit/log.js';
import { currentUserOf } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { jsonForScriptElement } from '../http/script-json.js';
import { hasDisallowedCharacters, parseForm, type FieldError } from '../http/validate.js';
import type { Notices } from '../notices/notices.js';
import type { User } from '../users/store.js';
import {
  MAX_PASSKEYS_PER_ACCOUNT,
  PASSKEY_CHALLENGE_TTL_MS,
  PASSKEY_LABEL_MAX_LENGTH,
  type Passkeys,
} from './passkeys.js';
import type { FactorStore } from './store.js';

/**
 * Adding a passkey on /account/security (issue 12). Guards in order: signed in and no-store (the
 * settings step-up router, mounted before this one), a fresh settings code, the form, then the
 * module's checks. The challenge of each page lives in the session for 5 minutes and is taken out
 * of it before the answer is checked, so an answer is never checked twice against one challenge.
 */
declare module 'express-session' {
  interface SessionData {
    /** The challenge of the "add a passkey" page last shown to this session. */
    passkeyRegistration?: { userId: number; challenge: string; startedAt: number };
  }
}

export const PASSKEYS_PATH = `${SETTINGS_PATH}/passkeys`;
export const NEW_PASSKEY_PATH = `${PASSKEYS_PATH}/new`;

const DEFAULT_LABEL = 'Passkey';

export const newPasskeySchema = z.object({
  label: z
    .string({ error: 'Give the passkey a name.' })
    .refine((value) => !hasDisallowedCharacters(value), {
      error: 'The name has characters we cannot accept.',
    })
    .transform((value) => value.replace(/\s+/g, ' ').trim())
    .pipe(
      z
        .string()
        .min(1, { error: 'Give the passkey a name, so you can tell it from your others.' })
        .max(PASSKEY_LABEL_MAX_LENGTH, {
          error: `Give the passkey a name of at most ${PASSKEY_LABEL_MAX_LENGTH} characters.`,
        }),
    ),
  // The browser's answer: parsed and checked by the passkeys module, whatever was posted.
  credential: z.unknown().optional(),
});

/** "Passkey", or "Passkey 3" beside two others: a name that tells it apart until the person picks one. */
function defaultLabelFor(count: number): string {
  return count === 0 ? DEFAULT_LABEL : `${DEFAULT_LABEL} ${count + 1}`;
}

export function createPasskeyRouter(deps: {
  passkeys: Passkeys;
  factors: FactorStore;
  notices: Notices;
  audit: AuditLog;
  clock: Clock;
}): Router {
  const { passkeys, factors, notices, audit, clock } = deps;
  const router = Router();
  const freshCode = requireFreshSettingsCode(clock);

  const countPasskeys = async (userId: number) =>
    (await factors.listForUser(userId)).filter((factor) => factor.kind === 'passkey').length;

  const refuseFull = (req: Request, res: Response) => {
    req.session.flash = {
      kind: 'error',
      message: `You have ${MAX_PASSKEYS_PER_ACCOUNT} passkeys, the most an account can have. Remove one you no longer use to add another.`,
    };
    res.redirect(303, SETTINGS_PATH);
  };

  /** The page with a new challenge each time it is shown (one kept per session: the latest). */
  async function renderNewPage(
    req: Request,
    res: Response,
    user: User,
    count: number,
    options: { status?: number; errors?: FieldError[]; label?: string } = {},
  ) {
    const registration = await passkeys.registrationOptions(user);
    req.session.passkeyRegistration = {
      userId: user.id,
      challenge: registration.challenge,
      startedAt: clock.now().getTime(),
    };
    res.status(options.status ?? 200).render('account/passkey-new', {
      title: 'Add a passkey',
      optionsJson: jsonForScriptElement(registration),
      label: options.label ?? defaultLabelFor(count),
      labelMaxLength: PASSKEY_LABEL_MAX_LENGTH,
      errors: options.errors ?? [],
    });
  }

  router.get(NEW_PASSKEY_PATH, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    const count = await countPasskeys(user.id);
    if (count >= MAX_PASSKEYS_PER_ACCOUNT) return refuseFull(req, res);
    await renderNewPage(req, res, user, count);
  });

  router.post(PASSKEYS_PATH, freshCode, async (req, res) => {
    const user = currentUserOf(res)!;
    // Taken out first, whatever follows: one challenge, one answer checked against it.
    const pending = req.session.passkeyRegistration;
    delete req.session.passkeyRegistration;
    const count = await countPasskeys(user.id);
    if (count >= MAX_PASSKEYS_PER_ACCOUNT) return refuseFull(req, res);

    const body = (req.body ?? {}) as Record<string, unknown>;
    const typedLabel = typeof body.label === 'string' ? body.label.slice(0, 200) : undefined;
    const form = parseForm(newPasskeySchema, body);
    if (!form.ok) {
      return renderNewPage(req, res, user, count, { status: 400, errors: form.errors, label: typedLabel });
    }
    const label = form.data.label;
    const again = (message: string) =>
      renderNewPage(req, res, user, count, { status: 400, errors: [{ field: 'passkey', message }], label });

    if (typeof form.data.credential !== 'string' || form.data.credential === '') {
      return again(
        'Your browser did not send a passkey. Passkeys need JavaScript and a browser that supports them.',
      );
    }
    const age = pending ? clock.now().getTime() - pending.startedAt : Infinity;
    if (!pending || pending.userId !== user.id || age < 0 || age >= PASSKEY_CHALLENGE_TTL_MS) {
      return again('The passkey request ran out of time. Try again.');
    }
    const outcome = await passkeys.finishRegistration(user, form.data.credential, pending.challenge, label);
    if (!outcome.ok) return again(outcome.message);

    await audit.record({
      type: 'factor_added',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: 'passkey',
    });
    await notices.notify({ type: 'factor_added', user, ip: req.ip, detail: 'A passkey' });
    req.session.flash = {
      kind: 'info',
      message: `Your passkey “${outcome.factor.label}” was added. You can use it instead of a code.`,
    };
    res.redirect(303, SETTINGS_PATH);
  });

  return router;
}
