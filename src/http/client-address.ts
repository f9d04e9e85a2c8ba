import { isIPv4, isIPv6 } from 'node:net';

/**
 * The key per-address limits count a client by. An IPv6 client usually holds a whole /64 (a home
 * or a phone gets one), so counting full addresses would give one person 2^64 budgets: IPv6 is
 * counted by its /64. IPv4-mapped IPv6 (::ffff:192.0.2.1) is the IPv4 client it names.
 *
 * (Issue 7 brings the full version with validated forwarded addresses; this is the same function.)
 */
export function clientKeyOf(address: string): string {
  const trimmed = address.trim();
  if (isIPv4(trimmed)) return trimmed;
  const withoutZone = trimmed.split('%')[0]!;
  if (!isIPv6(withoutZone)) return trimmed === '' ? 'unknown' : trimmed;
  const groups = expandIPv6(withoutZone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(withoutZone);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail included). */
function expandIPv6(address: string): number[] {
  let text = address.toLowerCase();
  const ipv4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (ipv4Tail) {
    const [a, b, c, d] = ipv4Tail[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -ipv4Tail[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (part: string | undefined) =>
    part ? part.split(':').map((group) => parseInt(group, 16)) : [];
  const front = parse(head);
  const back = parse(tail);
  const zeros = tail === undefined ? [] : new Array<number>(8 - front.length - back.length).fill(0);
  return [...front, ...zeros, ...back];
}
