import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

export type PhoneParseResult = { ok: true; e164: string } | { ok: false; message: string };

/**
 * Reads a phone number typed in international form (+1 202 555 0100) or in national form with
 * its country (ISO 3166 alpha-2), and returns it in E.164.
 */
export function parsePhone(input: string, country?: string): PhoneParseResult {
  const trimmed = input.trim();
  if (!trimmed.startsWith('+') && !country) {
    return {
      ok: false,
      message: 'Choose the country of the number, or write it with + and the country code.',
    };
  }
  const parsed = parsePhoneNumberFromString(trimmed, {
    defaultCountry: trimmed.startsWith('+') ? undefined : (country as CountryCode),
  });
  if (!parsed || !parsed.isValid()) {
    return { ok: false, message: 'Enter a valid phone number, for example +1 202 555 0100.' };
  }
  const type = parsed.getType();
  if (
    type !== undefined &&
    !['MOBILE', 'FIXED_LINE', 'FIXED_LINE_OR_MOBILE', 'PERSONAL_NUMBER', 'VOIP'].includes(type)
  ) {
    return { ok: false, message: 'This number cannot receive codes; use a mobile or landline number.' };
  }
  return { ok: true, e164: parsed.number };
}

/** The country a number belongs to (ISO 3166 alpha-2), for a form's country list; '' when unknown. */
export function phoneCountryOf(e164: string): string {
  return parsePhoneNumberFromString(e164)?.country ?? '';
}

/** "•••• 0100": enough for a person to recognise their number, not enough to reveal it. */
/** What every masked number starts with: a deletion finds the details that show one by it. */
export const MASKED_PHONE_MARK = '••••';

export function maskPhone(e164: string): string {
  return `${MASKED_PHONE_MARK} ${e164.slice(-4)}`;
}

/** "+1 202-555-0100", for the console provider's readable lines. */
export function formatPhoneForDisplay(e164: string): string {
  return parsePhoneNumberFromString(e164)?.formatInternational() ?? e164;
}
