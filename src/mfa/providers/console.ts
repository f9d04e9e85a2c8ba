import { formatPhoneForDisplay } from '../../users/phone.js';
import type { Outbox } from '../../dev/outbox.js';
import type { CodeStore } from '../code-store.js';
import type { Channel, MfaProvider, Scope } from '../provider.js';
import type { CodeTexts } from '../sms-text.js';

export interface ConsoleProviderOptions {
  codes: CodeStore;
  codeDigits: number;
  codeTtlMinutes: number;
  /** Where the readable line goes: the terminal in the real app, an array in tests. */
  print: (line: string) => void;
  outbox?: Outbox;
  /** The words of the message, the same as a real provider would send. */
  texts: CodeTexts;
}

function composeMessage(texts: CodeTexts, channel: Channel, scope: Scope, code: string): string {
  // A voice call reads the digits one at a time; the text shows what would be spoken.
  return channel === 'voice'
    ? `${texts.spokenIntro(scope)} ${code.split('').join(' ')}`
    : texts.sms(scope, code);
}

/** The development provider: makes real codes, "delivers" them to the terminal and the outbox. */
export function createConsoleProvider(options: ConsoleProviderOptions): MfaProvider {
  const { codes, codeDigits, codeTtlMinutes, print, outbox, texts } = options;
  return {
    name: 'console',
    channels: ['sms', 'voice'],
    async send({ to, channel, scope }) {
      const issued = await codes.issue({ to, scope, digits: codeDigits, ttlMs: codeTtlMinutes * 60_000 });
      const text = composeMessage(texts, channel, scope, issued.code);
      // One line per message in the terminal; the outbox keeps the SMS's own line breaks.
      const oneLine = text.replace(/\n+/g, ' | ');
      print(`${channel === 'sms' ? 'SMS' : 'Voice call'} to ${formatPhoneForDisplay(to)}: ${oneLine}`);
      outbox?.add({ channel, to, text });
      return { handle: issued.id };
    },
    async verify({ to, scope, code, handle }) {
      if (!handle) return 'invalid';
      return codes.check({ id: handle, to, scope, code });
    },
    async cancel({ handle }) {
      if (handle) await codes.void(handle);
    },
  };
}
