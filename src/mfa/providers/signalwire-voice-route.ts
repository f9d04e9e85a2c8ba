import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import type { Clock } from '../../clock.js';

/**
 * The spoken documents of SignalWire voice calls, served to SignalWire when it fetches the call's
 * `Url` (inline documents are not confirmed for every account). A document holds a code, so:
 * its id is 256 random bits and the only key to it; it answers once, then is gone; it expires
 * with its code; and it is never written to the database or a URL. It lives in this process's
 * memory, or in Redis when several instances share the work (src/stores/redis/), so that a call
 * placed by one instance can be answered by another.
 */

export const SIGNALWIRE_VOICE_PATH = '/callbacks/signalwire/voice';

/** Far more than a site has calls in flight; past it the oldest documents go first. */
const MAX_DOCUMENTS = 10_000;
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface VoiceDocumentStore {
  /** Keeps a document until it is fetched once or expires; returns its unguessable id. */
  put(document: { xml: string; codeId: string; expiresAt: Date }): Promise<string>;
  /** The document, once: a second call with the same id, from any instance, gets nothing. */
  take(id: string): Promise<string | undefined>;
  /** Forgets the documents of a code that was voided or never delivered. */
  dropForCode(codeId: string): Promise<void>;
}

/** 256 random bits, URL-safe: the one credential SignalWire presents. */
export function newVoiceDocumentId(): string {
  return randomBytes(32).toString('base64url');
}

interface Stored {
  xml: string;
  codeId: string;
  expiresAt: number;
}

/** The documents in this process's memory: enough for one instance. */
export function createMemoryVoiceDocumentStore(clock: Clock): VoiceDocumentStore {
  const documents = new Map<string, Stored>();

  function purgeExpired(now: number) {
    for (const [id, stored] of documents) if (stored.expiresAt <= now) documents.delete(id);
  }

  return {
    async put({ xml, codeId, expiresAt }) {
      purgeExpired(clock.now().getTime());
      // Maps iterate in insertion order: the first key is the oldest document.
      while (documents.size >= MAX_DOCUMENTS) documents.delete(documents.keys().next().value!);
      const id = newVoiceDocumentId();
      documents.set(id, { xml, codeId, expiresAt: expiresAt.getTime() });
      return id;
    },
    async take(id) {
      const stored = documents.get(id);
      // Deleted before it is returned: two fetches racing cannot both read it.
      documents.delete(id);
      if (!stored || stored.expiresAt <= clock.now().getTime()) return undefined;
      return stored.xml;
    },
    async dropForCode(codeId) {
      for (const [id, stored] of documents) if (stored.codeId === codeId) documents.delete(id);
    },
  };
}

/**
 * POST (SignalWire's default `Method`) or GET {SIGNALWIRE_VOICE_PATH}/:id. Mounted before the
 * session and CSRF middleware: SignalWire has neither a session nor a token, and the id is the
 * credential. Unknown, used and expired ids all get the same 404; a store that does not answer
 * gets the 503 page, as any request does.
 */
export function createSignalWireVoiceRouter(documents: VoiceDocumentStore): Router {
  const router = Router();
  router.all(`${SIGNALWIRE_VOICE_PATH}/:id`, async (req, res) => {
    res.set('Cache-Control', 'no-store');
    if (req.method !== 'POST' && req.method !== 'GET') return res.status(405).set('Allow', 'GET, POST').end();
    const id = req.params.id;
    const xml = typeof id === 'string' && ID_PATTERN.test(id) ? await documents.take(id) : undefined;
    if (xml === undefined) return res.status(404).type('text/plain').send('Not found');
    res.status(200).type('application/xml; charset=utf-8').send(xml);
  });
  return router;
}
