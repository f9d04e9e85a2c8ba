import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { FraudConfig } from './config.js';

/**
 * Where a code would go: the number's country and whether it is a VoIP number, read offline from
 * libphonenumber's full ("max") metadata, which the site already uses to check numbers.
 */
export interface Destination {
  /** ISO 3166 alpha-2, or 'ZZ' for numbers of no country (+800, +882 networks and the like). */
  country: string;
  isVoip: boolean;
}

export const UNKNOWN_COUNTRY = 'ZZ';

export function destinationOf(e164: string): Destination {
  const parsed = parsePhoneNumberFromString(e164);
  return {
    country: parsed?.country ?? UNKNOWN_COUNTRY,
    isVoip: parsed?.getType() === 'VOIP',
  };
}

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });

/** "Australia"; numbers of no country read as "that network". */
export function countryName(country: string): string {
  if (country === UNKNOWN_COUNTRY) return 'that network';
  try {
    return regionNames.of(country) ?? country;
  } catch {
    return country;
  }
}

export type DestinationRule = 'country' | 'voip';

export type DestinationCheck =
  | { ok: true; destination: Destination }
  | { ok: false; destination: Destination; rule: DestinationRule; message: string };

/**
 * Whether codes may go to this number at all: its country is in SMS_COUNTRIES, and it is not a
 * VoIP number unless ALLOW_VOIP_NUMBERS (NIST SP 800-63B: a number must prove possession of a
 * device, which a VoIP number does not). Used at registration, at every send, and by the phone
 * change form when it comes. The message is for the person and names the country.
 */
export function checkDestination(
  e164: string,
  config: Pick<FraudConfig, 'countries' | 'allowVoipNumbers'>,
): DestinationCheck {
  const destination = destinationOf(e164);
  // '*' is every country: numbers of no country (+881, +882, +883...), where most premium and
  // satellite ranges sit, go only where the operator lists UNKNOWN_COUNTRY ('ZZ') by name.
  const allowed =
    config.countries === '*'
      ? destination.country !== UNKNOWN_COUNTRY
      : config.countries.includes(destination.country);
  if (!allowed) {
    return {
      ok: false,
      destination,
      rule: 'country',
      message: `Codes cannot be sent to numbers in ${countryName(destination.country)} from this site. Use a number from another country.`,
    };
  }
  if (destination.isVoip && !config.allowVoipNumbers) {
    return {
      ok: false,
      destination,
      rule: 'voip',
      message: 'Codes cannot be sent to internet (VoIP) numbers. Use a mobile or landline number.',
    };
  }
  return { ok: true, destination };
}
