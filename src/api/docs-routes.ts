import { createHash } from 'node:crypto';
import { Router } from 'express';
import { buildApiReference } from './api-reference.js';
import { OPENAPI_PATH, loadApiDocument } from './openapi-document.js';

export const OPENAPI_DOCUMENT_PATH = '/api/openapi.yaml';
export const API_DOCS_PATH = '/api/docs';

export interface ApiDocsDeps {
  isProduction: boolean;
  /** openapi.yaml beside package.json unless a test names another file. */
  documentPath?: string;
}

/**
 * The API's description, as a file and as a page of the site. Both are public and need no
 * session: mounted before the session middleware, and before the API's bearer check on /api/.
 * The file is read and parsed once, here: a broken document stops the start, not a request.
 */
export function createApiDocsRouter({ isProduction, documentPath = OPENAPI_PATH }: ApiDocsDeps): Router {
  const { text, document } = loadApiDocument(documentPath);
  const reference = buildApiReference(document);
  // The file changes only with a release: a day in production's caches, and a tag to revalidate with.
  const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
  const caching = isProduction ? 'public, max-age=86400' : 'no-cache';
  const router = Router();

  router.get(OPENAPI_DOCUMENT_PATH, (req, res) => {
    res.set({ 'Cache-Control': caching, ETag: etag });
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    res.type('application/yaml; charset=utf-8').send(text);
  });

  router.get(API_DOCS_PATH, (_req, res) => {
    // The same for every visitor: nothing of a session is on it (no sign-in state, no form token).
    res.set('Cache-Control', isProduction ? 'public, max-age=3600' : 'no-cache');
    res.render('api/docs', {
      title: reference.title,
      wide: true,
      api: reference,
      yamlPath: OPENAPI_DOCUMENT_PATH,
    });
  });

  return router;
}
