/**
 * The private-network guard. Crawl URLs come from untrusted users, so by default the fetcher
 * refuses every address of the special-purpose ranges that is not globally reachable (loopback,
 * private, link-local and cloud metadata, carrier-grade NAT, documentation, multicast, …), IPv4 and
 * IPv6, judging IPv4-mapped, IPv4-translated, NAT64 and 6to4 addresses by the IPv4 they embed; see
 * `SPECIAL_PURPOSE_RANGES`. The check runs on the address the connection will use: hostnames are
 * resolved by the guard's own `lookup`, which undici hands to `net.connect`, so a DNS answer that
 * changes between check and connect (rebinding) cannot slip through; IP literals are checked before
 * each request and redirect hop.
 */
import dns from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * How the guard treats an address inside a special-purpose range: refuse it outright, or judge it
 * by the IPv4 address it embeds, found in the 32 bits starting at bit `at` (0 = most significant).
 */
export type SpecialPurposeHandling = { action: 'refuse' } | { action: 'check-embedded-ipv4'; at: number };

export interface SpecialPurposeRange {
  /** Network address and prefix length, e.g. `169.254.0.0/16` or `64:ff9b::/96`. */
  readonly cidr: string;
  /** Human name, used in refusal messages ("…, a loopback address; …"). */
  readonly name: string;
  /** Where the range is defined. */
  readonly rfc: string;
  readonly handling: SpecialPurposeHandling;
}

const refuse = { action: 'refuse' } as const;
const ipv4At = (at: number) => ({ action: 'check-embedded-ipv4', at }) as const;

/**
 * Every range of the IANA IPv4 and IPv6 Special-Purpose Address Registries that is not globally
 * reachable (as of 2025), plus multicast. An address takes the most specific (longest-prefix)
 * range that contains it; an address in no range is public. `privateAddressKind` and
 * `embeddedIPv4` read this table alone.
 *
 * Deliberately wider than the registries, because a crawler has no business there: all of
 * 192.0.0.0/24 and 2001::/23 are refused, although a few anycast addresses inside them (192.0.0.9,
 * 192.0.0.10, 2001:1::1, 2001:1::2, …) are globally reachable.
 */
export const SPECIAL_PURPOSE_RANGES: readonly SpecialPurposeRange[] = [
  // IPv4
  { cidr: '0.0.0.0/8', name: 'this-network', rfc: 'RFC 791', handling: refuse },
  { cidr: '0.0.0.0/32', name: 'unspecified', rfc: 'RFC 1122', handling: refuse },
  { cidr: '10.0.0.0/8', name: 'private', rfc: 'RFC 1918', handling: refuse },
  { cidr: '100.64.0.0/10', name: 'carrier-grade NAT', rfc: 'RFC 6598', handling: refuse },
  { cidr: '127.0.0.0/8', name: 'loopback', rfc: 'RFC 1122', handling: refuse },
  { cidr: '169.254.0.0/16', name: 'link-local (cloud metadata)', rfc: 'RFC 3927', handling: refuse },
  { cidr: '172.16.0.0/12', name: 'private', rfc: 'RFC 1918', handling: refuse },
  // Includes 192.0.0.0/29 (DS-Lite), 192.0.0.8/32, 192.0.0.9/32, 192.0.0.10/32, 192.0.0.170/31 (NAT64 discovery).
  { cidr: '192.0.0.0/24', name: 'IETF protocol assignment', rfc: 'RFC 6890', handling: refuse },
  { cidr: '192.0.2.0/24', name: 'documentation (TEST-NET-1)', rfc: 'RFC 5737', handling: refuse },
  { cidr: '192.88.99.0/24', name: '6to4 relay anycast (deprecated)', rfc: 'RFC 3068, RFC 7526', handling: refuse },
  { cidr: '192.168.0.0/16', name: 'private', rfc: 'RFC 1918', handling: refuse },
  { cidr: '198.18.0.0/15', name: 'benchmarking', rfc: 'RFC 2544', handling: refuse },
  { cidr: '198.51.100.0/24', name: 'documentation (TEST-NET-2)', rfc: 'RFC 5737', handling: refuse },
  { cidr: '203.0.113.0/24', name: 'documentation (TEST-NET-3)', rfc: 'RFC 5737', handling: refuse },
  { cidr: '224.0.0.0/4', name: 'multicast', rfc: 'RFC 5771', handling: refuse },
  { cidr: '240.0.0.0/4', name: 'reserved', rfc: 'RFC 1112', handling: refuse },
  { cidr: '255.255.255.255/32', name: 'limited broadcast', rfc: 'RFC 919, RFC 8190', handling: refuse },
  // IPv6
  { cidr: '::/128', name: 'unspecified', rfc: 'RFC 4291', handling: refuse },
  { cidr: '::1/128', name: 'loopback', rfc: 'RFC 4291', handling: refuse },
  { cidr: '::/96', name: 'IPv4-compatible (deprecated)', rfc: 'RFC 4291', handling: ipv4At(96) },
  { cidr: '::ffff:0:0/96', name: 'IPv4-mapped', rfc: 'RFC 4291', handling: ipv4At(96) },
  { cidr: '::ffff:0:0:0/96', name: 'IPv4-translated', rfc: 'RFC 2765, RFC 6145', handling: ipv4At(96) },
  { cidr: '64:ff9b::/96', name: 'NAT64 well-known prefix', rfc: 'RFC 6052', handling: ipv4At(96) },
  { cidr: '64:ff9b:1::/48', name: 'local-use NAT64', rfc: 'RFC 8215', handling: refuse },
  { cidr: '100::/64', name: 'discard-only', rfc: 'RFC 6666', handling: refuse },
  { cidr: '100:0:0:1::/64', name: 'dummy prefix', rfc: 'RFC 9780', handling: refuse },
  { cidr: '2001::/23', name: 'IETF protocol assignment', rfc: 'RFC 2928', handling: refuse },
  { cidr: '2001::/32', name: 'Teredo', rfc: 'RFC 4380', handling: refuse },
  { cidr: '2001:2::/48', name: 'benchmarking', rfc: 'RFC 5180', handling: refuse },
  { cidr: '2001:db8::/32', name: 'documentation', rfc: 'RFC 3849', handling: refuse },
  { cidr: '2002::/16', name: '6to4', rfc: 'RFC 3056', handling: ipv4At(16) },
  { cidr: '3fff::/20', name: 'documentation', rfc: 'RFC 9637', handling: refuse },
  { cidr: '5f00::/16', name: 'SRv6 SIDs', rfc: 'RFC 9602', handling: refuse },
  { cidr: 'fc00::/7', name: 'unique local (private)', rfc: 'RFC 4193', handling: refuse },
  { cidr: 'fe80::/10', name: 'link-local', rfc: 'RFC 4291', handling: refuse },
  { cidr: 'fec0::/10', name: 'site-local (deprecated)', rfc: 'RFC 3879', handling: refuse },
  { cidr: 'ff00::/8', name: 'multicast', rfc: 'RFC 4291', handling: refuse },
];

/** An IP address as an unsigned integer of `width` bits (32 or 128), or null if it is not one. */
function parseAddress(address: string): { value: bigint; width: 32 | 128 } | null {
  const family = isIP(address);
  if (family === 4) {
    const value = address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { value, width: 32 };
  }
  if (family !== 6) return null;
  let text = address.replace(/%.*$/, ''); // a zone index (fe80::1%eth0) says nothing about the range
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === null ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  const value = [...left, ...fill, ...right].reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group || '0', 16)), 0n);
  return { value, width: 128 };
}

interface CompiledRange {
  range: SpecialPurposeRange;
  width: 32 | 128;
  prefix: number;
  network: bigint;
  mask: bigint;
}

// Most specific first, so the first hit is the longest-prefix match.
const COMPILED: readonly CompiledRange[] = SPECIAL_PURPOSE_RANGES.map((range): CompiledRange => {
  const [address, length] = range.cidr.split('/') as [string, string];
  const parsed = parseAddress(address);
  const prefix = Number(length);
  if (parsed === null || !Number.isInteger(prefix) || prefix < 0 || prefix > parsed.width) throw new Error(`netguard: bad CIDR ${range.cidr}`);
  const all = (1n << BigInt(parsed.width)) - 1n;
  const mask = all ^ ((1n << BigInt(parsed.width - prefix)) - 1n);
  if ((parsed.value & mask) !== parsed.value) throw new Error(`netguard: ${range.cidr} has host bits set`);
  const { handling } = range;
  if (handling.action === 'check-embedded-ipv4' && (parsed.width !== 128 || handling.at < prefix || handling.at + 32 > 128)) {
    throw new Error(`netguard: ${range.cidr} cannot embed an IPv4 address at bit ${handling.at}`);
  }
  return { range, width: parsed.width, prefix, network: parsed.value, mask };
}).sort((a, b) => b.prefix - a.prefix);

/** The most specific special-purpose range holding `address`, and the address as a number. */
function classify(address: string): { hit: CompiledRange | null; value: bigint } | null {
  const parsed = parseAddress(address);
  if (parsed === null) return null;
  const hit = COMPILED.find((r) => r.width === parsed.width && (parsed.value & r.mask) === r.network) ?? null;
  return { hit, value: parsed.value };
}

function embedded(hit: CompiledRange, value: bigint): string | null {
  const { handling } = hit.range;
  if (handling.action !== 'check-embedded-ipv4') return null;
  const n = Number((value >> BigInt(128 - handling.at - 32)) & 0xffffffffn);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * The IPv4 address embedded in an IPv6 address whose special-purpose range carries one
 * (IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64 well-known prefix, 6to4), or null.
 */
export function embeddedIPv4(address: string): string | null {
  const found = classify(address);
  return found?.hit ? embedded(found.hit, found.value) : null;
}

/** Why an IP address may not be crawled (e.g. 'loopback'), or null when it is public. */
export function privateAddressKind(address: string): string | null {
  const found = classify(address);
  if (found === null) return 'not an IP address';
  const { hit, value } = found;
  if (hit === null) return null;
  const inner = embedded(hit, value);
  if (hit.range.handling.action === 'refuse' || inner === null) return hit.range.name;
  const kind = privateAddressKind(inner);
  return kind === null ? null : `${kind} (IPv4 inside IPv6)`;
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
