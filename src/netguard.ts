/**
 * The private-network guard. Crawl URLs come from untrusted users, so by default the fetcher
 * refuses loopback, private, link-local, carrier-grade NAT, multicast, unspecified, reserved and
 * cloud-metadata addresses, IPv4 and IPv6 (IPv4-mapped, NAT64 and 6to4 forms included). The check
 * runs on the address the connection will use: hostnames are resolved by the guard's own `lookup`,
 * which undici hands to `net.connect`, so a DNS answer that changes between check and connect
 * (rebinding) cannot slip through; IP literals are checked before each request and redirect hop.
 */
import dns from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

const V4_RANGES: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignment'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];
const V6_RANGES: Array<[string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'discard'],
  ['2001::', 32, 'Teredo'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique local (private)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

const blocked = new BlockList();
for (const [net, prefix] of V4_RANGES) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of V6_RANGES) blocked.addSubnet(net, prefix, 'ipv6');

/** Expands an IPv6 address into eight 16-bit groups. */
function groups(address: string): number[] {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === null ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => parseInt(g || '0', 16));
}

/** The IPv4 address embedded in an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address. */
export function embeddedIPv4(address: string): string | null {
  const g = groups(address);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && (g[5] === 0xffff || g[5] === 0) && !(g[5] === 0 && g[6] === 0)) return v4(g[6]!, g[7]!); // ::ffff:a.b.c.d, ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6]!, g[7]!); // 64:ff9b::/96
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!); // 6to4
  return null;
}

/** Why an IP address may not be crawled (e.g. 'loopback'), or null when it is public. */
export function privateAddressKind(address: string): string | null {
  const family = isIP(address);
  if (family === 4) {
    if (!blocked.check(address, 'ipv4')) return null;
    const n = address.split('.').map(Number);
    const hit = V4_RANGES.find(([net, prefix]) => {
      const base = net.split('.').map(Number);
      const bits = (xs: number[]) => ((xs[0]! << 24) | (xs[1]! << 16) | (xs[2]! << 8) | xs[3]!) >>> 0;
      const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
      return ((bits(n) & mask) >>> 0) === ((bits(base) & mask) >>> 0);
    });
    return hit?.[2] ?? 'reserved';
  }
  if (family === 6) {
    const inner = embeddedIPv4(address);
    if (inner !== null) {
      const kind = privateAddressKind(inner);
      return kind === null ? null : `${kind} (IPv4 inside IPv6)`;
    }
    if (!blocked.check(address, 'ipv6')) return null;
    const hit = V6_RANGES.find(([net, prefix]) => {
      const one = new BlockList();
      one.addSubnet(net, prefix, 'ipv6');
      return one.check(address, 'ipv6');
    });
    return hit?.[2] ?? 'reserved';
  }
  return 'not an IP address';
}

/** `allowPrivateNetwork`: true, false, or a list of host names, IPs and CIDRs. */
export type PrivateNetworkAllowance = boolean | readonly string[];

/** Error code of a refused connection; the fetcher maps it to the page error `blocked`. */
export const BLOCKED_CODE = 'ERR_CRAWL_ENGINE_BLOCKED';

function refusal(message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(message);
  error.code = BLOCKED_CODE;
  return error;
}

/** Checks an allowance entry; returns an error message or null. */
export function invalidAllowanceEntry(entry: string): string | null {
  const [address, prefix, extra] = entry.split('/');
  if (extra !== undefined) return `${JSON.stringify(entry)} is not a host name, IP or CIDR`;
  if (prefix !== undefined) {
    const family = isIP(address!);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || !/^\d+$/.test(prefix) || Number(prefix) > max) return `${JSON.stringify(entry)} is not a valid CIDR`;
    return null;
  }
  if (isIP(address!) !== 0) return null;
  return /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i.test(entry)
    ? null
    : `${JSON.stringify(entry)} is not a host name, IP or CIDR`;
}

export interface AddressGuard {
  /** A refusal reason for a URL host that is an IP literal (or a host allowed by name), or null. */
  checkHost(hostname: string): string | null;
  /** A `lookup` for `net.connect` that refuses private answers; undefined when all is allowed. */
  lookup: LookupFunction | undefined;
}

export function createAddressGuard(allow: PrivateNetworkAllowance, resolve: typeof dns.lookup = dns.lookup): AddressGuard {
  if (allow === true) return { checkHost: () => null, lookup: undefined };
  const names = new Set<string>();
  const allowed = new BlockList();
  for (const entry of allow === false ? [] : allow) {
    const [address, prefix] = entry.split('/');
    const family = isIP(address!);
    if (family === 0) names.add(entry.toLowerCase().replace(/\.$/, ''));
    else if (prefix !== undefined) allowed.addSubnet(address!, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    else allowed.addAddress(address!, family === 4 ? 'ipv4' : 'ipv6');
  }
  const addressRefusal = (address: string, host: string): string | null => {
    const family = isIP(address);
    if (family !== 0 && allowed.check(address, family === 4 ? 'ipv4' : 'ipv6')) return null;
    const kind = privateAddressKind(address);
    if (kind === null) return null;
    const via = host === address ? '' : `${host} resolves to `;
    return `${via}${address}, a ${kind} address; set fetch.allowPrivateNetwork to allow it`;
  };
  const nameAllowed = (host: string) => names.has(host.toLowerCase().replace(/\.$/, ''));

  const lookup = ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error);
      const list = addresses as dns.LookupAddress[];
      if (!nameAllowed(hostname)) {
        for (const { address } of list) {
          const reason = addressRefusal(address, hostname);
          if (reason !== null) return callback(refusal(reason));
        }
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (first === undefined) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }));
      return callback(null, first.address, first.family);
    });
  }) as unknown as LookupFunction;

  return {
    checkHost(hostname) {
      const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
      if (nameAllowed(bare)) return null;
      return isIP(bare) === 0 ? null : addressRefusal(bare, bare);
    },
    lookup,
  };
}
