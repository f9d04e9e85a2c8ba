import { newVoiceDocumentId, type VoiceDocumentStore } from '../../mfa/providers/signalwire-voice-route.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * SignalWire's voice documents shared by every instance: the call placed by one instance fetches
 * its document from whichever instance the load balancer picks. A document holds a code, so it is
 * read and deleted in one command (GETDEL): two fetches racing, on any instances, never both get it.
 *
 * Keys, under the store's prefix:
 *   voice-document:<id>                 the document; it expires with its code
 *   voice-documents-of-code:<codeId>    a set of its documents' ids, to drop them when the code is voided
 *
 * Time: a document lives from the app's "now" until its code's expiry, given to Redis as a
 * duration; Redis deletes it by itself (see docs/stores.md). The drop script reaches keys named in
 * the set: fine on one Redis server, not on Redis Cluster without a shared hash tag.
 */

const PUT = defineLuaScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
`);

const DROP_FOR_CODE = defineLuaScript(`
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
return 0
`);

export function createRedisVoiceDocumentStore(
  redis: RedisCommands,
  { keyPrefix, clock, commandTimeoutMs }: RedisStoreOptions,
): VoiceDocumentStore {
  const documentKeyPrefix = `${keyPrefix}voice-document:`;
  const codeIndexKey = (codeId: string) => `${keyPrefix}voice-documents-of-code:${codeId}`;
  const call = <T>(operation: () => Promise<T>) => callRedis('voice documents', operation, commandTimeoutMs);

  return {
    async put({ xml, codeId, expiresAt }) {
      const id = newVoiceDocumentId();
      const lifetimeMs = Math.ceil(expiresAt.getTime() - clock.now().getTime());
      // A document whose code has already expired is never kept: its id opens nothing.
      if (lifetimeMs <= 0) return id;
      await call(() => PUT(redis, [documentKeyPrefix + id, codeIndexKey(codeId)], [xml, id, lifetimeMs]));
      return id;
    },
    async take(id) {
      const reply = await call(() => redis.sendCommand(['GETDEL', documentKeyPrefix + id]));
      return typeof reply === 'string' ? reply : undefined;
    },
    async dropForCode(codeId) {
      await call(() => DROP_FOR_CODE(redis, [codeIndexKey(codeId)], [documentKeyPrefix]));
    },
  };
}
