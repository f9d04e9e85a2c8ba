import { Router } from 'express';
import { sessionHandleOf, type AccountSessions } from '../auth/account-sessions.js';
import type { AuditLog } from '../audit/log.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import { currentUserOf } from '../auth/guards.js';
import { parseForm } from '../http/validate.js';
import { endSessionSchema } from './schemas.js';
import type { SecurityPage } from './security-page.js';
import { SETTINGS_PATH } from './settings-step-up.js';

/**
 * The account's sessions on /account/security (issue 11): end one, or all but this one. No code
 * is needed: ending a session only ever takes access away. A session is named by its handle
 * (src/auth/account-sessions.ts), and only the account's own handles end anything.
 */
export function createAccountSessionRouter(deps: {
  page: SecurityPage;
  sessions: AccountSessions;
  /** "End every other session" forgets every remembered browser too (issue 12). */
  rememberedBrowsers: Pick<RememberedBrowsers, 'revokeAll'>;
  audit: AuditLog;
}): Router {
  const router = Router();

  router.post(`${SETTINGS_PATH}/sessions/end`, async (req, res) => {
    const user = currentUserOf(res)!;
    const form = parseForm(endSessionSchema, req.body);
    if (!form.ok) {
      req.session.flash = { kind: 'error', message: form.errors[0]!.message };
      return deps.page.render(req, res, { status: 400 });
    }
    if (form.data.session === sessionHandleOf(req.sessionID)) {
      req.session.flash = {
        kind: 'error',
        message: 'That is the session you are using now. To end it, log out.',
      };
      return res.redirect(303, SETTINGS_PATH);
    }
    const ended = await deps.sessions.endOne(user.id, form.data.session);
    if (ended) {
      await deps.audit.record({
        type: 'session_ended',
        userId: user.id,
        username: user.username,
        ip: req.ip,
        detail: '1 other session',
      });
    }
    req.session.flash = ended
      ? { kind: 'info', message: 'That session was ended. Whoever used it must log in again.' }
      : { kind: 'error', message: 'That session had already ended.' };
    res.redirect(303, SETTINGS_PATH);
  });

  router.post(`${SETTINGS_PATH}/sessions/end-others`, async (req, res) => {
    const user = currentUserOf(res)!;
    const ended = await deps.sessions.endAllForUser(user.id, { exceptSid: req.sessionID });
    // A remembered browser would let whoever holds it back in with the password alone.
    const forgotten = await deps.rememberedBrowsers.revokeAll(user.id, 'every other session ended');
    await deps.audit.record({
      type: 'session_ended',
      userId: user.id,
      username: user.username,
      ip: req.ip,
      detail: `${ended} other ${ended === 1 ? 'session' : 'sessions'}`,
    });
    req.session.flash = {
      kind: 'info',
      message:
        ended === 0
          ? 'No other session was open.'
          : `${ended} other ${ended === 1 ? 'session was' : 'sessions were'} ended.`,
    };
    if (forgotten > 0) {
      req.session.flash.message += ` ${forgotten} remembered ${forgotten === 1 ? 'browser is' : 'browsers are'} forgotten.`;
    }
    res.redirect(303, SETTINGS_PATH);
  });

  return router;
}
