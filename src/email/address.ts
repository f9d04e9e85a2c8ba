/**
 * Email addresses as the site writes them into headers: EMAIL_FROM, and each message's single
 * recipient. Deliberately narrower than RFC 5322 (no quoted local parts, no comments, no groups):
 * what is refused here can never smuggle a second recipient or a header line into a message.
 */

/** A sender or recipient: an address with an optional display name ("Keyhole"). */
export interface Mailbox {
  name?: string;
  address: string;
}

const MAX_ADDRESS_LENGTH = 254;
const ADDRESS =
  /^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(?:\.[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+)*@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)*$/u;
/** A display name: printable, without the characters that end or quote it. */
const DISPLAY_NAME = /^[^\p{Cc}<>"\\]{1,100}$/u;

/** One plain address (ada@example.com): no name, no list, no spaces or line breaks. */
export function isEmailAddress(value: string): boolean {
  return value.length <= MAX_ADDRESS_LENGTH && ADDRESS.test(value);
}

/**
 * "Keyhole <no-reply@example.com>", "\"Keyhole\" <no-reply@example.com>" or a bare address, as
 * EMAIL_FROM is written; undefined when it is anything else.
 */
export function parseMailbox(raw: string): Mailbox | undefined {
  const value = raw.trim();
  const named = /^(.*?)\s*<([^<>]*)>$/su.exec(value);
  if (!named) return isEmailAddress(value) ? { address: value } : undefined;
  const [, rawName = '', address = ''] = named;
  const name = rawName
    .trim()
    .replace(/^"(.*)"$/su, '$1')
    .trim();
  if (!isEmailAddress(address)) return undefined;
  if (name === '') return { address };
  return DISPLAY_NAME.test(name) ? { name, address } : undefined;
}

/**
 * What two spellings of one address have in common, for "one mailbox, one account": the whole
 * address lower-cased (in practice no provider treats case as different, though RFC 5321 allows it).
 */
export function emailKeyOf(address: string): string {
  return address.trim().normalize('NFC').toLowerCase();
}

export function formatMailbox(mailbox: Mailbox): string {
  return mailbox.name ? `${mailbox.name} <${mailbox.address}>` : mailbox.address;
}
