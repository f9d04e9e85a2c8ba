import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { problemsOf } from './helpers/config.js';

const TWILIO_ENV = {
  TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
  TWILIO_AUTH_TOKEN: 'token',
  TWILIO_VERIFY_SERVICE_ID: `VA${'0'.repeat(32)}`,
};
const SIGNALWIRE_ENV = {
  SIGNALWIRE_SPACE: 'example',
  SIGNALWIRE_PROJECT: 'project-id',
  SIGNALWIRE_TOKEN: 'PTtoken',
  SIGNALWIRE_NUMBER: '+12025550100',
  BASE_CALLBACK_URL: 'https://keyhole.example.test/',
};
const KANDY_ENV = {
  KANDY_BASE_URL: 'https://oauth-cpaas.example.test/',
  KANDY_CLIENT_ID: 'PRIV-project',
  KANDY_CLIENT_SECRET: 'secret',
};

describe('loadConfig: the providers of MFA_PROVIDER', () => {
  it('names each missing Twilio variable when MFA_PROVIDER=twilio', () => {
    const problems = problemsOf({ MFA_PROVIDER: 'twilio' });

    expect(problems).toEqual([
      'TWILIO_ACCOUNT_SID: is required when MFA_PROVIDER includes twilio',
      'TWILIO_AUTH_TOKEN: is required when MFA_PROVIDER includes twilio',
      'TWILIO_VERIFY_SERVICE_ID: is required when MFA_PROVIDER includes twilio',
    ]);
  });

  it('reads Twilio with https://verify.twilio.com as the default base URL', () => {
    expect(loadConfig({ MFA_PROVIDER: 'twilio', ...TWILIO_ENV }).providers).toEqual([
      {
        name: 'twilio',
        accountSid: TWILIO_ENV.TWILIO_ACCOUNT_SID,
        authToken: 'token',
        verifyServiceSid: TWILIO_ENV.TWILIO_VERIFY_SERVICE_ID,
        baseUrl: 'https://verify.twilio.com',
      },
    ]);
  });

  it('names each missing SignalWire variable, BASE_CALLBACK_URL included, when MFA_PROVIDER=signalwire', () => {
    const problems = problemsOf({ MFA_PROVIDER: 'signalwire' });

    expect(problems.map((problem) => problem.split(':')[0])).toEqual([
      'SIGNALWIRE_PROJECT',
      'SIGNALWIRE_TOKEN',
      'SIGNALWIRE_NUMBER',
      'SIGNALWIRE_SPACE',
      'BASE_CALLBACK_URL',
    ]);
    expect(problems.at(-1)).toMatch(/public address SignalWire calls back/);
  });

  it('builds the SignalWire base URL from the space, in either form the dashboard shows', () => {
    const short = loadConfig({ MFA_PROVIDER: 'signalwire', ...SIGNALWIRE_ENV }).providers;
    const long = loadConfig({
      MFA_PROVIDER: 'signalwire',
      ...SIGNALWIRE_ENV,
      SIGNALWIRE_SPACE: 'Example.signalwire.com',
    }).providers;

    expect(short).toEqual([
      {
        name: 'signalwire',
        projectId: 'project-id',
        token: 'PTtoken',
        fromNumber: '+12025550100',
        baseUrl: 'https://example.signalwire.com',
        callbackBaseUrl: 'https://keyhole.example.test',
      },
    ]);
    expect(long).toEqual([expect.objectContaining({ baseUrl: 'https://example.signalwire.com' })]);
  });

  it('lets SIGNALWIRE_BASE_URL stand in for the space', () => {
    const { SIGNALWIRE_SPACE: _space, ...withoutSpace } = SIGNALWIRE_ENV;
    const config = loadConfig({
      MFA_PROVIDER: 'signalwire',
      ...withoutSpace,
      SIGNALWIRE_BASE_URL: 'http://127.0.0.1:9/',
    });

    expect(config.providers).toEqual([
      expect.objectContaining({ name: 'signalwire', baseUrl: 'http://127.0.0.1:9' }),
    ]);
  });

  it('refuses a SignalWire space that is not a host name, and a number that is not E.164', () => {
    const problems = problemsOf({
      MFA_PROVIDER: 'signalwire',
      ...SIGNALWIRE_ENV,
      SIGNALWIRE_SPACE: 'evil.example/path?',
      SIGNALWIRE_NUMBER: '202-555-0100',
    });

    expect(problems.map((problem) => problem.split(':')[0])).toEqual([
      'SIGNALWIRE_SPACE',
      'SIGNALWIRE_NUMBER',
    ]);
  });

  it('names each missing Kandy variable when MFA_PROVIDER=kandy (the base URL is per tenant, no default)', () => {
    const problems = problemsOf({ MFA_PROVIDER: 'kandy' });

    expect(problems).toEqual([
      'KANDY_BASE_URL: is required when MFA_PROVIDER includes kandy',
      'KANDY_CLIENT_ID: is required when MFA_PROVIDER includes kandy',
      'KANDY_CLIENT_SECRET: is required when MFA_PROVIDER includes kandy',
    ]);
  });

  it('reads Kandy', () => {
    expect(loadConfig({ MFA_PROVIDER: 'kandy', ...KANDY_ENV }).providers).toEqual([
      {
        name: 'kandy',
        baseUrl: 'https://oauth-cpaas.example.test',
        clientId: 'PRIV-project',
        clientSecret: 'secret',
      },
    ]);
  });

  it('names every missing variable of every provider in the list at once', () => {
    const problems = problemsOf({ MFA_PROVIDER: 'twilio, kandy, signalwire', ...TWILIO_ENV });

    expect(problems.map((problem) => problem.split(':')[0])).toEqual([
      'SIGNALWIRE_PROJECT',
      'SIGNALWIRE_TOKEN',
      'SIGNALWIRE_NUMBER',
      'SIGNALWIRE_SPACE',
      'BASE_CALLBACK_URL',
      'KANDY_BASE_URL',
      'KANDY_CLIENT_ID',
      'KANDY_CLIENT_SECRET',
    ]);
  });

  it('reads a list of providers in order, each with its own settings, with a 30-second cooldown by default', () => {
    const config = loadConfig({
      MFA_PROVIDER: 'kandy,twilio,console',
      ...TWILIO_ENV,
      ...KANDY_ENV,
      ...SIGNALWIRE_ENV,
    });

    // SignalWire's variables are set but it is not listed: it gets no entry.
    expect(config.providers).toEqual([
      expect.objectContaining({ name: 'kandy', clientId: 'PRIV-project' }),
      expect.objectContaining({ name: 'twilio', authToken: 'token' }),
      { name: 'console' },
    ]);
    expect(config.providerCooldownSeconds).toBe(30);
  });

  it('reads MFA_PROVIDER_COOLDOWN_SECONDS and refuses nonsense', () => {
    expect(loadConfig({ MFA_PROVIDER_COOLDOWN_SECONDS: '120' }).providerCooldownSeconds).toBe(120);
    expect(problemsOf({ MFA_PROVIDER_COOLDOWN_SECONDS: 'soon' })).toEqual([
      'MFA_PROVIDER_COOLDOWN_SECONDS: must be a whole number',
    ]);
  });

  it('refuses an unknown provider, naming the ones it knows', () => {
    const problems = problemsOf({ MFA_PROVIDER: 'twilio,vonage' });
    expect(problems[0]).toBe(
      'MFA_PROVIDER: unknown provider "vonage"; use one of: console, bandwidth, twilio, signalwire, kandy',
    );
    // The known provider's missing variables are named in the same go.
    expect(problems.slice(1)).toEqual([
      expect.stringMatching(/^TWILIO_ACCOUNT_SID: is required/),
      expect.stringMatching(/^TWILIO_AUTH_TOKEN: is required/),
      expect.stringMatching(/^TWILIO_VERIFY_SERVICE_ID: is required/),
    ]);
  });

  it('does not ask for the variables of providers that are not chosen', () => {
    expect(() => loadConfig({ MFA_PROVIDER: 'console' })).not.toThrow();
  });
});
