import { Router } from 'express';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { maskPhone } from '../users/phone.js';
import { createApiKeyAuthentication } from './authenticate.js';
import { createApiErrorHandler, methodNotAllowed, noStore, readBody } from './http.js';
import type { ApiKeyStore } from './keys.js';
import { problemAnswer, sendAnswer, type ApiAnswer } from './problem.js';
import { CHECK_IN_PROGRESS_DETAIL, callerOf, sendRefusalAnswer, tooManyWrongCodesAnswer } from './routes.js';
import { parseBody, requestAuthSchema, validateAuthSchema } from './schemas.js';
import type { ApiVerifications } from './verifications.js';

/**
 * The two routes of the voice sample (issue 13), for applications written against it: a code by
 * call (or SMS) to `number`, then `auth_code` checked against the newest one sent to it. Form or
 * JSON bodies; the same key, rules and limits as /api/v1. The sample answered 200 or an error, and
 * 403 for any code it did not take, so these do too.
 */
export interface SampleRouterDeps {
  apiKeys: ApiKeyStore;
  verifications: ApiVerifications;
  clock: Clock;
  logger: Logger;
  codeDigits: number;
}

const POST_ONLY = 'Send the number and code in a POST body: a code in a URL ends up in logs.';

/** Why a code was not taken, by the verification's status after the check. */
const REJECTIONS: Partial<Record<string, string>> = {
  pending: 'The code is not right.',
  expired: 'The code has expired: ask for a new one.',
  max_attempts: 'The code is not right, and no attempts are left: ask for a new one.',
};

const invalid = (errors: { field: string; message: string }[]) =>
  problemAnswer('invalid-request', { detail: 'Some fields are missing or wrong.', errors });

const rejected = (detail: string) => problemAnswer('code-rejected', { detail });

export function createSampleRouter(deps: SampleRouterDeps): Router {
  const { verifications } = deps;
  const router = Router();
  const authenticate = createApiKeyAuthentication({ apiKeys: deps.apiKeys, clock: deps.clock });
  const body = readBody({ form: true });
  const validateSchema = validateAuthSchema(deps.codeDigits);

  router
    .route('/request-auth')
    .post(noStore, authenticate, body, async (req, res) => {
      const parsed = parseBody(requestAuthSchema, req.body);
      if (!parsed.ok) return sendAnswer(res, invalid(parsed.errors));
      const { number, channel, label } = parsed.data;
      const outcome = await verifications.send(callerOf(req), { to: number, channel, label });
      const answer: ApiAnswer = outcome.ok
        ? {
            status: 200,
            body: {
              status: 'sent',
              to: maskPhone(outcome.verification.phone),
              channel: outcome.verification.channel,
              expiresAt: new Date(outcome.verification.expiresAt).toISOString(),
            },
          }
        : sendRefusalAnswer(outcome);
      sendAnswer(res, answer);
    })
    .all(noStore, methodNotAllowed(['POST'], POST_ONLY));

  router
    .route('/validate-auth')
    .post(noStore, authenticate, body, async (req, res) => {
      const parsed = parseBody(validateSchema, req.body);
      if (!parsed.ok) return sendAnswer(res, invalid(parsed.errors));
      const { number, auth_code: code, label } = parsed.data;
      const outcome = await verifications.checkNewest(callerOf(req), { to: number, label, code });
      switch (outcome.kind) {
        case 'answered': {
          const status = verifications.statusOf(outcome.verification);
          return sendAnswer(
            res,
            status === 'approved'
              ? { status: 200, body: { status: 'approved' } }
              : rejected(REJECTIONS[status] ?? REJECTIONS.pending!),
          );
        }
        case 'too_many_requests':
          return sendAnswer(res, tooManyWrongCodesAnswer(outcome.retryAfterSeconds));
        case 'in_progress':
          // This sample's callers know 200, 403 and 429 only: a 429 that says to retry in a second.
          return sendAnswer(
            res,
            problemAnswer('too-many-requests', { detail: CHECK_IN_PROGRESS_DETAIL, retryAfterSeconds: 1 }),
          );
        case 'none_pending':
        case 'not_found':
        case 'closed':
          return sendAnswer(res, rejected('No code is pending for this number: ask for a new one.'));
      }
    })
    .all(noStore, methodNotAllowed(['POST'], POST_ONLY));

  router.use(['/request-auth', '/validate-auth'], createApiErrorHandler(deps.logger));
  return router;
}
