import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { problemsOf } from './helpers/config.js';

const PRODUCTION: Record<string, string> = {
  NODE_ENV: 'production',
  SESSION_SECRET: 's'.repeat(32),
  FACTOR_ENCRYPTION_KEY: 'ab'.repeat(32),
  // Phone codes at the admin step-up are warned of in production; these tests look at other warnings.
  ADMIN_STEP_UP_FACTORS: 'passkey,totp',
  MFA_PROVIDER: 'bandwidth',
  BW_ACCOUNT_ID: '9900001',
  BW_USERNAME: 'user',
  BW_PASSWORD: 'pass',
  BW_VOICE_APPLICATION_ID: 'voice-app',
  BW_MESSAGING_APPLICATION_ID: 'msg-app',
  BW_NUMBER: '+12025550100',
  SMS_COUNTRIES: 'US',
  PUBLIC_URL: 'https://keyhole.example',
  EMAIL_PROVIDER: 'smtp',
  SMTP_URL: 'smtp://127.0.0.1:9',
  EMAIL_FROM: 'Keyhole <no-reply@example.com>',
};

describe('standards bounds (NIST SP 800-63B, OWASP ASVS 6.5)', () => {
  it('refuses in production codes under 6 digits, codes living over 10 minutes and a step-up over an hour, by name', () => {
    expect(
      problemsOf({
        ...PRODUCTION,
        MFA_CODE_DIGITS: '5',
        MFA_CODE_TTL_MINUTES: '11',
        ADMIN_SCOPE_TTL_MINUTES: '61',
      }),
    ).toEqual([
      expect.stringMatching(/^MFA_CODE_DIGITS: must be at least 6 in production/),
      expect.stringMatching(/^MFA_CODE_TTL_MINUTES: must be at most 10 in production/),
      expect.stringMatching(/^ADMIN_SCOPE_TTL_MINUTES: must be at most 60 in production/),
    ]);
    const atTheBounds = loadConfig({
      ...PRODUCTION,
      MFA_CODE_DIGITS: '6',
      MFA_CODE_TTL_MINUTES: '10',
      ADMIN_SCOPE_TTL_MINUTES: '60',
    });
    expect(atTheBounds.warnings).toEqual([]);
  });

  it('keeps the wider ranges outside production, with a warning for each value production would refuse', () => {
    const config = loadConfig({
      MFA_CODE_DIGITS: '4',
      MFA_CODE_TTL_MINUTES: '15',
      ADMIN_SCOPE_TTL_MINUTES: '720',
    });
    expect(config).toMatchObject({ codeDigits: 4, codeTtlMinutes: 15, adminScopeTtlMinutes: 720 });
    expect(config.warnings).toEqual([
      expect.stringMatching(
        /^MFA_CODE_DIGITS: must be at least 6 in production .*allowed here only for trying/,
      ),
      expect.stringMatching(/^MFA_CODE_TTL_MINUTES: must be at most 10 in production/),
      expect.stringMatching(/^ADMIN_SCOPE_TTL_MINUTES: must be at most 60 in production/),
    ]);
    expect(loadConfig({}).warnings).toEqual([]);
  });
});

describe('PUBLIC_URL', () => {
  it('defaults to this machine outside production', () => {
    expect(loadConfig({ PORT: '4000' })).toMatchObject({
      publicUrl: 'http://localhost:4000',
      publicHost: 'localhost',
    });
  });

  it('is required in production, and must be https there', () => {
    const { PUBLIC_URL: _, ...withoutUrl } = PRODUCTION;
    expect(problemsOf(withoutUrl)).toEqual([
      expect.stringMatching(/^PUBLIC_URL: is required when NODE_ENV=production/),
    ]);
    expect(problemsOf({ ...PRODUCTION, PUBLIC_URL: 'http://keyhole.example' })).toEqual([
      expect.stringMatching(/^PUBLIC_URL: must be https in production/),
    ]);
    expect(problemsOf({ ...PRODUCTION, PUBLIC_URL: 'keyhole.example' })).toEqual([
      expect.stringMatching(/^PUBLIC_URL: must be an http\(s\) URL/),
    ]);
    expect(loadConfig(PRODUCTION)).toMatchObject({
      publicUrl: 'https://keyhole.example',
      publicHost: 'keyhole.example',
    });
  });
});
