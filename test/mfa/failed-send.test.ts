import { describe, expect, it } from 'vitest';
import { settleFailedSend } from '../../src/mfa/failed-send.js';
import { ProviderError, type ProviderDelivery } from '../../src/mfa/provider.js';

/** What a failed send gives back, recorded: the limits it took are the bill's only guard. */
function taken() {
  const handedBack: string[] = [];
  return {
    handedBack,
    taken: {
      guard: {
        release: async () => void handedBack.push('fraud guard'),
        confirm: async () => void handedBack.push('fraud guard kept'),
      },
      giveBackSends: async () => void handedBack.push('sends'),
      giveBackCooldown: async () => void handedBack.push('cooldown'),
    },
  };
}

describe('settling a failed send', () => {
  it.each<[ProviderDelivery, string[]]>([
    ['no', ['fraud guard', 'cooldown', 'sends']],
    ['maybe', ['fraud guard kept', 'cooldown']],
    ['yes', ['fraud guard kept']],
  ])('after a provider error delivered %s, hands back %j', async (delivered, expected) => {
    const { handedBack, taken: took } = taken();
    const error = new ProviderError('unavailable', 'twilio', 'down', { delivered });
    expect(await settleFailedSend(error, took)).toBe(delivered);
    expect(handedBack).toEqual(expected);
  });

  it('reads an error that is no provider answer (a store failing mid-send) as maybe delivered: no free retry', async () => {
    const { handedBack, taken: took } = taken();
    expect(await settleFailedSend(new Error('the shared store did not answer'), took)).toBe('maybe');
    expect(handedBack).toEqual(['fraud guard kept', 'cooldown']);
  });
});
