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
  /** After the file could not be read (not: could not be parsed), how long until it is read again. */
  readRetryMs?: number;
  /** Milliseconds on a clock that only goes forward (tests move it by hand). */
  now?: () => number;
}

/** A file the system would not read (too many open files, a deploy swapping it) may read next time. */
const READ_RETRY_MS = 60_000;

/** An error of the file system (it has the system call that failed), not of the document's text. */
const isReadError = (error: unknown) =>
  typeof error === 'object' && error !== null && typeof (error as { syscall?: unknown }).syscall === 'string';

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
 * do that work, and log it, as often as they ask: a text that does not parse is logged once and
 * kept until the next start. A file the system would not read at all (missing, not readable, too
 * many open files: an error with a system call, not the text's) may read later, so it is tried
 * again at most once a minute, and each failed try is logged. In development a broken file is read
 * again at the next request, so the page shows the fix without a restart.
 */
export function createApiDocsRouter({
  isProduction,
  logger,
  documentPath = OPENAPI_PATH,
  readRetryMs = READ_RETRY_MS,
  now = () => performance.now(),
}: ApiDocsDeps): Router {
  let loaded: LoadedReference | { failure: AppError; until: number } | undefined;
  const load = (): LoadedReference => {
    if (loaded && 'failure' in loaded) {
      if (now() < loaded.until) throw loaded.failure;
      loaded = undefined;
    }
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
          ? isReadError(error)
            ? 'the API reference cannot be read: /api/docs and /api/openapi.yaml answer 500; the file is tried again in a minute'
            : 'the API reference cannot be read: /api/docs and /api/openapi.yaml answer 500 until a fixed document is deployed'
          : 'the API reference cannot be read: /api/docs and /api/openapi.yaml answer 500 until the file is fixed',
      );
      // What a visitor is told: nothing of the file's path or the parser's words.
      const failure = new AppError(
        500,
        'The API reference cannot be shown right now. The API itself is not affected.',
        {
          cause: error,
          alreadyLogged: true,
          advice: 'The problem has been logged. Every other page of the site works as usual.',
        },
      );
      if (isProduction) {
        loaded = { failure, until: isReadError(error) ? now() + readRetryMs : Infinity };
      }
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
