import { z } from 'zod';
import { SCOPES } from '../../mfa/provider.js';
import {
  TWILIO_VERIFICATION_REMEMBER_MS,
  type StartedVerification,
  type TwilioVerificationLedger,
  type TwilioVerificationLedgerOptions,
} from '../../mfa/providers/twilio-verification-ledger.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * Twilio's verification-to-account map shared by every instance: a code started on one instance
 * is understood by the others, so the owner asking again on another instance gets a new code
 * rather than "a code for another account is pending".
 *
 * Keys, under the store's prefix:
 *   twilio-verification:<sid>    a hash: to, scope, account or apiKey (when given), startedAt
 *   twilio-verifications:<to>    a sorted set of the number's sids, by startedAt
 *
 * Time: each key is kept `rememberMs` from its last write, as a duration; Redis deletes it by
 * itself. `startedAt` is the starting instance's clock and is compared with another instance's
 * against a code's lifetime (minutes), which the few seconds two clocks may disagree do not move.
 * The scripts reach hashes named in the set: fine on one Redis server, not on Redis Cluster
 * without a shared hash tag.
 */

const RECORD = defineLuaScript(`
local previous = redis.call('HGET', KEYS[1], 'to')
if previous then redis.call('ZREM', ARGV[3] .. previous, ARGV[2]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`);

// Walks the number's set; sids whose hash Redis already deleted are dropped from it.
const PENDING_FOR = defineLuaScript(`
local found = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', ARGV[1] .. sid)
  if #fields == 0 then
    redis.call('ZREM', KEYS[1], sid)
  else
    table.insert(fields, 'sid')
    table.insert(fields, sid)
    table.insert(found, fields)
  end
end
return found
`);

const FORGET = defineLuaScript(`
local to = redis.call('HGET', KEYS[1], 'to')
redis.call('DEL', KEYS[1])
if to then redis.call('ZREM', ARGV[1] .. to, ARGV[2]) end
return 0
`);

const whole = z.coerce.number().int();
/** A verification as read back from its hash (every value is a string there). */
const storedVerification = z.object({
  sid: z.string(),
  to: z.string(),
  scope: z.enum(SCOPES),
  account: whole.optional(),
  apiKey: whole.optional(),
  startedAt: whole,
  provenHolder: z.enum(['0', '1']).optional(),
});

function toVerification(flatHash: string[]): StartedVerification {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flatHash.length; i += 2) fields[flatHash[i]!] = flatHash[i + 1]!;
  const { account, apiKey, provenHolder, ...rest } = storedVerification.parse(fields);
  return {
    ...rest,
    ...(provenHolder === '1' ? { provenHolder: true } : {}),
    ...(account === undefined ? {} : { account }),
    ...(apiKey === undefined ? {} : { apiKey }),
  };
}

export function createRedisTwilioVerificationLedger(
  redis: RedisCommands,
  {
    keyPrefix,
    commandTimeoutMs,
    rememberMs = TWILIO_VERIFICATION_REMEMBER_MS,
  }: RedisStoreOptions & TwilioVerificationLedgerOptions,
): TwilioVerificationLedger {
  const verificationKeyPrefix = `${keyPrefix}twilio-verification:`;
  const numberKeyPrefix = `${keyPrefix}twilio-verifications:`;
  const call = <T>(operation: () => Promise<T>) =>
    callRedis('Twilio verifications', operation, commandTimeoutMs);

  return {
    async record({ sid, to, scope, account, apiKey, startedAt, provenHolder }) {
      const fields = ['to', to, 'scope', scope, 'startedAt', String(startedAt)];
      if (provenHolder) fields.push('provenHolder', '1');
      if (account !== undefined) fields.push('account', String(account));
      if (apiKey !== undefined) fields.push('apiKey', String(apiKey));
      await call(() =>
        RECORD(
          redis,
          [verificationKeyPrefix + sid, numberKeyPrefix + to],
          [rememberMs, sid, numberKeyPrefix, startedAt, ...fields],
        ),
      );
    },
    async find(sid) {
      const reply = (await call(() =>
        redis.sendCommand(['HGETALL', verificationKeyPrefix + sid]),
      )) as string[];
      return reply.length === 0 ? null : toVerification([...reply, 'sid', sid]);
    },
    async pendingFor(to) {
      const reply = await call(() => PENDING_FOR(redis, [numberKeyPrefix + to], [verificationKeyPrefix]));
      // The set is ordered by startedAt: oldest first.
      return (reply as string[][]).map(toVerification);
    },
    async forget(sid) {
      await call(() => FORGET(redis, [verificationKeyPrefix + sid], [numberKeyPrefix, sid]));
    },
  };
}
