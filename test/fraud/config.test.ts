import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { problemsOf } from '../helpers/config.js';

describe('the toll-fraud guard’s variables', () => {
  it('default to the limits of the issue, enforced, every country outside production', () => {
    expect(loadConfig({}).fraud).toEqual({
      mode: 'enforce',
      countries: '*',
      budgetPerDay: 1000,
      send: {
        perNumberPer10Minutes: 3,
        perNumberPerDay: 10,
        perAddressPerHour: 10,
        perAddressPerDay: 30,
        countriesPerAddressPerDay: 3,
      },
      registration: { perAddressPerHour: 5, accountsPerPhone: 3 },
      breakerMinPerDay: 20,
      allowVoipNumbers: false,
    });
  });

  it('read each limit from its variable', () => {
    const config = loadConfig({
      FRAUD_GUARD: 'record',
      SMS_COUNTRIES: 'us, ca gb',
      SEND_BUDGET_PER_DAY: '500',
      SEND_LIMIT_PER_NUMBER_10MIN: '2',
      SEND_LIMIT_PER_NUMBER_DAY: '5',
      SEND_LIMIT_PER_ADDRESS_HOUR: '6',
      SEND_LIMIT_PER_ADDRESS_DAY: '20',
      SEND_LIMIT_COUNTRIES_PER_ADDRESS_DAY: '1',
      SEND_BREAKER_MIN_PER_DAY: '50',
      REGISTER_LIMIT_PER_ADDRESS_HOUR: '2',
      REGISTER_LIMIT_ACCOUNTS_PER_PHONE: '1',
      ALLOW_VOIP_NUMBERS: 'true',
    });
    expect(config.fraud).toEqual({
      mode: 'record',
      countries: ['US', 'CA', 'GB'],
      budgetPerDay: 500,
      send: {
        perNumberPer10Minutes: 2,
        perNumberPerDay: 5,
        perAddressPerHour: 6,
        perAddressPerDay: 20,
        countriesPerAddressPerDay: 1,
      },
      registration: { perAddressPerHour: 2, accountsPerPhone: 1 },
      breakerMinPerDay: 50,
      allowVoipNumbers: true,
    });
    // Record mode is said at every start.
    expect(config.warnings).toEqual([expect.stringMatching(/^FRAUD_GUARD=record: /)]);
  });

  it('name every bad value', () => {
    expect(
      problemsOf({
        FRAUD_GUARD: 'off',
        SMS_COUNTRIES: 'US,XX,usa',
        SEND_BUDGET_PER_DAY: '0',
        ALLOW_VOIP_NUMBERS: 'yes',
      }),
    ).toEqual([
      expect.stringMatching(/^FRAUD_GUARD: must be enforce or record/),
      expect.stringMatching(/^SMS_COUNTRIES: unknown country code XX, USA/),
      expect.stringMatching(/^SEND_BUDGET_PER_DAY: must be at least 1/),
      expect.stringMatching(/^ALLOW_VOIP_NUMBERS: must be true or false/),
    ]);
  });

  it('take ZZ for numbers of no country, which * leaves out, and say why * stands alone', () => {
    expect(loadConfig({ SMS_COUNTRIES: 'US,zz' }).fraud.countries).toEqual(['US', 'ZZ']);
    expect(problemsOf({ SMS_COUNTRIES: '*,ZZ' })).toEqual([
      expect.stringMatching(
        /^SMS_COUNTRIES: \* stands alone \(every country, numbers of no country excepted\)/,
      ),
    ]);
  });

  it('require SMS_COUNTRIES in production, where there is no default', () => {
    const production = {
      NODE_ENV: 'production',
      SESSION_SECRET: 's'.repeat(32),
      FACTOR_ENCRYPTION_KEY: 'ab'.repeat(32),
      MFA_PROVIDER: 'twilio',
      TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 'token',
      TWILIO_VERIFY_SERVICE_ID: `VA${'1'.repeat(32)}`,
      PUBLIC_URL: 'https://keyhole.example',
      EMAIL_PROVIDER: 'smtp',
      SMTP_HOST: 'smtp.example.com',
      EMAIL_FROM: 'no-reply@example.com',
    };
    expect(problemsOf(production)).toEqual([
      expect.stringMatching(/^SMS_COUNTRIES: is required when NODE_ENV=production/),
    ]);
    expect(loadConfig({ ...production, SMS_COUNTRIES: '*' }).fraud.countries).toBe('*');
  });
});
