import { Router, type Request, type Response } from 'express';
import type { Clock } from '../clock.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import type { Logger } from '../logger.js';
import { maskPhone } from '../users/phone.js';
import { createApiKeyAuthentication } from './authenticate.js';
import { createApiErrorHandler, failureAnswer, methodNotAllowed, noStore, readBody } from './http.js';
import { isValidIdempotencyKey, type Idempotency } from './idempotency.js';
import type { ApiKeyStore } from './keys.js';
import { problemAnswer, sendAnswer, sendProblem, type ApiAnswer } from './problem.js';
import { checkVerificationSchema, parseBody, sendVerificationSchema } from './schemas.js';
import {
  FailedAfterSendError,
  type ApiCaller,
  type ApiSendOutcome,
  type ApiVerifications,
  type CancelOutcome,
  type CheckOutcome,
} from './verifications.js';
import type { ApiVerification } from './verification-store.js';
import { ProviderError } from '../mfa/provider.js';

/**
 * /api/v1/verifications: the verification API's JSON routes (issue 13). Each handler parses, calls
 * the rules (verifications.ts) and turns their outcome into an answer; the bearer key comes first.
 */
export interface ApiRouterDeps {
  apiKeys: ApiKeyStore;
  verifications: ApiVerifications;
  idempotency: Idempotency;
  clock: Clock;
  logger: Logger;
  /** MFA_CODE_DIGITS: a code of another length is refused before any provider is asked. */
  codeDigits: number;
}

const BASE = '/api/v1/verifications';

/** The caller as the rules need it: the key authenticate.ts found, and where the request came from. */
export function callerOf(req: Request): ApiCaller {
  return { key: req.apiKey!, clientKey: clientKeyOfRequest(req), ip: req.ip };
}

/** A verification as the caller sees it: the number masked, never the code or the provider's handle. */
export function presentVerification(verifications: ApiVerifications, verification: ApiVerification) {
  return {
    id: verification.id,
    to: maskPhone(verification.phone),
    channel: verification.channel,
    label: verification.label,
    status: verifications.statusOf(verification),
    expiresAt: new Date(verification.expiresAt).toISOString(),
    attemptsLeft: verifications.attemptsLeft(verification),
    createdAt: new Date(verification.createdAt).toISOString(),
  };
}

/** The answer to a send the rules refused; shared with the voice sample's /request-auth. */
export function sendRefusalAnswer(outcome: Exclude<ApiSendOutcome, { ok: true }>): ApiAnswer {
  switch (outcome.reason) {
    case 'channel_not_allowed':
      return problemAnswer('channel-not-allowed', {
        detail: 'This API key may not have codes sent that way.',
      });
    case 'channel_unavailable':
      return problemAnswer('unavailable', { detail: 'No code provider here delivers codes that way.' });
    case 'destination_refused':
      return problemAnswer('destination-refused', { detail: outcome.message });
    case 'too_many_requests':
      return problemAnswer('too-many-requests', {
        detail: `${outcome.detail} Try again later.`,
        retryAfterSeconds: outcome.retryAfterSeconds,
      });
  }
}

/** 409 for a verification that no longer takes a code or a cancel: its status says why. */
export function closedAnswer(verifications: ApiVerifications, verification: ApiVerification): ApiAnswer {
  const status = verifications.statusOf(verification);
  return problemAnswer('verification-closed', {
    detail: `This verification is ${status.replace('_', ' ')}: it takes no more codes.`,
    verificationStatus: status,
  });
}

const notFoundAnswer = () =>
  problemAnswer('not-found', { detail: 'This API key has no verification with this id.' });

/** Another check of the verification is in flight: its outcome is known in a moment. */
export const CHECK_IN_PROGRESS_DETAIL =
  'Another check of this verification is being answered. Retry in a moment to learn its outcome.';

export function tooManyWrongCodesAnswer(retryAfterSeconds: number): ApiAnswer {
  return problemAnswer('too-many-requests', {
    detail: 'Too many wrong codes were given for this number. Try again later.',
    retryAfterSeconds,
  });
}

/** Whether the answer to a send is kept for replays: not when a retry with the same key should go ahead. */
function isReplayable(answer: ApiAnswer, error?: unknown): boolean {
  // A limit's 429 says when to try again, which a replay would contradict; a 5xx where nothing
  // went out (or anything unexpected) changed nothing a retry would repeat.
  // Once the code is out, nothing is released: the retry hears this answer, not a second code.
  if (error instanceof FailedAfterSendError) return true;
  if (answer.status === 429 || answer.status === 500) return false;
  if (answer.status === 503) return error instanceof ProviderError && error.delivered !== 'no';
  return true;
}

export function createApiRouter(deps: ApiRouterDeps): Router {
  const { verifications, idempotency } = deps;
  const router = Router();
  const authenticate = createApiKeyAuthentication({ apiKeys: deps.apiKeys, clock: deps.clock });
  const json = readBody();
  const present = (verification: ApiVerification) => presentVerification(verifications, verification);

  const checkAnswer = (outcome: CheckOutcome): ApiAnswer => {
    switch (outcome.kind) {
      case 'answered':
        return {
          status: 200,
          body: {
            id: outcome.verification.id,
            status: verifications.statusOf(outcome.verification),
            attemptsLeft: verifications.attemptsLeft(outcome.verification),
          },
        };
      case 'not_found':
        return notFoundAnswer();
      case 'closed':
        return closedAnswer(verifications, outcome.verification);
      case 'too_many_requests':
        return tooManyWrongCodesAnswer(outcome.retryAfterSeconds);
      case 'in_progress':
        return problemAnswer('check-in-progress', { detail: CHECK_IN_PROGRESS_DETAIL, retryAfterSeconds: 1 });
    }
  };

  const cancelAnswer = (outcome: CancelOutcome): ApiAnswer =>
    outcome.kind === 'canceled'
      ? { status: 200, body: present(outcome.verification) }
      : outcome.kind === 'not_found'
        ? notFoundAnswer()
        : closedAnswer(verifications, outcome.verification);

  const answerWith = (res: Response, answer: ApiAnswer, replayed = false) => {
    if (answer.status === 201) res.location(`${BASE}/${(answer.body as { id: string }).id}`);
    if (replayed) res.set('Idempotent-Replayed', 'true');
    sendAnswer(res, answer);
  };

  router.use('/api/v1', noStore);

  router
    .route(BASE)
    .post(authenticate, json, async (req, res) => {
      const parsed = parseBody(sendVerificationSchema, req.body);
      const idempotencyKey = req.get('Idempotency-Key');
      const errors = parsed.ok ? [] : parsed.errors;
      if (idempotencyKey !== undefined && !isValidIdempotencyKey(idempotencyKey)) {
        errors.push({
          field: 'Idempotency-Key',
          message: 'An Idempotency-Key is 1 to 255 printable ASCII characters.',
        });
      }
      // A request that is not valid changes nothing: answered, never kept under its Idempotency-Key.
      if (!parsed.ok || errors.length > 0) {
        return sendProblem(res, 'invalid-request', { detail: 'Some fields are missing or wrong.', errors });
      }
      const caller = callerOf(req);
      const send = async (): Promise<ApiAnswer> => {
        const outcome = await verifications.send(caller, parsed.data);
        if (!outcome.ok) return sendRefusalAnswer(outcome);
        // Just created: its creation time is the answer's own (openapi.yaml's CreatedVerification).
        const { createdAt: _, ...created } = present(outcome.verification);
        return { status: 201, body: created };
      };
      if (idempotencyKey === undefined) return answerWith(res, await send());

      const start = await idempotency.begin(caller.key.id, idempotencyKey, req.body);
      switch (start.kind) {
        case 'replay':
          return answerWith(
            res,
            { status: start.response.status, body: JSON.parse(start.response.body) },
            true,
          );
        case 'in_progress':
          return sendProblem(res, 'idempotency-in-progress', {
            detail: 'A request with this Idempotency-Key is still being answered. Try again in a moment.',
          });
        case 'reused':
          return sendProblem(res, 'idempotency-key-reused', {
            detail: 'This Idempotency-Key came with another body before. Use a new key for a new request.',
          });
      }
      /**
       * Keeps the answer for replays, or drops the claim. After a send the code is out whatever
       * the store says: a store that fails here is logged and the answer still given (a retry
       * meanwhile hears 409 until the claim is old enough to be taken over).
       */
      const settle = (answer: ApiAnswer, error?: unknown) =>
        (isReplayable(answer, error)
          ? start.finish({ status: answer.status, body: JSON.stringify(answer.body) })
          : start.release()
        ).catch((storeError: unknown) =>
          deps.logger.error({ err: storeError }, 'an Idempotency-Key could not be settled'),
        );
      let answer: ApiAnswer;
      try {
        answer = await send();
      } catch (error) {
        await settle(failureAnswer(error), error);
        throw error;
      }
      await settle(answer);
      answerWith(res, answer);
    })
    .all(methodNotAllowed(['POST']));

  router
    .route(`${BASE}/:id`)
    .get(authenticate, async (req, res) => {
      const verification = await verifications.find(req.apiKey!, String(req.params.id));
      answerWith(res, verification ? { status: 200, body: present(verification) } : notFoundAnswer());
    })
    .delete(authenticate, async (req, res) => {
      answerWith(res, cancelAnswer(await verifications.cancel(callerOf(req), String(req.params.id))));
    })
    .all(methodNotAllowed(['GET', 'HEAD', 'DELETE']));

  const checkSchema = checkVerificationSchema(deps.codeDigits);
  router
    .route(`${BASE}/:id/check`)
    .post(authenticate, json, async (req, res) => {
      const parsed = parseBody(checkSchema, req.body);
      if (!parsed.ok) {
        return sendProblem(res, 'invalid-request', {
          detail: 'Some fields are missing or wrong.',
          errors: parsed.errors,
        });
      }
      const outcome = await verifications.check(callerOf(req), {
        id: String(req.params.id),
        code: parsed.data.code,
      });
      answerWith(res, checkAnswer(outcome));
    })
    .all(methodNotAllowed(['POST']));

  router.use('/api/v1', createApiErrorHandler(deps.logger));
  return router;
}
