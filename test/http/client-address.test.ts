import { isIP } from 'node:net';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { clientKeyOf, clientNetworkKeysOf, parseForwardedAddress } from '../../src/http/client-address.js';
import { createBrowser, csrfTokenIn } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { GOOD_PASSWORD, register } from '../helpers/flows.js';

describe('clientKeyOf', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['::ffff:c000:201', '192.0.2.1'],
    ['0:0:0:0:0:ffff:192.0.2.1', '192.0.2.1'],
  ])('keeps an IPv4 address as it is, however written: %s', (address, key) => {
    expect(clientKeyOf(address)).toBe(key);
  });

  it.each([
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:0000:0000:0000:0001', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::/64'],
    ['2001:db8:0:0:1::', '2001:db8::/64'],
    ['2001:db8:0:1::5', '2001:db8:0:1::/64'],
    ['1:0:0:2:3::', '1:0:0:2::/64'],
    ['::1', '::/64'],
    ['::', '::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
  ])('reduces an IPv6 address to its /64 in canonical form: %s', (address, key) => {
    expect(clientKeyOf(address)).toBe(key);
  });

  it('drops a zone id of any length, and gives 3 KB of text the shared key of junk', () => {
    expect(clientKeyOf(`fe80::1%${'x'.repeat(3000)}`)).toBe('fe80::/64');
    expect(clientKeyOf('x'.repeat(3000))).toBe(clientKeyOf('not an address'));
  });

  it('gives 15 addresses in one /64 a single key, and the next /64 another', () => {
    const keys = new Set(
      Array.from({ length: 15 }, (_, i) => clientKeyOf(`2001:db8:aa:bb:${(i + 1).toString(16)}::${i}`)),
    );
    expect([...keys]).toEqual(['2001:db8:aa:bb::/64']);
    expect(clientKeyOf('2001:db8:aa:bc::1')).toBe('2001:db8:aa:bc::/64');
  });

  it.each([
    '',
    'not an address',
    '192.0.2.1:8080',
    '[2001:db8::1]',
    '01.2.3.4',
    '256.1.1.1',
    '1::2::3',
    ' 192.0.2.1',
  ])('gives anything that is not an IP address one shared key: %j', (garbage) => {
    // Threat: varying junk to get a fresh budget each time.
    expect(clientKeyOf(garbage)).toBe(clientKeyOf('also not an address'));
    expect(isIP(clientKeyOf(garbage))).toBe(0);
  });
});

describe('clientNetworkKeysOf', () => {
  it('gives an IPv6 client its /64 and the /48 it sits in, from an address or from its key', () => {
    const keys = { client: '2001:db8:1:2::/64', site: '2001:db8:1::/48' };
    expect(clientNetworkKeysOf('2001:db8:1:2:3:4:5:6')).toEqual(keys);
    expect(clientNetworkKeysOf('2001:db8:1:2::/64')).toEqual(keys);
    expect(clientNetworkKeysOf('2001:db8:1:ffff::1').site).toBe('2001:db8:1::/48');
    expect(clientNetworkKeysOf('2001:db8:2::1').site).toBe('2001:db8:2::/48');
  });

  it('gives an IPv4 client no wider network, however written', () => {
    expect(clientNetworkKeysOf('192.0.2.1')).toEqual({ client: '192.0.2.1', site: null });
    expect(clientNetworkKeysOf('::ffff:192.0.2.1')).toEqual({ client: '192.0.2.1', site: null });
  });

  it('gives junk the shared key and no network, also junk that ends in /64', () => {
    expect(clientNetworkKeysOf('not an address')).toEqual({ client: clientKeyOf('junk'), site: null });
    expect(clientNetworkKeysOf('192.0.2.1/64')).toEqual({ client: clientKeyOf('junk'), site: null });
  });

  it('keeps a key clientKeyOf made as it is', () => {
    expect(clientKeyOf(clientKeyOf('2001:db8:1:2::9'))).toBe('2001:db8:1:2::/64');
    expect(clientKeyOf(clientKeyOf('192.0.2.1'))).toBe('192.0.2.1');
  });
});

describe('parseForwardedAddress', () => {
  it.each([
    ['203.0.113.66', '203.0.113.66'],
    ['203.0.113.66:40000', '203.0.113.66'],
    ['2001:db8::1', '2001:db8::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[fe80::1%eth0]:443', 'fe80::1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
  ])('reads %j as the address %j, without the port some proxies add', (value, address) => {
    expect(parseForwardedAddress(value)).toBe(address);
  });

  it.each([
    'unknown',
    '203.0.113.66:',
    '203.0.113.66:port',
    '203.0.113.66:123456',
    '203.0.113.66:80:80',
    '256.0.0.1:80',
    '[2001:db8::1]:',
    '[2001:db8::1]:443:1',
    '[not-an-address]:443',
    '[[2001:db8::1]]',
    '::ffff:192.0.2.1:80',
  ])('gives no address for %j', (value) => {
    expect(parseForwardedAddress(value)).toBeUndefined();
  });
});

describe('the client address behind a proxy', () => {
  let site: TestApp;
  afterEach(() => site.close());

  it('never stores a forwarded value that is not an IP address, and warns the operator once', async () => {
    // Threat: 3 KB of text in X-Forwarded-For, stored in the audit log and shown on /admin.
    const logLines: string[] = [];
    site = await createTestApp({ logLines });
    const junk = `<b>${'x'.repeat(3000)}</b>`;
    const agent = request.agent(site.app);
    const token = csrfTokenIn((await agent.get('/login').set('X-Forwarded-For', junk)).text);
    for (let i = 0; i < 3; i += 1) {
      const res = await agent
        .post('/login')
        .set('X-Forwarded-For', junk)
        .type('form')
        .send({ username: 'nobody-here', password: 'wrong password', _csrf: token });
      expect(res.status).toBe(401);
    }

    const events = await site.audit.recent();
    expect(events).toHaveLength(3);
    for (const event of events) {
      expect(event.ip).toMatch(/^(::ffff:)?127\.0\.0\.1$|^::1$/);
    }
    const warnings = logLines.filter((line) => line.includes('X-Forwarded-For gave a client address'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, forwardedLength: junk.length });
    expect(logLines.join('\n')).not.toContain('x'.repeat(100));
  });

  it('counts clients forwarded as IP:port by their own addresses, not as the proxy', async () => {
    // Threat: Azure Application Gateway, IIS ARR and others forward "203.0.113.66:40000"; read as
    // junk, every client would share the proxy's budget, and one stranger would lock out everyone.
    site = await createTestApp();
    await register(createBrowser(site.app), { username: 'owner' });
    const registeredAt = site.clock.now();
    site.clock.advance(1000);
    const loginFrom = async (forwarded: string) => {
      const agent = request.agent(site.app);
      const token = csrfTokenIn((await agent.get('/login').set('X-Forwarded-For', forwarded)).text);
      return (username: string, password: string) =>
        agent
          .post('/login')
          .set('X-Forwarded-For', forwarded)
          .type('form')
          .send({ username, password, _csrf: token });
    };
    const stranger = await loginFrom('203.0.113.66:40000');
    for (let i = 0; i < 10; i += 1) expectPage(await stranger(`made-up-${i}`, 'wrong password'), 401);
    expectPage(await stranger('owner', GOOD_PASSWORD), 429, /Too many failed attempts/);

    const owner = await loginFrom('[2001:db8::20]:51515');
    expectRedirect(await owner('owner', GOOD_PASSWORD), '/verify');
    const sinceRegistering = (await site.audit.recent(50)).filter((event) => event.at > registeredAt);
    const addresses = new Set(sinceRegistering.map((event) => event.ip));
    expect(addresses).toEqual(new Set(['203.0.113.66', '2001:db8::20']));
  });

  it('keeps a forwarded IP address from a trusted proxy as the client address', async () => {
    site = await createTestApp();
    const agent = request.agent(site.app);
    const token = csrfTokenIn((await agent.get('/login')).text);
    await agent
      .post('/login')
      .set('X-Forwarded-For', '198.51.100.23')
      .type('form')
      .send({ username: 'nobody-here', password: 'wrong password', _csrf: token });
    expect((await site.audit.recent())[0]).toMatchObject({
      type: 'login_password_failed',
      ip: '198.51.100.23',
    });
  });
});

describe('the flood guards', () => {
  let site: TestApp;
  afterEach(() => site.close());

  const pageFrom = (address: string) => request(site.app).get('/login').set('X-Forwarded-For', address);

  it('count 15 IPv6 addresses in one /64 as one client', async () => {
    // Threat: an IPv6 client picking a fresh address from its /64 for every request.
    site = await createTestApp({ requestsPerMinute: 14 });
    const statuses: number[] = [];
    for (let i = 1; i <= 15; i += 1) statuses.push((await pageFrom(`2001:db8:0:1::${i}`)).status);
    expect(statuses.slice(0, 14)).toEqual(Array(14).fill(200));
    expect(statuses[14]).toBe(429);
    // The neighbouring /64 (same /56) is someone else.
    expect((await pageFrom('2001:db8:0:2::1')).status).toBe(200);
  });

  it('give no fresh budget to forwarded values that are not IP addresses', async () => {
    site = await createTestApp({ requestsPerMinute: 5 });
    const statuses: number[] = [];
    for (let i = 1; i <= 6; i += 1) statuses.push((await pageFrom(`junk-${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });
});
