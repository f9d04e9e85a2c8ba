import { getCountries, getCountryCallingCode } from 'libphonenumber-js/max';

export interface CountryOption {
  code: string;
  label: string;
}

const names = new Intl.DisplayNames(['en'], { type: 'region' });

/** Every country libphonenumber knows, as "United States (+1)", sorted by name. */
export const COUNTRY_OPTIONS: CountryOption[] = getCountries()
  .map((code) => ({ code, label: `${names.of(code) ?? code} (+${getCountryCallingCode(code)})` }))
  .sort((a, b) => a.label.localeCompare(b.label, 'en'));
