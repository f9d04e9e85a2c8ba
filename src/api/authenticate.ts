import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Clock } from '../clock.js';
import { hashApiKey, looksLikeApiKey, type ApiKey, type ApiKeyStore } from './keys.js';
import { sendProblem } from './problem.js';

/** A key's last use is written at most this often: a busy key must not write a row per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

declare module 'express-serve-static-core' {
  interface Request {
    /** The API key that authenticated this request (src/api/authenticate.ts). */
    apiKey?: ApiKey;
  }
}

/**
 * `Authorization: Bearer <key>` for the API. The key is looked up by its SHA-256, so no comparison
 * of the key itself can leak its characters through timing. Unknown and malformed keys get the
 * same 401; a revoked key is told so (403), since whoever holds it once had the right to know.
 */
export function createApiKeyAuthentication(deps: { apiKeys: ApiKeyStore; clock: Clock }): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer +(\S+)\s*$/i.exec(header);
    const candidate = match?.[1];
    if (!candidate) {
      return sendProblem(res, 'unauthorized', {
        detail: 'Send your API key in an Authorization header: "Authorization: Bearer kh_…".',
      });
    }
    const key = looksLikeApiKey(candidate) ? await deps.apiKeys.findByHash(hashApiKey(candidate)) : null;
    if (!key) return sendProblem(res, 'unauthorized', { detail: 'This API key is not known here.' });
    if (key.revokedAt) {
      return sendProblem(res, 'key-revoked', {
        detail: 'This API key was revoked by an administrator. Ask them for a new one.',
      });
    }
    const now = deps.clock.now();
    await deps.apiKeys.touch(key.id, now, new Date(now.getTime() - LAST_USED_RESOLUTION_MS));
    req.apiKey = key;
    next();
  };
}
