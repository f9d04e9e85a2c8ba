import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readCookie } from '../../src/http/cookies.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage } from '../helpers/expectations.js';

// Anything a browser sends can be forged: a bad cookie, path or header must be ignored or refused
// with a 4xx, never turned into a 5xx.
describe('hostile input in cookies, paths and headers', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('ignores a channel cookie that is not valid percent-encoding', async () => {
    for (const value of ['%', '%zz', '%E0%A4%A', 'sms%']) {
      const res = await request(site.app).get('/login').set('Cookie', `mfa.channel=${value}`);
      expectPage(res, 200, /Log in/);
    }
  });

  it('still pre-selects a well-formed remembered channel', async () => {
    const res = await request(site.app).get('/login').set('Cookie', 'mfa.channel=voice');
    expect(res.text).toMatch(/value="voice"[^>]*checked/);
  });

  it('ignores malformed session and other cookies', async () => {
    const res = await request(site.app).get('/login').set('Cookie', 'mfa.sid=%; mfa.sid=s%3A%; =; ;;; junk');
    expectPage(res, 200, /Log in/);
  });

  it('answers a malformed path with a 4xx page', async () => {
    const res = await request(site.app).get('/%E0%A4%A');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});

describe('readCookie', () => {
  it('reads one cookie among several', () => {
    expect(readCookie('a=1; b=two%20words; c=3', 'b')).toBe('two words');
  });
  it('keeps "=" inside a value', () => {
    expect(readCookie('token=a=b==', 'token')).toBe('a=b==');
  });
  it('treats a value that is not valid percent-encoding as absent', () => {
    expect(readCookie('a=%', 'a')).toBeUndefined();
  });
  it('treats a missing header or cookie as absent', () => {
    expect(readCookie(undefined, 'a')).toBeUndefined();
    expect(readCookie('b=1', 'a')).toBeUndefined();
  });
});
