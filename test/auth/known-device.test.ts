import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createKnownDevices, type KnownDevices } from '../../src/auth/known-device.js';
import { TEST_SESSION_SECRET } from '../helpers/create-test-app.js';
import { createTestClock } from '../helpers/clock.js';
import { setCookieHeaders } from '../helpers/expectations.js';

/** The Set-Cookie header a browser receives when `knownDevices` remembers user `userId`. */
async function rememberedCookie(knownDevices: KnownDevices, userId: number): Promise<string> {
  const app = express();
  app.get('/', (_req, res) => {
    knownDevices.remember(res, userId);
    res.end();
  });
  const [cookie] = setCookieHeaders(await request(app).get('/'));
  return cookie!;
}

/** "name=value" as the browser sends it back. */
const sentBack = (setCookie: string) => setCookie.split(';')[0]!;

describe('the known-device cookie', () => {
  const clock = createTestClock();
  const knownDevices = createKnownDevices({ secret: TEST_SESSION_SECRET, clock, isProduction: false });

  it('is HttpOnly, SameSite=Lax and long-lived', async () => {
    const cookie = await rememberedCookie(knownDevices, 7);
    expect(cookie).toMatch(/^mfa\.device=v1\.7\.\d+\.[\w-]{43};/);
    expect(cookie).toMatch(/; Max-Age=31536000; /);
    expect(cookie).toMatch(/; Path=\/; /);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).not.toMatch(/; Secure/);
  });

  it('is Secure with a __Host- name in production', async () => {
    const production = createKnownDevices({ secret: TEST_SESSION_SECRET, clock, isProduction: true });
    const cookie = await rememberedCookie(production, 7);
    expect(cookie).toMatch(/^__Host-mfa\.device=/);
    expect(cookie).toMatch(/; Secure/);
    expect(production.recognises(sentBack(cookie), 7)).toBe(true);
  });

  it('recognises the browser for its own user only', async () => {
    const cookie = sentBack(await rememberedCookie(knownDevices, 7));
    expect(knownDevices.recognises(`mfa.sid=abc; ${cookie}; other=1`, 7)).toBe(true);
    expect(knownDevices.recognises(cookie, 8)).toBe(false);
  });

  it('refuses a cookie whose user id was changed', async () => {
    // Threat: turning one's own known-device cookie into someone else's.
    const cookie = sentBack(await rememberedCookie(knownDevices, 7));
    expect(knownDevices.recognises(cookie.replace('v1.7.', 'v1.8.'), 8)).toBe(false);
  });

  it('refuses a cookie signed with another secret', async () => {
    const elsewhere = createKnownDevices({
      secret: 'another-secret-that-is-at-least-32-characters',
      clock,
      isProduction: false,
    });
    const cookie = sentBack(await rememberedCookie(elsewhere, 7));
    expect(knownDevices.recognises(cookie, 7)).toBe(false);
  });

  it('expires after a year', async () => {
    const ownClock = createTestClock();
    const devices = createKnownDevices({ secret: TEST_SESSION_SECRET, clock: ownClock, isProduction: false });
    const cookie = sentBack(await rememberedCookie(devices, 7));
    ownClock.advanceMinutes(364 * 24 * 60);
    expect(devices.recognises(cookie, 7)).toBe(true);
    ownClock.advanceMinutes(2 * 24 * 60);
    expect(devices.recognises(cookie, 7)).toBe(false);
  });

  it.each([
    undefined,
    '',
    'mfa.device',
    'mfa.device=',
    'mfa.device=%',
    'mfa.device=%E0%A4%A',
    'mfa.device=v1.7.1.short',
    `mfa.device=v1.7.${'9'.repeat(400)}.${'A'.repeat(43)}`,
    `mfa.device=${'v1.'.repeat(5000)}`,
    ';;;=;=',
  ])('ignores a malformed header without throwing: %j', (header) => {
    expect(knownDevices.recognises(header, 7)).toBe(false);
  });
});
