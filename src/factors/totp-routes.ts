import { Router, type Request, type Response } from 'express';
import { SETTINGS_PATH, requireFreshSettingsCode } from '../account/settings-step-up.js';
import type { AuditLog } from '../audit/log.js';
import { currentUserOf, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { noStore } from '../http/security-headers.js';
import { parseForm, type FieldError } from '../http/validate.js';
import { isSettingsVerified } from '../mfa/scopes.js';
import type { Notices } from '../notices/notices.js';
import type { User } from '../users/store.js';
import type { FactorSecrets } from './secrets.js';
import type { FactorStore } from './store.js';
import { DEFAULT_APP_LABEL, TOTP_DIGITS, drawEnrolment, findAuthenticatorApp, type Totp } from './totp.js';
import { appEnrolmentSchema } from './totp-schemas.js';

declare module 'express-session' {
  interface SessionData {
    /**
     * An authenticator app being set up: the secret its QR code shows, sealed (a copy of the session
     * store opens nothing), until a code from the app confirms it or APP_ENROLMENT_TTL_MS passes.
     */
    pendingAppEnrolment?: { userId: number; sealedSecret: string; startedAt: number };
  }
}

export const APP_ENROLMENT_PATH = `${SETTINGS_PATH}/app`;
/** How long a QR code shown stays the one to scan; after that the page shows a new secret. */
export const APP_ENROLMENT_TTL_MS = 10 * 60_000;

const enrolmentSealContext = (userId: number) => `totp-enrol:${userId}`;

/** "ABCD EFGH …": the secret in groups of four, easier to type into an app by hand. */
function groupForTyping(secret: string): string {
  return secret.match(/.{1,4}/g)?.join(' ') ?? secret;
}

/**
 * /account/security/app: setting up an authenticator app (issue 12). Guards in order: signed in and
 * no-store (the secret is on the page), a fresh settings code (a stolen session cookie alone cannot
 * add the thief's app), then one app per account, then the code from the app itself.
 */
export function createAppEnrolmentRouter(deps: {
  totp: Totp;
  factors: FactorStore;
  secrets: FactorSecrets;
  notices: Notices;
  audit: AuditLog;
  clock: Clock;
  /** The name apps list the account under (the site's name). */
  issuer: string;
}): Router {
  const { totp, factors, secrets, clock } = deps;
  const router = Router();

  router.use(APP_ENROLMENT_PATH, noStore, requireSignedIn);

  /** The secret of this account's enrolment under way, if it is still young enough. */
  function pendingSecret(req: Request, userId: number): string | null {
    const pending = req.session.pendingAppEnrolment;
    if (!pending || pending.userId !== userId) return null;
    if (clock.now().getTime() - pending.startedAt >= APP_ENROLMENT_TTL_MS) return null;
    try {
      return secrets.open(pending.sealedSecret, enrolmentSealContext(userId)).toString('utf8');
    } catch {
      // Sealed under a key since replaced: start again.
      return null;
    }
  }

  async function startEnrolment(req: Request, user: User): Promise<string> {
    const { secret } = await totp.beginEnrolment(user);
    req.session.pendingAppEnrolment = {
      userId: user.id,
      sealedSecret: secrets.seal(Buffer.from(secret, 'utf8'), enrolmentSealContext(user.id)),
      startedAt: clock.now().getTime(),
    };
    return secret;
  }

  async function renderPage(
    req: Request,
    res: Response,
    options: { status?: number; secret?: string; errors?: FieldError[]; values?: Record<string, string> },
  ) {
    const user = currentUserOf(res)!;
    const flash = req.session.flash;
    delete req.session.flash;
    const drawn = options.secret
      ? await drawEnrolment({ issuer: deps.issuer, username: user.username, secret: options.secret })
      : null;
    res.status(options.status ?? 200).render('account/authenticator-app', {
      title: 'Set up an authenticator app',
      flash,
      confirmed: drawn !== null,
      returnTo: APP_ENROLMENT_PATH,
      qrSvg: drawn?.qrSvg ?? '',
      uri: drawn?.uri ?? '',
      groupedSecret: options.secret ? groupForTyping(options.secret) : '',
      issuer: deps.issuer,
      username: user.username,
      codeDigits: TOTP_DIGITS,
      values: { label: DEFAULT_APP_LABEL, ...options.values },
      errors: options.errors ?? [],
    });
  }

  function backToSettings(req: Request, res: Response, kind: 'info' | 'error', message: string) {
    req.session.flash = { kind, message };
    res.redirect(303, SETTINGS_PATH);
  }

  router.get(APP_ENROLMENT_PATH, async (req, res) => {
    const user = currentUserOf(res)!;
    // Without a fresh settings code, the page offers one (and comes back here): no secret yet.
    if (!isSettingsVerified(req.session, user.id, clock.now().getTime())) return renderPage(req, res, {});
    if (await findAuthenticatorApp(factors, user.id)) {
      delete req.session.pendingAppEnrolment;
      return backToSettings(req, res, 'error', 'Your account already has an authenticator app.');
    }
    // A reload shows the secret already shown (the app may have scanned it), until it gets old.
    const secret = pendingSecret(req, user.id) ?? (await startEnrolment(req, user));
    return renderPage(req, res, { secret });
  });

  router.post(APP_ENROLMENT_PATH, requireFreshSettingsCode(clock), async (req, res) => {
    const user = currentUserOf(res)!;
    const secret = pendingSecret(req, user.id);
    if (secret === null) {
      req.session.flash = {
        kind: 'error',
        message: 'That set-up has expired. Scan this new QR code, then enter the code your app shows.',
      };
      return res.redirect(303, APP_ENROLMENT_PATH);
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const values = { label: typeof body.label === 'string' ? body.label.slice(0, 100) : DEFAULT_APP_LABEL };
    const form = parseForm(appEnrolmentSchema, req.body);
    if (!form.ok) return renderPage(req, res, { status: 400, secret, errors: form.errors, values });

    const outcome = await totp.confirmEnrolment(user, secret, form.data.code, form.data.label);
    if (!outcome.ok) {
      if (outcome.reason === 'already_has_app') {
        delete req.session.pendingAppEnrolment;
        return backToSettings(req, res, 'error', 'Your account already has an authenticator app.');
      }
      return renderPage(req, res, {
        status: 400,
        secret,
        values,
        errors: [
          {
            field: 'code',
            message: `That code is not the one your app shows now. Check the app lists ${deps.issuer} (${user.username}), and enter its newest code.`,
          },
        ],
      });
    }
    delete req.session.pendingAppEnrolment;
    await deps.audit.record({
      type: 'factor_added',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: `authenticator app “${outcome.factor.label}”`,
    });
    await deps.notices.notify({ type: 'factor_added', user, ip: req.ip, detail: 'An authenticator app' });
    backToSettings(req, res, 'info', `Your authenticator app “${outcome.factor.label}” was added.`);
  });

  return router;
}
