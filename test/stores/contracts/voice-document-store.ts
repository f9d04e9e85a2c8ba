import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VoiceDocumentStore } from '../../../src/mfa/providers/signalwire-voice-route.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every VoiceDocumentStore backend promises (src/mfa/providers/signalwire-voice-route.ts).
 * A document holds a code: it is served once, by whichever instance SignalWire reaches, and never
 * after its code expired or was voided.
 */
export interface VoiceDocumentStoreHarness {
  store: VoiceDocumentStore;
  /** The same documents reached another way: a second connection, as a second instance has. */
  peer: VoiceDocumentStore;
  clock: TestClock;
  /** Lets `ms` pass for the store (and for real, where Redis counts lifetimes down). */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

const CODE_TTL_MS = 5 * 60_000;
/** Short enough to wait out for real against Redis. */
const SHORT_LIFETIME_MS = 300;
const XML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>4, 8, 1, 5, 9, 2.</Say></Response>';

export function describeVoiceDocumentStoreContract(
  backend: string,
  open: () => Promise<VoiceDocumentStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`VoiceDocumentStore contract: ${backend}`, () => {
    let harness: VoiceDocumentStoreHarness;
    let store: VoiceDocumentStore;
    const expiringIn = (ms: number) => new Date(harness.clock.now().getTime() + ms);
    const put = (codeId: string, lifetimeMs = CODE_TTL_MS, xml = XML) =>
      store.put({ xml, codeId, expiresAt: expiringIn(lifetimeMs) });

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
    });
    afterEach(() => harness.close());

    it('hands out unguessable ids: 256 bits, URL-safe, never twice', async () => {
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => put(`code-${i}`)));
      for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(new Set(ids).size).toBe(20);
    });

    it('serves a document once, from the other instance too, then never again', async () => {
      const id = await put('code-1');
      expect(await harness.peer.take(id)).toBe(XML);
      expect(await store.take(id)).toBeUndefined();
      expect(await harness.peer.take(id)).toBeUndefined();
    });

    it('serves nothing for an id never handed out', async () => {
      expect(await store.take('A'.repeat(43))).toBeUndefined();
    });

    it('serves a document to exactly one of many racing fetches, across instances', async () => {
      // Threat: SignalWire (or someone who saw the URL) fetching twice at once and hearing the code twice.
      const id = await put('code-1');
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store : harness.peer).take(id)),
      );
      expect(answers.filter((xml) => xml === XML)).toHaveLength(1);
    });

    it('serves nothing once its code has expired', async () => {
      const id = await put('code-1', SHORT_LIFETIME_MS);
      await harness.elapse(SHORT_LIFETIME_MS);
      expect(await store.take(id)).toBeUndefined();
    });

    it('keeps nothing for a code that had already expired', async () => {
      const id = await put('code-1', -1_000);
      expect(await store.take(id)).toBeUndefined();
    });

    it('drops every document of a voided code, from either instance, and only those', async () => {
      const first = await put('voided');
      const second = await put('voided');
      const other = await put('kept');
      await harness.peer.dropForCode('voided');
      expect(await store.take(first)).toBeUndefined();
      expect(await store.take(second)).toBeUndefined();
      expect(await store.take(other)).toBe(XML);
    });

    it('drops nothing, and fails nothing, for a code with no documents', async () => {
      const kept = await put('kept');
      await expect(store.dropForCode('no-documents')).resolves.toBeUndefined();
      expect(await store.take(kept)).toBe(XML);
    });
  });
}
