import { createHash } from 'node:crypto';
import { Router } from 'express';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { buildApiReference } from './api-reference.js';
import { OPENAPI_PATH, loadApiDocument } from './openapi-document.js';

export const OPENAPI_DOCUMENT_PATH = '/api/openapi.yaml';
export const API_DOCS_PATH = '/api/docs';

export interface ApiDocsDeps {
  isProduction: boolean;
  logger: Logger;
  /** openapi.yaml beside package.json unless a test names another file. */
  documentPath?: string;
}

interface LoadedReference {
  text: string;
  reference: ReturnType<typeof buildApiReference>;
  etag: string;
}

/**
 * The API's description, as a file and as a page of the site. Both are public and need no
 * session: mounted before the session middleware, and before the API's bearer check on /api/.
 * The file is read and parsed once, at the first request for either: parsing it took a tenth of a
 * second of every start (issue 10). A broken document fails those two pages (a 500, its problem in
 * the log), never the site or the API; a test checks the shipped one (test/api/docs.test.ts).
 *
 * In production a broken document is remembered as it is: the file changes only with a release
 * (a restart), and reading and parsing it again at every request would let anyone make the server
 * do that work, and log it, as often as they ask. It is logged once. In development a broken file
 * is read again at the next request, so the page shows the fix without a restart.
 */
export function createApiDocsRouter({
  isProduction,
  logger,
  documentPath = OPENAPI_PATH,
}: ApiDocsDeps): Router {
  let loaded: LoadedReference | AppError | undefined;
  const load = (): LoadedReference => {
    if (loaded instanceof AppError) throw loaded;
    if (loaded) return loaded;
    try {
      const { text, document } = loadApiDocument(documentPath);
      // The file changes only with a release: a day in production's caches, and a tag to revalidate with.
      const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
      loaded = { text, reference: buildApiReference(document), etag };
      return loaded;
    } catch (error) {
      logger.error(
        { err: error, documentPath },
        isProduction
          ? 'the API reference cannot be read: /api/docs and /api/openapi.yaml answer 500 until a fixed document is deployed'
          : 'the API reference cannot be read: /api/docs and /api/openapi.yaml answer 500 until the file is fixed',
      );
      // What a visitor is told: nothing of the file's path or the parser's words.
      const failure = new AppError(
        500,
        'The API reference cannot be shown right now. The API itself is not affected.',
        { cause: error, alreadyLogged: true },
      );
      if (isProduction) loaded = failure;
      throw failure;
    }
  };
  const caching = isProduction ? 'public, max-age=86400' : 'no-cache';
  const router = Router();

  router.get(OPENAPI_DOCUMENT_PATH, (req, res) => {
    const { text, etag } = load();
    res.set({ 'Cache-Control': caching, ETag: etag });
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    res.type('application/yaml; charset=utf-8').send(text);
  });

  router.get(API_DOCS_PATH, (_req, res) => {
    const { reference } = load();
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
