import { Router, type Request, type Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import { currentUserOf } from '../auth/guards.js';
import type { KnownDevices } from '../auth/known-device.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { Clock } from '../clock.js';
import { describeWait } from '../errors.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import { noStore } from '../http/security-headers.js';
import { logOutThisBrowser } from '../http/session.js';
import type { Logger } from '../logger.js';
import { createHash } from 'node:crypto';
import { parseForm, type FieldError } from '../http/validate.js';
import { maskPhone, parsePhone, phoneCountryOf } from '../users/phone.js';
import type { User, UserStore } from '../users/store.js';
import { describeSendRefusal, sendRefusalStatus, type CodeDelivery } from './delivery.js';
import { describeChannel, type Channel, type Scope } from './provider.js';
import {
  PENDING_LOGIN_TIMEOUT_MS,
  readPendingAdmin,
  readPendingEnrolment,
  readPendingLogin,
  readPendingPhoneChange,
  readPendingReset,
  readPendingSettings,
} from './scopes.js';
import { codeSchema, resendSchema } from './schemas.js';
import { needsEnrolment, type Enrolment } from '../auth/enrolment.js';
import { COUNTRY_OPTIONS } from '../auth/countries.js';
import { correctNumberSchema } from '../auth/schemas.js';
import type { RegistrationGuard } from '../fraud/registration-guard.js';
import {
  recoveryFailuresKey,
  resetAppFailuresKey,
  type Challenge,
  type FactorGuessOutcome,
  type MfaService,
} from './service.js';
import type { CompletedFactor, VerificationCompleter } from '../factors/complete-verification.js';
import type { FactorCheckers, StageFactors, StageKind, StageOption } from '../factors/stage-factors.js';
import { PASSKEY_CHALLENGE_TTL_MS } from '../factors/passkeys.js';
import { RECOVERY_FAILURES_PER_HOUR } from '../factors/recovery-codes.js';
import { RESET_APP_FAILURES_PER_DAY } from '../factors/totp.js';
import type { Notices } from '../notices/notices.js';
import { TOTP_DIGITS, chooseMethodSchema, factorFormSchemas } from '../factors/schemas.js';

export interface MfaRouterDeps {
  users: UserStore;
  mfa: MfaService;
  delivery: CodeDelivery;
  throttle: LoginThrottle;
  knownDevices: KnownDevices;
  audit: AuditLog;
  clock: Clock;
  codeDigits: number;
  channelCookie: { name: string; secure: boolean };
  /** A new account's proof of its number: the `enrol` stage of this page. */
  enrolment: Enrolment;
  /** Limits on numbers a sign-up may use (the toll-fraud guard), for a number corrected here. */
  registrations: RegistrationGuard;
  /** Finishes a stage, whichever factor did it (src/factors/complete-verification.ts). */
  completer: VerificationCompleter;
  /** Which factors each stage accepts, and which the account has (src/factors/stage-factors.ts). */
  stageFactors: StageFactors;
  /** The factors the site checks itself: an authenticator app, recovery codes, passkeys. */
  checkers: FactorCheckers;
  /** Whether the login's code page offers "Remember this browser" (wired when remembered browsers are). */
  offerRememberBrowser: boolean;
  /** The owner hears of a pause of their app's codes at password resets. */
  notices: Pick<Notices, 'notify'>;
  isProduction: boolean;
  logger: Logger;
}

/** An opaque, stable key of this session for the step-up's own wrong-code count (never the id itself). */
function stepUpSessionKey(req: Request): string {
  return createHash('sha256').update(req.sessionID).digest('base64url').slice(0, 22);
}

/**
 * What the code page is for (StageKind, src/factors/stage-factors.ts). Each kind has its own scope
 * and its own session slot, and a code counts only for the kind it was sent for:
 * - login: the second step of a login; signup: a new account proving its number (`enrol`);
 * - admin: the secure area's step-up; settings: confirming it is you before a change on
 *   /account/security (a code to the account's own number);
 * - phone_change: the new number given there, proven by a code sent to it (`enrol`);
 * - reset: after a password reset link, a code to the account's phone.
 * Beside the phone, a stage may accept other factors (an app, a passkey, a recovery code): which,
 * stage-factors.ts says; the session's `factorMethod` says which one this page shows.
 */

const SCOPE_OF: Record<StageKind, Scope> = {
  login: 'login',
  signup: 'enrol',
  admin: 'admin',
  settings: 'settings',
  phone_change: 'enrol',
  reset: 'reset',
};

interface Stage {
  kind: StageKind;
  scope: Scope;
  /** The account; for phone_change, with the number being proven in place of its own. */
  user: User;
  challenge: Challenge | null;
  /**
   * Whether the account's code entry is suspended, when this request's check of a code already
   * read it (VerifyOutcome): the page then shows what the check decided, without reading it again.
   */
  codeEntrySuspended?: boolean;
}

export function createMfaRouter(deps: MfaRouterDeps): Router {
  const { users, mfa, delivery, throttle, audit, clock } = deps;
  const router = Router();
  const formSchema = codeSchema(deps.codeDigits);

  /** A stage whose challenge is the session's, in its scope, and sent to `phone` (no other number's code counts). */
  async function stageFor(req: Request, kind: StageKind, user: User, phone = user.phone): Promise<Stage> {
    const scope = SCOPE_OF[kind];
    const challenge = await delivery.currentChallenge(req, { userId: user.id, scope });
    return {
      kind,
      scope,
      user: { ...user, phone },
      challenge: challenge?.phone === phone ? challenge : null,
    };
  }

  /** Which code this session is waiting for, with the challenge the session holds for it (if any). */
  async function currentStage(req: Request, res: Response): Promise<Stage | null> {
    const now = clock.now().getTime();
    const signedInUser = currentUserOf(res);
    if (signedInUser) {
      const phoneChange = readPendingPhoneChange(req.session, now);
      if (phoneChange?.userId === signedInUser.id) {
        return stageFor(req, 'phone_change', signedInUser, phoneChange.phone);
      }
      if (readPendingSettings(req.session, now)?.userId === signedInUser.id) {
        return stageFor(req, 'settings', signedInUser);
      }
      const challenge = await delivery.currentChallenge(req, { userId: signedInUser.id, scope: 'admin' });
      // Asked for by /admin/step-up: with a challenge when a code was sent, without one when the
      // admin's factor sends nothing (a passkey, an app).
      const asked = readPendingAdmin(req.session, now)?.userId === signedInUser.id;
      return challenge || asked ? { kind: 'admin', scope: 'admin', user: signedInUser, challenge } : null;
    }
    const enrolling = readPendingEnrolment(req.session, now);
    if (enrolling) {
      const user = await users.findById(enrolling.userId);
      // Proven meanwhile (in another tab), or disabled by an admin: this stage is over.
      if (!user || !needsEnrolment(user) || user.disabledAt !== null) return null;
      // A code to a number since corrected is no code for this one.
      return stageFor(req, 'signup', user);
    }
    const resetting = readPendingReset(req.session, now);
    if (resetting) {
      const user = await users.findById(resetting.userId);
      // Disabled by an admin since the link was used: no code, and so no new password.
      return user && !needsEnrolment(user) && user.disabledAt === null ? stageFor(req, 'reset', user) : null;
    }
    const pending = readPendingLogin(req.session, now);
    const user = pending ? await users.findById(pending.userId) : null;
    // An account that has not proven its number never gets this far (POST /login enrols it);
    // checked here too, so no other path to a login code can skip that. Nor does a password
    // given before an admin disabled the account lead to a code after.
    if (!user || needsEnrolment(user) || user.disabledAt !== null) return null;
    return {
      kind: 'login',
      scope: 'login',
      user,
      challenge: await delivery.currentChallenge(req, { userId: user.id, scope: 'login' }),
    };
  }

  /** The factor this page shows: the session's choice for this stage, else the phone. */
  function methodOf(req: Request, stage: Stage): 'phone' | 'totp' | 'passkey' | 'recovery' {
    const chosen = req.session.factorMethod;
    return chosen && chosen.kind === stage.kind ? chosen.method : 'phone';
  }

  /**
   * The step-ups that may refuse the phone (or a channel of it): the secure area, and an admin's
   * settings (stage-factors.ts). Elsewhere the phone is always one of the ways.
   */
  function isStepUpOfChosenWays(stage: Stage): boolean {
    return stage.kind === 'admin' || stage.kind === 'settings';
  }

  function phoneRefusedMessage(stage: Stage): string {
    return stage.kind === 'admin'
      ? 'The secure area does not take codes sent that way. Choose one of the ways listed.'
      : 'Changes to this admin account do not take codes sent that way. Choose one of the ways listed.';
  }

  function fieldOfMethod(method: string): string {
    return method === 'recovery' ? 'recovery_code' : method === 'passkey' ? 'credential' : 'code';
  }

  /**
   * Whether a login's code page offers "Remember this browser": never to an admin, who always needs
   * the second step (a remembered browser would let the password alone sign an admin in).
   */
  function offersRemember(stage: Stage): boolean {
    return deps.offerRememberBrowser && stage.kind === 'login' && !stage.user.isAdmin;
  }

  /** "Remember this browser" ticked on a login's code page (only offered there). */
  function wantsRemembered(req: Request, stage: Stage): boolean {
    const body = req.body as Record<string, unknown> | undefined;
    return offersRemember(stage) && body?.remember === '1';
  }

  /**
   * A new WebAuthn challenge for this stage's passkey form, kept in the session for this stage and
   * account (used once: the POST takes it out before checking the answer).
   */
  async function passkeyOptionsFor(req: Request, stage: Stage) {
    const passkeys = deps.checkers.passkeys;
    if (!passkeys) return null;
    const options = await passkeys.authenticationOptions(stage.user, {
      // The secure area asks the authenticator to check its user (PIN, biometrics), not just a touch.
      userVerification: (await deps.stageFactors.passkeyNeedsUserVerification(stage.user, stage.kind))
        ? 'required'
        : 'preferred',
    });
    req.session.passkeyChallenge = {
      challenge: options.challenge,
      kind: stage.kind,
      userId: stage.user.id,
      issuedAt: clock.now().getTime(),
    };
    return options;
  }

  /** What a wrong guess at an app's or a recovery code says; null when the outcome is not a plain wrong guess. */
  const WRONG_FACTOR_MESSAGES = {
    totp: {
      wrong:
        'That code is not right. Check that your phone’s clock is set automatically, and enter the code your app shows now.',
      replayed: 'That code was used already. Wait for your app to show the next one.',
      no_app: 'This account has no authenticator app. Try another way.',
      unusable:
        'Your authenticator app cannot be checked here any more. Try another way, and add the app again afterwards.',
    },
    recovery: 'That recovery code is not right, or it was used already. Each code works once.',
  };

  /**
   * An authenticator app, a recovery code or a passkey, checked by the site itself: only a factor
   * this stage accepts and the account has; app and recovery codes under the same limits as a
   * phone code (checkFactorGuess), recovery codes with a bucket of their own as well.
   */
  async function verifyOtherFactor(
    req: Request,
    res: Response,
    stage: Stage,
    method: 'totp' | 'recovery' | 'passkey',
  ) {
    // The form names its factor; the page may have been showing another one in another tab.
    if (!(await deps.stageFactors.accepts(stage.user, stage.kind, { method }))) {
      return renderVerify(req, res, stage, 400, [
        {
          field: 'code',
          message: 'That way of confirming cannot be used here. Choose one of the ways listed.',
        },
      ]);
    }
    req.session.factorMethod = { kind: stage.kind, method };
    if (method === 'passkey') return verifyPasskey(req, res, stage);
    const sessionCountedStage = stage.kind !== 'login' && stage.kind !== 'signup';
    const guess = {
      userId: stage.user.id,
      username: stage.user.username,
      ip: req.ip,
      ...(sessionCountedStage ? { stepUpSession: stepUpSessionKey(req) } : {}),
    };
    let outcome: FactorGuessOutcome;
    let completed: CompletedFactor;
    let wrongMessage: string;
    if (method === 'totp') {
      const form = parseForm(factorFormSchemas.totp, req.body);
      if (!form.ok) return renderVerify(req, res, stage, 400, form.errors);
      const totp = deps.checkers.totp!;
      let reason: 'wrong' | 'replayed' | 'no_app' | 'unusable' = 'wrong';
      let label = 'authenticator app';
      const user = stage.user;
      outcome = await mfa.checkFactorGuess({
        ...guess,
        describedAs: 'authenticator app code',
        // At a reset the session's own count ends only that reset, and a mailbox holder can start
        // another with each new link (5 a day): wrong app codes at resets also count per account,
        // across sessions, so the app's million codes are not there to be guessed at day after day.
        ...(stage.kind === 'reset'
          ? {
              ownLimit: {
                key: resetAppFailuresKey(user.id),
                max: RESET_APP_FAILURES_PER_DAY,
                windowMs: 24 * 3_600_000,
                onPaused: () => deps.notices.notify({ type: 'reset_app_codes_paused', user, ip: req.ip }),
              },
            }
          : {}),
        compare: async () => {
          const checked = await totp.check(stage.user.id, form.data.code);
          if (checked.ok) label = `authenticator app “${checked.factor.label}”`;
          else reason = checked.reason;
          return checked.ok;
        },
      });
      completed = { method: 'totp', describedAs: label };
      wrongMessage = WRONG_FACTOR_MESSAGES.totp[reason];
    } else {
      const form = parseForm(factorFormSchemas.recovery, req.body);
      if (!form.ok) return renderVerify(req, res, stage, 400, form.errors);
      const recovery = deps.checkers.recoveryCodes!;
      outcome = await mfa.checkFactorGuess({
        ...guess,
        describedAs: 'recovery code',
        ownLimit: {
          // Per account at login; per session at a reset, whose mailbox holder must not be able to
          // block the owner's recovery codes, the way out of a lost phone.
          key: `${recoveryFailuresKey(stage.user.id)}${sessionCountedStage ? `:${stepUpSessionKey(req)}` : ''}`,
          max: RECOVERY_FAILURES_PER_HOUR,
          windowMs: 3_600_000,
        },
        compare: async () => (await recovery.use(stage.user.id, form.data.recovery_code)).ok,
      });
      completed = { method: 'recovery', describedAs: 'recovery code' };
      wrongMessage = WRONG_FACTOR_MESSAGES.recovery;
    }
    stage.codeEntrySuspended = !outcome.ok && outcome.reason === 'suspended';
    if (!outcome.ok) {
      switch (outcome.reason) {
        case 'wrong':
          return renderVerify(req, res, stage, 400, [
            { field: fieldOfMethod(method), message: wrongMessage },
          ]);
        case 'suspended':
          return renderVerify(req, res, stage, 403);
        case 'locked':
          return answerLocked(req, res, stage, outcome.lockedBy, outcome.retryAfterSeconds);
      }
    }
    return deps.completer.complete(req, res, stage, completed, {
      rememberBrowser: wantsRemembered(req, stage),
    });
  }

  async function verifyPasskey(req: Request, res: Response, stage: Stage) {
    const form = parseForm(factorFormSchemas.passkey, req.body);
    // The challenge is used once, whatever the answer: taken out of the session before it is checked.
    const issued = req.session.passkeyChallenge;
    delete req.session.passkeyChallenge;
    if (!form.ok) return renderVerify(req, res, stage, 400, form.errors);
    const fresh =
      issued !== undefined &&
      issued.kind === stage.kind &&
      issued.userId === stage.user.id &&
      clock.now().getTime() - issued.issuedAt < PASSKEY_CHALLENGE_TTL_MS;
    if (!fresh) {
      return renderVerify(req, res, stage, 400, [
        { field: 'credential', message: 'This page was open too long. Use your passkey again.' },
      ]);
    }
    let response: unknown;
    try {
      response = JSON.parse(form.data.credential);
    } catch {
      response = null;
    }
    // A passkey's answer cannot be guessed, so it is no wrong code: the account's pause and
    // suspension (which a stranger with the password can bring about) neither count nor stop it.
    // A step-up's refused answers still count against its session; each answer at all needs a
    // challenge of its own, issued by a page of this stage.
    const sessionCountedStage = stage.kind !== 'login' && stage.kind !== 'signup';
    const requireUserVerification = await deps.stageFactors.passkeyNeedsUserVerification(
      stage.user,
      stage.kind,
    );
    let refusal = { reason: 'invalid', message: 'That passkey could not be checked. Try again.' };
    let label = '';
    const outcome = await mfa.checkUnguessableFactor({
      userId: stage.user.id,
      username: stage.user.username,
      ip: req.ip,
      ...(sessionCountedStage ? { stepUpSession: stepUpSessionKey(req) } : {}),
      compare: async () => {
        const checked = await deps.checkers.passkeys!.finishAuthentication(
          stage.user,
          response,
          issued.challenge,
          { requireUserVerification },
        );
        if (checked.ok) label = checked.factor.label;
        else refusal = { reason: checked.reason, message: checked.message };
        return checked.ok;
      },
    });
    if (!outcome.ok) {
      if (outcome.reason === 'locked') {
        return answerLocked(req, res, stage, outcome.lockedBy, outcome.retryAfterSeconds);
      }
      await audit.record({
        type: 'passkey_refused',
        userId: stage.user.id,
        username: stage.user.username,
        ip: req.ip,
        detail: `${stage.kind}: ${refusal.reason}`,
      });
      return renderVerify(req, res, stage, 400, [{ field: 'credential', message: refusal.message }]);
    }
    return deps.completer.complete(
      req,
      res,
      stage,
      { method: 'passkey', describedAs: `passkey “${label}”` },
      { rememberBrowser: wantsRemembered(req, stage) },
    );
  }

  /** What "Try another way" lists: every way this stage accepts that the account has, but the one shown. */
  function otherWays(options: StageOption[], method: string, phoneChannel: Channel) {
    return options
      .filter((option) => (option.method === 'phone' ? method !== 'phone' : option.method !== method))
      .map((option) => ({
        ...option,
        label: WAY_LABELS[option.method === 'phone' ? option.channel : option.method],
        // The phone's channel shown first among the phone's ways.
        current: option.method === 'phone' && option.channel === phoneChannel,
      }));
  }

  function leaveCodePage(req: Request, res: Response) {
    if (currentUserOf(res)) {
      // A settings confirmation or a new number that waited too long: back where it started.
      delete req.session.pendingAdmin;
      if (req.session.pendingSettings || req.session.pendingPhoneChange) {
        delete req.session.pendingSettings;
        delete req.session.pendingPhoneChange;
        delete req.session.challengeId;
        req.session.flash = { kind: 'error', message: 'That code page timed out. Start again.' };
        return res.redirect(303, '/account/security');
      }
      return res.redirect(303, '/account');
    }
    if (req.session.pendingReset) {
      delete req.session.pendingReset;
      delete req.session.challengeId;
      req.session.flash = {
        kind: 'error',
        message: 'Your reset took too long. Ask for a new link: each link works once.',
      };
      return res.redirect(303, '/forgot');
    }
    if (req.session.pendingLogin || req.session.pendingEnrolment) {
      const enrolling = req.session.pendingEnrolment !== undefined;
      delete req.session.pendingLogin;
      delete req.session.pendingEnrolment;
      delete req.session.challengeId;
      req.session.flash = {
        kind: 'error',
        message: enrolling
          ? 'Your sign-up code page timed out. Log in with your username and password to get a new code.'
          : 'Your login took too long. Please log in again.',
      };
    }
    return res.redirect(303, '/login');
  }

  /** When this half-finished step times out (null for the admin step-up, which lives with the session). */
  function stageEndsAt(req: Request, kind: StageKind): number | null {
    const session = req.session;
    const started: Record<StageKind, number | undefined> = {
      login: session.pendingLogin?.passwordVerifiedAt,
      signup: session.pendingEnrolment?.startedAt,
      reset: session.pendingReset?.startedAt,
      settings: session.pendingSettings?.startedAt,
      phone_change: session.pendingPhoneChange?.startedAt,
      admin: undefined,
    };
    const at = started[kind];
    return at === undefined ? null : at + PENDING_LOGIN_TIMEOUT_MS;
  }

  async function renderVerify(
    req: Request,
    res: Response,
    stage: Stage,
    status = 200,
    errors: FieldError[] = [],
    /** What the number-correction form (sign-up only) shows again. */
    values: Record<string, string> = {},
  ) {
    const lockedSeconds = await mfa.lockedForSeconds(stage.user.id);
    const suspended = stage.codeEntrySuspended ?? (await mfa.isCodeEntrySuspended(stage.user.id));
    const challenge = stage.challenge;
    // A wait (code entry paused, a send refused) that outlasts this half-finished step: say so, and
    // offer a start again that works then, rather than a page that will have timed out.
    const now = clock.now().getTime();
    const waitSeconds = Math.max(lockedSeconds ?? 0, Number(res.get('Retry-After') ?? 0) || 0);
    const pageEndsAt = stageEndsAt(req, stage.kind);
    const startAgainAfter =
      waitSeconds > 0 && pageEndsAt !== null && now + waitSeconds * 1000 > pageEndsAt
        ? new Date(now + waitSeconds * 1000)
        : null;
    const channel: Channel = challenge?.channel ?? req.session.channel ?? stage.user.preferredChannel;
    // A suspended account's page says so itself; a flash would only repeat it.
    const flash = suspended ? undefined : req.session.flash;
    delete req.session.flash;
    const ways = await deps.stageFactors.options(stage.user, stage.kind);
    let method = methodOf(req, stage);
    // A factor removed meanwhile (in another tab) or not accepted here: the phone, as before.
    if (method !== 'phone' && !ways.some((way) => way.method === method)) {
      delete req.session.factorMethod;
      method = 'phone';
    }
    // The phone where the stage takes none (a secure area of passkeys and apps): the stage's own opening.
    if (method === 'phone' && !ways.some((way) => way.method === 'phone')) {
      const opening = ways[0];
      if (opening && opening.method !== 'phone') {
        req.session.factorMethod = { kind: stage.kind, method: opening.method };
        method = opening.method;
      }
    }
    // A passkey works while code entry is paused or suspended: its answer cannot be guessed.
    const passkeyOptions = method === 'passkey' ? await passkeyOptionsFor(req, stage) : null;
    // The admin step-up may refuse a channel (ADMIN_STEP_UP_FACTORS): only the ones it takes are offered.
    const phoneChannels = ways.flatMap((way) => (way.method === 'phone' ? [way.channel] : []));
    res.status(status).render('mfa/verify', {
      title: VERIFY_TITLES[stage.kind],
      codeKind: stage.kind,
      method,
      // While suspended, the only other way left is a passkey.
      otherWays: otherWays(
        suspended ? ways.filter((way) => way.method === 'passkey') : ways,
        method,
        channel,
      ),
      passkeyOptions,
      totpDigits: TOTP_DIGITS,
      offerRemember: offersRemember(stage),
      startAgainAfter,
      // Only the sign-up's "Wrong number?" form shows it (parsing a number is not free).
      country: stage.kind === 'signup' ? (values.country ?? phoneCountryOf(stage.user.phone)) : '',
      // An account that logged in before proves a number an admin put in its place: no other.
      movedByAdmin: stage.kind === 'signup' && stage.user.lastLoginAt !== null,
      countries: COUNTRY_OPTIONS,
      values,
      maskedPhone: maskPhone(stage.user.phone),
      channel,
      channelLabel: describeChannel(channel),
      otherChannels: phoneChannels.filter((other) => other !== channel),
      unsupportedChannel: mfa.channels().includes(channel) ? null : describeChannel(channel),
      challenge: challenge && {
        expired: mfa.isExpired(challenge),
        expiresAt: new Date(challenge.expiresAt),
        attemptsLeft: mfa.attemptsLeft(challenge),
        usedUp: mfa.attemptsLeft(challenge) === 0,
      },
      cooldownSeconds: challenge ? mfa.cooldownRemainingSeconds(challenge) : 0,
      lockedWait: lockedSeconds === null ? null : describeWait(lockedSeconds),
      suspended,
      codeDigits: deps.codeDigits,
      flash,
      errors,
    });
  }

  router.use('/verify', noStore);

  router.get('/verify', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    await renderVerify(req, res, stage);
  });

  /**
   * Too many wrong codes (by phone, app or recovery code): a reset ends, a step-up's session ends
   * (whoever holds it does not hold the factor), otherwise the page says how long to wait.
   */
  async function answerLocked(
    req: Request,
    res: Response,
    stage: Stage,
    lockedBy: 'account' | 'session' | 'factor',
    retryAfterSeconds: number,
  ) {
    if (lockedBy === 'session' && stage.kind === 'reset') {
      // The reset ends here; its link is spent, and a new one starts afresh.
      delete req.session.pendingReset;
      delete req.session.challengeId;
      await audit.record({
        type: 'code_lockout',
        userId: stage.user.id,
        username: stage.user.username,
        ip: req.ip,
        detail: 'reset abandoned after too many wrong codes',
      });
      req.session.flash = {
        kind: 'error',
        message: 'Too many wrong codes. This reset has ended: ask for a new link to try again.',
      };
      return res.redirect(303, '/forgot');
    }
    if (lockedBy === 'session') {
      // Too many wrong step-up codes from one signed-in session: whoever holds it does not hold
      // the phone (or the app). The session ends; its owner logs in again with password and code.
      await audit.record({
        type: 'logout',
        userId: stage.user.id,
        username: stage.user.username,
        ip: req.ip,
        detail: 'session ended after too many wrong step-up codes',
      });
      await logOutThisBrowser(req, res, { isProduction: deps.isProduction, logger: deps.logger });
      return res.redirect(303, '/login?stepUpFailed');
    }
    res.set('Retry-After', String(retryAfterSeconds));
    const wait = describeWait(retryAfterSeconds);
    const method = methodOf(req, stage);
    const message =
      lockedBy !== 'factor'
        ? `Too many wrong codes. For your safety, wait ${wait} before trying again.`
        : method === 'totp'
          ? `Too many wrong authenticator app codes at password resets. For your safety, wait ${wait} before trying another, or try another way.`
          : `Too many wrong recovery codes. For your safety, wait ${wait} before trying another, or try another way.`;
    return renderVerify(req, res, stage, 429, [{ field: fieldOfMethod(method), message }]);
  }

  router.post('/verify', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    const submitted = (req.body as Record<string, unknown> | undefined)?.method;
    if (submitted === 'totp' || submitted === 'recovery' || submitted === 'passkey') {
      return verifyOtherFactor(req, res, stage, submitted);
    }
    const form = parseForm(formSchema, req.body);
    if (!form.ok) return renderVerify(req, res, stage, 400, form.errors);

    const challenge = stage.challenge;
    if (!challenge) {
      return renderVerify(req, res, stage, 400, [
        { field: 'code', message: 'No code has been sent yet. Send one first.' },
      ]);
    }
    // An admin code sent before ADMIN_STEP_UP_FACTORS stopped taking its channel no longer opens
    // the area; nor does a settings code sent before the admin had a factor the area takes.
    if (
      isStepUpOfChosenWays(stage) &&
      !(await deps.stageFactors.accepts(stage.user, stage.kind, {
        method: 'phone',
        channel: challenge.channel,
      }))
    ) {
      return renderVerify(req, res, stage, 400, [{ field: 'code', message: phoneRefusedMessage(stage) }]);
    }

    // A step-up from a signed-in session, or a reset begun from a link: their wrong codes count
    // against this session, never the owner's logins (whoever holds a stolen cookie or a mailbox
    // must not be able to pause or suspend them).
    const sessionCountedStage = stage.kind !== 'login' && stage.kind !== 'signup';
    const result = await mfa.verifyCode({
      challenge,
      code: form.data.code,
      username: stage.user.username,
      ip: req.ip,
      // A step-up's wrong codes count against this session, never the owner's logins.
      ...(sessionCountedStage ? { stepUpSession: stepUpSessionKey(req) } : {}),
    });
    stage.challenge = result.challenge;
    stage.codeEntrySuspended = !result.ok && result.reason === 'suspended';
    if (!result.ok) {
      switch (result.reason) {
        case 'wrong_code':
          return renderVerify(req, res, stage, 400, [
            {
              field: 'code',
              message: `That code is not right. ${result.attemptsLeft} ${result.attemptsLeft === 1 ? 'attempt' : 'attempts'} left.`,
            },
          ]);
        case 'expired':
          return renderVerify(req, res, stage, 400, [
            { field: 'code', message: 'This code has expired. Send a new one.' },
          ]);
        case 'used_up':
          return renderVerify(req, res, stage, 400, [
            {
              field: 'code',
              message:
                result.challenge.closeReason === 'accepted'
                  ? 'This code has already been used. Send a new one.'
                  : 'Too many wrong attempts for this code. Send a new one.',
            },
          ]);
        case 'replaced':
          return renderVerify(req, res, stage, 400, [
            {
              field: 'code',
              message: 'A newer code was sent since this one, so this one no longer works. Send a new one.',
            },
          ]);
        case 'suspended':
          return renderVerify(req, res, stage, 403);
        case 'locked':
          return answerLocked(req, res, stage, result.lockedBy ?? 'account', result.retryAfterSeconds);
      }
    }

    const channel = result.challenge.channel;
    return deps.completer.complete(
      req,
      res,
      stage,
      { method: 'phone', channel, describedAs: describeChannel(channel) },
      { rememberBrowser: wantsRemembered(req, stage) },
    );
  });

  /**
   * "Start again": leaves a half-finished step (a login, a sign-up code, a reset, a settings
   * confirmation) for the page it began on, where it can be started afresh once a wait is over.
   */
  router.post('/verify/start-over', (req, res) => {
    const signedIn = currentUserOf(res) !== undefined;
    const resetting = req.session.pendingReset !== undefined;
    for (const slot of [
      'pendingLogin',
      'pendingEnrolment',
      'pendingReset',
      'pendingSettings',
      'pendingPhoneChange',
      'pendingAdmin',
      'factorMethod',
      'passkeyChallenge',
    ] as const) {
      delete req.session[slot];
    }
    delete req.session.challengeId;
    res.redirect(303, signedIn ? '/account/security' : resetting ? '/forgot' : '/login');
  });

  /** "Try another way": an authenticator app, a passkey or a recovery code instead of the phone. */
  router.post('/verify/method', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    const form = parseForm(chooseMethodSchema, req.body);
    if (
      !form.ok ||
      !(await deps.stageFactors.accepts(stage.user, stage.kind, { method: form.data.method }))
    ) {
      return renderVerify(req, res, stage, 400, [
        {
          field: 'code',
          message: 'That way of confirming cannot be used here. Choose one of the ways listed.',
        },
      ]);
    }
    req.session.factorMethod = { kind: stage.kind, method: form.data.method };
    res.redirect(303, '/verify');
  });

  router.post('/verify/resend', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    const form = parseForm(resendSchema, req.body);
    if (!form.ok) return renderVerify(req, res, stage, 400, form.errors);

    const requested = form.data.channel;
    const current = stage.challenge?.channel ?? req.session.channel ?? stage.user.preferredChannel;
    // "Send a new code" keeps the current channel, unless no provider here can deliver by it.
    const channel = requested ?? delivery.deliverableChannel(current);
    // The secure area takes only the channels ADMIN_STEP_UP_FACTORS lists (none, when it lists no
    // phone), and so may an admin's settings: no code is sent that could not be used.
    if (
      isStepUpOfChosenWays(stage) &&
      !(await deps.stageFactors.accepts(stage.user, stage.kind, { method: 'phone', channel }))
    ) {
      return renderVerify(req, res, stage, 400, [{ field: 'code', message: phoneRefusedMessage(stage) }]);
    }
    // Asking for a code means the page now shows the phone's code, whatever it showed before.
    delete req.session.factorMethod;
    // A number not proven yet (a sign-up's, or the new one of a phone change): within its own daily
    // allowance, whoever asks.
    if (stage.scope === 'enrol') {
      const sent = await deps.enrolment.sendCode(req, stage.user, channel);
      if (!sent.ok) {
        if (sent.retryAfterSeconds !== undefined) res.set('Retry-After', String(sent.retryAfterSeconds));
        req.session.flash = { kind: 'error', message: sent.message };
        stage.challenge = await delivery.currentChallenge(req, { userId: stage.user.id, scope: 'enrol' });
        return renderVerify(req, res, stage, sent.status);
      }
      req.session.channel = channel;
      req.session.flash = {
        kind: 'info',
        message: `A new code is on its way by ${describeChannel(channel)}.`,
      };
      return res.redirect(303, '/verify');
    }
    const outcome = await delivery.sendCode(req, { user: stage.user, scope: stage.scope, channel });
    if (!outcome.ok) {
      if ('retryAfterSeconds' in outcome) res.set('Retry-After', String(outcome.retryAfterSeconds));
      // Within the cooldown the session waits for the code already on its way (delivery adopted it).
      if (outcome.reason === 'cooldown' && outcome.pending) stage.challenge = outcome.pending;
      req.session.flash = { kind: 'error', message: describeSendRefusal(outcome) };
      return renderVerify(req, res, stage, sendRefusalStatus(outcome));
    }
    req.session.channel = channel;
    // Only a login stores the choice: a reset link's holder or a step-up does not change the
    // account's default channel.
    if (stage.kind === 'login' && requested && requested !== stage.user.preferredChannel) {
      await users.setPreferredChannel(stage.user.id, requested);
    }
    req.session.flash = {
      kind: 'info',
      message: `A new code is on its way by ${describeChannel(channel)}. Earlier codes no longer work.`,
    };
    res.redirect(303, '/verify');
  });

  /**
   * A mistyped number, corrected on the sign-up code page: only while the account has not proven
   * one. The new number passes the sign-up rules (countries, VoIP, accounts per number, sign-ups
   * per address), and a code goes to it at once; earlier codes to the old number no longer work.
   */
  router.post('/verify/number', async (req, res) => {
    const stage = await currentStage(req, res);
    if (!stage) return leaveCodePage(req, res);
    // Not for an account whose number an admin replaced (it has logged in before): whoever holds
    // only its password could otherwise move the account to their own phone.
    if (stage.kind !== 'signup' || stage.user.lastLoginAt !== null) {
      return renderVerify(req, res, stage, 400, [
        { field: 'code', message: 'The number can only be changed here while signing up.' },
      ]);
    }
    const form = parseForm(correctNumberSchema, req.body);
    if (!form.ok) {
      const body = req.body as Record<string, unknown> | undefined;
      return renderVerify(req, res, stage, 400, form.errors, {
        phone: typeof body?.phone === 'string' ? body.phone.slice(0, 64) : '',
      });
    }
    const phone = parsePhone(form.data.phone, form.data.country);
    if (!phone.ok) {
      return renderVerify(req, res, stage, 400, [{ field: 'phone', message: phone.message }], {
        phone: form.data.phone,
      });
    }
    if (phone.e164 !== stage.user.phone) {
      const admission = await deps.registrations.reserveRegistration({
        clientKey: clientKeyOfRequest(req),
        phone: phone.e164,
      });
      if (!admission.allowed) {
        const message =
          'message' in admission
            ? admission.message
            : `Too many sign-ups from your network right now. Try again in ${describeWait(admission.retryAfterSeconds)}.`;
        if ('retryAfterSeconds' in admission) res.set('Retry-After', String(admission.retryAfterSeconds));
        return renderVerify(
          req,
          res,
          stage,
          'retryAfterSeconds' in admission ? 429 : 400,
          [{ field: 'phone', message }],
          {
            phone: form.data.phone,
          },
        );
      }
      let replaced = false;
      try {
        replaced = await users.replaceUnprovenPhone(stage.user.id, phone.e164);
      } finally {
        await admission.complete(replaced);
      }
      if (!replaced) return leaveCodePage(req, res);
      await audit.record({
        type: 'phone_corrected_at_signup',
        userId: stage.user.id,
        username: stage.user.username,
        ip: req.ip,
        detail: `${maskPhone(stage.user.phone)} to ${maskPhone(phone.e164)}`,
      });
      stage.user = { ...stage.user, phone: phone.e164 };
    }
    const channel = req.session.channel ?? stage.user.preferredChannel;
    const sent = await deps.enrolment.sendCode(req, stage.user, channel);
    req.session.flash = sent.ok
      ? { kind: 'info', message: `A code is on its way to ${maskPhone(stage.user.phone)}.` }
      : { kind: 'error', message: sent.message };
    res.redirect(303, '/verify');
  });

  return router;
}

const WAY_LABELS: Record<Channel | 'totp' | 'passkey' | 'recovery', string> = {
  sms: 'Text a code to my phone',
  voice: 'Call my phone with a code',
  totp: 'Use my authenticator app',
  passkey: 'Use a passkey',
  recovery: 'Use a recovery code',
};

const VERIFY_TITLES: Record<StageKind, string> = {
  login: 'Enter your code',
  signup: 'Confirm your phone number',
  admin: 'Confirm it is you',
  settings: 'Confirm it is you',
  phone_change: 'Confirm your new number',
  reset: 'Enter your reset code',
};
