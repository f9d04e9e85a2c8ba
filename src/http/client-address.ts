import { isIP } from 'node:net';
import type { Request, RequestHandler } from 'express';
import type { Logger } from '../logger.js';

/**
 * Who the client is, for every per-address limit (login throttle, flood guards, send limits).
 *
 * An IPv4 address is one client. An IPv6 client is its /64: one home or phone gets a whole /64 and
 * can pick any of its 2^64 addresses, so counting full IPv6 addresses would hand each client an
 * endless supply of fresh budgets.
 */

/** The key of every value that is not an IP address: such values share one budget, never get fresh ones. */
const NOT_AN_ADDRESS_KEY = 'not-an-ip';
const MAX_SAMPLE_CHARS = 40;

/**
 * Drops an IPv6 zone id ("fe80::1%eth0"): it names a network interface of one host, means nothing
 * to a limit or a log, and Node's isIP accepts any text after the "%" (3 KB of it too).
 */
function withoutZone(address: string): string {
  const percent = address.indexOf('%');
  return percent === -1 ? address : address.slice(0, percent);
}

/** The address itself (zone id dropped) if it is an IPv4 or IPv6 address, otherwise undefined. */
export function toIpAddress(value: string | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const address = withoutZone(value);
  return isIP(address) === 0 ? undefined : address;
}

// "203.0.113.66:40000" and "[2001:db8::1]:443": Azure Application Gateway, IIS ARR and others add
// the client's port. An unbracketed IPv6 address cannot carry one ("2001:db8::1:443" is itself an
// address), so only these two forms are read as address and port.
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED_IPV6 = /^\[([0-9A-Fa-f:.]+(?:%[^\]]*)?)\](?::\d{1,5})?$/;

/**
 * The IP address in a forwarded client address, without the port some proxies add; undefined if
 * it is not an IP address, with or without a port.
 */
export function parseForwardedAddress(value: string | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const address = IPV4_WITH_PORT.exec(value)?.[1] ?? BRACKETED_IPV6.exec(value)?.[1] ?? value;
  return toIpAddress(address);
}

/** The eight 16-bit groups of an IPv6 address already checked by isIP (no zone id). */
function ipv6Groups(address: string): number[] {
  let text = address;
  // A dotted IPv4 tail ("::ffff:192.0.2.1") is the last two groups written another way.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const gap = text.indexOf('::');
  if (gap === -1) return parse(text);
  const head = parse(text.slice(0, gap));
  const rest = parse(text.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as "::". */
function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < groups.length;) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < groups.length && groups[end] === 0) end += 1;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export type ParsedClient = { family: 4; key: string } | { family: 6; groups: number[] } | null;

const CLIENT_PREFIX_SUFFIX = '/64';

/** An address, or a key clientKeyOf made ("2001:db8:1:2::/64"), read as IPv4 text or IPv6 groups. */
export function parseClient(value: string): ParsedClient {
  const text = value.endsWith(CLIENT_PREFIX_SUFFIX) ? value.slice(0, -CLIENT_PREFIX_SUFFIX.length) : value;
  const ip = toIpAddress(text);
  if (ip === undefined || (text !== value && isIP(ip) !== 6)) return null;
  if (isIP(ip) === 4) return { family: 4, key: ip };
  const groups = ipv6Groups(ip);
  const isIpv4Mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (isIpv4Mapped) {
    const [high, low] = [groups[6]!, groups[7]!];
    return { family: 4, key: `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}` };
  }
  return { family: 6, groups };
}

/** The first `groupCount` groups kept, the rest zero, as "prefix::/bits". */
const ipv6Prefix = (groups: number[], groupCount: number) =>
  `${formatIpv6([...groups.slice(0, groupCount), ...new Array<number>(8 - groupCount).fill(0)])}/${groupCount * 16}`;

/**
 * The key every per-address limit counts by: an IPv4 address as it is (also when written as the
 * IPv4-mapped IPv6 "::ffff:a.b.c.d"), an IPv6 address as its /64 in canonical form
 * ("2001:db8:1:2::/64"). Anything that is not an IP address gets one shared key, so varying junk
 * never buys a fresh budget. A key is its own key.
 */
export function clientKeyOf(address: string): string {
  const client = parseClient(address);
  if (client === null) return NOT_AN_ADDRESS_KEY;
  return client.family === 4 ? client.key : ipv6Prefix(client.groups, 4);
}

export interface ClientNetworkKeys {
  /** The client's own key (clientKeyOf): an IPv4 address or an IPv6 /64. */
  client: string;
  /**
   * For IPv6, the /48 the client's /64 sits in ("2001:db8:1::/48"): the usual allocation to one
   * site (a home or office on some ISPs, every tunnel-broker customer), so 65,536 /64s one party
   * can rotate through. Limits per /48 are wider than per /64 and catch that rotation.
   *
   * null for IPv4. An IPv4 address is scarce and costs an attacker each time; attackers who rotate
   * rent addresses spread over many networks (residential proxies, clouds), whereas one /24 is more
   * often shared by unrelated people (a carrier's NAT pool, a campus), whom a /24 limit would
   * refuse together.
   */
  site: string | null;
}

/** The keys a client counts under: its own, and the wider network an attacker could rotate within. */
export function clientNetworkKeysOf(addressOrClientKey: string): ClientNetworkKeys {
  const client = parseClient(addressOrClientKey);
  if (client === null) return { client: NOT_AN_ADDRESS_KEY, site: null };
  if (client.family === 4) return { client: client.key, site: null };
  return { client: ipv6Prefix(client.groups, 4), site: ipv6Prefix(client.groups, 3) };
}

/** The key of the client that sent this request (after createClientAddress has checked req.ip). */
export function clientKeyOfRequest(req: Request): string {
  return clientKeyOf(req.ip ?? '');
}

/** Set on a request whose forwarded address was junk, so req.ip fell back to the connection's. */
const FELL_BACK_TO_CONNECTION = Symbol('client address fell back to the connection');
type CheckedRequest = Request & { [FELL_BACK_TO_CONNECTION]?: true };

/**
 * False when the forwarded client address was not an IP address and req.ip is only the
 * connection's, which behind a proxy is the proxy's own (loopback, when it runs on this host).
 * Such a request must not pass for a local one.
 */
export function isClientAddressTrustworthy(req: Request): boolean {
  return (req as CheckedRequest)[FELL_BACK_TO_CONNECTION] !== true;
}

/**
 * Makes req.ip an IP address, always, without the port some proxies add. Under "trust proxy",
 * Express takes req.ip from X-Forwarded-For as it stands: a proxy that forwards what the client sent
 * (or a hop count larger than the real chain) lets that be any text, and an attack stored 3 KB of it
 * in the audit log, shown on /admin. Such a value is ignored in favour of the connection's own
 * address (and the request marked, see isClientAddressTrustworthy), and the operator is told once
 * per process (not per request: that would let a client fill the log).
 */
export function createClientAddress(deps: { logger: Logger }): RequestHandler {
  let warned = false;
  return (req, _res, next) => {
    const derived = req.ip;
    let address = parseForwardedAddress(derived);
    if (address === undefined) {
      address = toIpAddress(req.socket.remoteAddress);
      (req as CheckedRequest)[FELL_BACK_TO_CONNECTION] = true;
      if (!warned && derived !== req.socket.remoteAddress) {
        warned = true;
        deps.logger.warn(
          {
            forwardedSample: String(derived).slice(0, MAX_SAMPLE_CHARS),
            forwardedLength: String(derived).length,
            connectionAddress: address,
          },
          'X-Forwarded-For gave a client address that is not an IP address; using the connection address instead. ' +
            'The proxy in front of this site passes on what clients send, or TRUST_PROXY trusts too many hops (see README, "Behind a proxy"). ' +
            'Logged once per process.',
        );
      }
    }
    // Every req.ip reader (audit log, request log, limits) gets the checked address without each
    // having to remember to check: an own property shadows Express's getter on the prototype.
    Object.defineProperty(req, 'ip', { value: address, configurable: true, enumerable: true });
    next();
  };
}
