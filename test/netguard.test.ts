// Over 300 lines in one file: every test is about the network guard (src/crawl/netguard.ts); the range-table tests, most of it, share the CIDR helpers and resolver stub.
import type dns from 'node:dns';
import { BlockList, Socket } from 'node:net';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/core/engine.js';
import { createFetcher } from '../src/crawl/fetcher.js';
import {
  BLOCKED_CODE,
  createAddressGuard,
  embeddedIPv4,
  invalidAllowanceEntry,
  privateAddressKind,
  SPECIAL_PURPOSE_RANGES,
  type SpecialPurposeRange,
} from '../src/crawl/netguard.js';
import { allResults } from './helpers/engine.js';
import { html, serve, type TestServer } from './helpers/server.js';

describe('privateAddressKind()', () => {
  test.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'limited broadcast'],
    ['240.0.0.1', 'reserved'],
    ['0.1.2.3', 'this-network'],
    ['192.0.0.170', 'IETF protocol assignment'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fd00:ec2::254', 'unique local (private)'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:7f00:1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:a9fe:a9fe', 'link-local (cloud metadata) (IPv4 inside IPv6)'],
    ['64:ff9b::a00:1', 'private (IPv4 inside IPv6)'],
    ['2002:c0a8:101::1', 'private (IPv4 inside IPv6)'],
    ['::ffff:0:a9fe:a9fe', 'link-local (cloud metadata) (IPv4 inside IPv6)'],
    ['::ffff:0:127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['::127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['::2', 'this-network (IPv4 inside IPv6)'],
    ['64:ff9b:1::a9fe:a9fe', 'local-use NAT64'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2001:2::1', 'benchmarking'],
    ['2001:1::1', 'IETF protocol assignment'],
    ['3fff::1', 'documentation'],
    ['5f00::1', 'SRv6 SIDs'],
    ['100:0:0:1::1', 'dummy prefix'],
    ['fec0::1', 'site-local (deprecated)'],
    ['fe80::1%eth0', 'link-local'],
  ])('%s is %s', (address, kind) => {
    expect(privateAddressKind(address)).toBe(kind);
  });

  test.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
    '::ffff:0:808:808',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '2001:200::1',
  ])('%s is public', (address) => {
    expect(privateAddressKind(address)).toBeNull();
  });

  test('embeddedIPv4() finds IPv4 inside mapped, translated, compatible, NAT64 and 6to4 addresses only', () => {
    expect(embeddedIPv4('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(embeddedIPv4('::ffff:0:102:304')).toBe('1.2.3.4');
    expect(embeddedIPv4('::102:304')).toBe('1.2.3.4');
    expect(embeddedIPv4('64:ff9b::102:304')).toBe('1.2.3.4');
    expect(embeddedIPv4('2002:102:304::')).toBe('1.2.3.4');
    expect(embeddedIPv4('2002:102:304:5:6:7:8:9')).toBe('1.2.3.4');
    expect(embeddedIPv4('2606:4700::1')).toBeNull();
    expect(embeddedIPv4('64:ff9b:1::102:304')).toBeNull(); // local-use NAT64 is refused whole
    expect(embeddedIPv4('::1')).toBeNull();
    expect(embeddedIPv4('1.2.3.4')).toBeNull();
    expect(embeddedIPv4('not an address')).toBeNull();
  });
});

// A stub resolver: no DNS traffic leaves the machine.
const resolver = (answers: Record<string, string[]>) =>
  ((host: string, _options: unknown, callback: (e: Error | null, a?: dns.LookupAddress[]) => void) => {
    const list = answers[host];
    if (!list) return callback(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
    callback(
      null,
      list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  }) as unknown as typeof dns.lookup;

const lookup = (guard: ReturnType<typeof createAddressGuard>, host: string, all = false) =>
  new Promise<{ error: NodeJS.ErrnoException | null; result: unknown }>((resolve) => {
    (guard.lookup as unknown as (h: string, o: object, cb: (e: NodeJS.ErrnoException | null, r?: unknown) => void) => void)(host, { all }, (error, result) =>
      resolve({ error, result }),
    );
  });

describe('createAddressGuard()', () => {
  test('a name that resolves to a private address is refused with the reason', async () => {
    const guard = createAddressGuard(false, resolver({ 'intranet.example': ['10.0.0.5'], 'www.example': ['93.184.216.34'] }));
    const refused = await lookup(guard, 'intranet.example');
    expect(refused.error?.code).toBe('ERR_CRAWL_ENGINE_BLOCKED');
    expect(refused.error?.message).toBe('intranet.example resolves to 10.0.0.5, a private address; set fetch.allowPrivateNetwork to allow it');
    expect(await lookup(guard, 'www.example')).toEqual({ error: null, result: '93.184.216.34' });
  });

  test('a name with any private answer is refused, so a rebinding answer cannot be chosen by connect', async () => {
    const guard = createAddressGuard(false, resolver({ 'rebind.example': ['93.184.216.34', '127.0.0.1'] }));
    expect((await lookup(guard, 'rebind.example', true)).error?.code).toBe('ERR_CRAWL_ENGINE_BLOCKED');
  });

  test('an allow-list lifts the guard for those hosts, IPs and CIDRs alone', async () => {
    const guard = createAddressGuard(
      ['intranet.example', '10.1.0.0/16', '127.0.0.1'],
      resolver({ 'intranet.example': ['10.0.0.5'], 'db.example': ['10.1.2.3'], 'other.example': ['10.2.0.1'] }),
    );
    expect((await lookup(guard, 'intranet.example')).error).toBeNull();
    expect((await lookup(guard, 'db.example')).error).toBeNull();
    expect((await lookup(guard, 'other.example')).error?.code).toBe('ERR_CRAWL_ENGINE_BLOCKED');
    expect(guard.checkHost('127.0.0.1')).toBeNull();
    expect(guard.checkHost('127.0.0.2')).toMatch(/127\.0\.0\.2, a loopback address/);
    expect(guard.checkHost('[::1]')).toMatch(/loopback/);
  });

  test('an allow-list lifts the guard for IPv4-translated and local-use NAT64 addresses too', async () => {
    const guard = createAddressGuard(['::ffff:0:7f00:1', '64:ff9b:1::/48'], resolver({ 'nat64.example': ['64:ff9b:1::a00:1'] }));
    expect(guard.checkHost('[::ffff:0:7f00:1]')).toBeNull();
    expect(guard.checkHost('[64:ff9b:1::a9fe:a9fe]')).toBeNull();
    expect((await lookup(guard, 'nat64.example')).error).toBeNull();
    expect(guard.checkHost('[::ffff:0:7f00:2]')).toMatch(/::ffff:0:7f00:2, a loopback \(IPv4 inside IPv6\) address/);
    expect(guard.checkHost('[::ffff:0:a9fe:a9fe]')).toMatch(/link-local \(cloud metadata\) \(IPv4 inside IPv6\)/);
  });

  test('allowance entries are validated', () => {
    expect(invalidAllowanceEntry('10.0.0.0/8')).toBeNull();
    expect(invalidAllowanceEntry('fd00::/8')).toBeNull();
    expect(invalidAllowanceEntry('localhost')).toBeNull();
    expect(invalidAllowanceEntry('10.0.0.0/33')).toMatch(/not a valid CIDR/);
    expect(invalidAllowanceEntry('not a host')).toMatch(/not a host name, IP or CIDR/);
    expect(() => createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: ['10.0.0.0/99'] } })).toThrow(
      /fetch\.allowPrivateNetwork\.0: expected a host name, IP or CIDR, got "10\.0\.0\.0\/99"/,
    );
  });
});

describe('the guard in a crawl (loopback only)', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  test('with default settings a job for 127.0.0.1 (or any refused IP literal) is refused at creation and nothing is stored', async () => {
    const server = await serve((_, res) => res.end(html('hi')));
    servers.push(server);
    const storage = memoryStorage();
    const engine = createCrawlEngine({ storage });
    for (const url of [
      server.url,
      server.url.replace('127.0.0.1', '[::ffff:127.0.0.1]'),
      'http://[::1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fe80::1]/',
    ]) {
      const error = await engine.jobs.create({ url }).catch((e: unknown) => e);
      expect(error, url).toMatchObject({
        code: 'invalid_input',
        errors: [
          {
            path: 'url',
            message: expect.stringMatching(/^expected an address the processors may fetch: .*(loopback|link-local).*; set fetch\.allowPrivateNetwork/),
          },
        ],
      });
    }
    expect((await storage.listJobs({ limit: 10 })).items).toEqual([]);
    // A public IPv6 literal is a valid start URL (created only: no processor runs here).
    const job = await engine.jobs.create({ url: 'http://[2606:4700:4700::1111]/' });
    expect(job.url).toBe('http://[2606:4700:4700::1111]/');
    await engine.jobs.cancel(job.id);
    // Allowing the address lets the job be created and crawled.
    const allowed = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: ['127.0.0.1'] } });
    expect((await allowed.crawl({ url: server.url, maxDepth: 0 })).status).toBe('completed');
    await allowed.close();
    expect(server.requests).toContain('/');
  });

  test('a processor without the allowance still refuses the job another process created (fails with blocked, no request)', async () => {
    const server = await serve((_, res) => res.end(html('hi')));
    servers.push(server);
    const storage = memoryStorage();
    const creator = createCrawlEngine({ storage, fetch: { allowPrivateNetwork: true } });
    const job = await creator.jobs.create({ url: server.url });
    const processor = createCrawlEngine({ storage });
    await processor.processor.run({ jobId: job.id });
    await processor.close();
    const done = await storage.getJob(job.id);
    expect(done?.status).toBe('failed');
    expect(done?.error?.code).toBe('blocked');
    expect(done?.error?.message).toMatch(/127\.0\.0\.1, a loopback address; set fetch\.allowPrivateNetwork/);
    expect(server.requests).toEqual([]);
  });

  test('localhost is refused after resolution, not by its name', async () => {
    const server = await serve((_, res) => res.end(html('hi')));
    servers.push(server);
    const engine = createCrawlEngine({ storage: memoryStorage() });
    const job = await engine.crawl({ url: server.url.replace('127.0.0.1', 'localhost') });
    await engine.close();
    expect(job.error).toMatchObject({ code: 'blocked' });
    expect(job.error?.message).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    expect(server.requests).toEqual([]);
  });

  test('allowing 127.0.0.1 does not allow a redirect or a link to 127.0.0.2', async () => {
    const other = await serve((_, res) => res.end(html('secret')), '127.0.0.2');
    servers.push(other);
    const site = await serve((req, res) => {
      if (req.url === '/go') {
        res.writeHead(302, { location: `${other.origin}/admin` });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html(`<a href="/go">redirect</a><a href="${other.origin}/direct">direct</a>`));
    });
    servers.push(site);
    const engine = createCrawlEngine({ storage: memoryStorage(), fetch: { allowPrivateNetwork: ['127.0.0.1'] } });
    const job = await engine.crawl({ url: site.url, scope: 'any' });
    await engine.close();
    const results = await allResults(engine, job.id);
    const byUrl = new Map(results.map((r) => [r.url, r]));
    expect(byUrl.get(`${site.origin}/go`)?.error).toMatchObject({ code: 'blocked' });
    expect(byUrl.get(`${other.origin}/direct`)?.error).toMatchObject({ code: 'blocked' });
    expect(byUrl.get(`${other.origin}/direct`)?.attempts).toBe(1);
    expect(other.requests).toEqual([]);
    expect(job.status).toBe('completed');
  });
});

// Address arithmetic for the table-driven tests, written independently of src/crawl/netguard.ts; which
// range holds an address is decided by node:net's BlockList.
const isV4 = (cidr: string) => !cidr.includes(':');
const width = (cidr: string) => (isV4(cidr) ? 32 : 128);
function toBig(address: string): bigint {
  if (!address.includes(':')) return address.split('.').reduce((acc, part) => acc * 256n + BigInt(part), 0n);
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const all = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return all.reduce((acc, group) => acc * 65536n + BigInt(`0x${group}`), 0n);
}
function fromBig(value: bigint, bits: number): string {
  if (bits === 32) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
  return [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => ((value >> shift) & 0xffffn).toString(16)).join(':');
}
function bounds(cidr: string): { first: bigint; last: bigint } {
  const [address, prefix] = cidr.split('/') as [string, string];
  const first = toBig(address);
  return { first, last: first + (1n << BigInt(width(cidr) - Number(prefix))) - 1n };
}
/** A sample address's three spellings: as the resolver answers it, as a URL hostname, bare. */
function spell(value: bigint, bits: number): { address: string; hostname: string; bare: string } {
  const address = fromBig(value, bits);
  const hostname = new URL(`http://${bits === 32 ? address : `[${address}]`}/`).hostname;
  return { address, hostname, bare: hostname.replace(/^\[|\]$/g, '') };
}
const rangeLists = new Map(
  SPECIAL_PURPOSE_RANGES.map((range) => {
    const [address, prefix] = range.cidr.split('/') as [string, string];
    const list = new BlockList();
    list.addSubnet(address, Number(prefix), isV4(range.cidr) ? 'ipv4' : 'ipv6');
    return [range, list] as const;
  }),
);
/** The most specific table range holding `address` (per BlockList), or undefined. */
const holder = (address: string): SpecialPurposeRange | undefined =>
  SPECIAL_PURPOSE_RANGES.filter(
    (range) => isV4(range.cidr) === !address.includes(':') && rangeLists.get(range)!.check(address, isV4(range.cidr) ? 'ipv4' : 'ipv6'),
  ).sort((a, b) => Number(b.cidr.split('/')[1]) - Number(a.cidr.split('/')[1]))[0];

const REFUSED = SPECIAL_PURPOSE_RANGES.filter((range) => range.handling.action === 'refuse');
const EMBEDDING = SPECIAL_PURPOSE_RANGES.filter((range) => range.handling.action === 'check-embedded-ipv4');
const PRIVATE_V4 = ['127.0.0.1', '169.254.169.254', '10.0.0.1'];
const PUBLIC_V4 = ['8.8.8.8', '1.1.1.1'];
const PUBLIC = ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '2001:4860:4860::8888'];
const refusal = (bare: string, kind: string) => `${bare}, a ${kind} address; set fetch.allowPrivateNetwork to allow it`;

/** First, middle and last address of a range (fewer when they coincide). */
function samples(cidr: string) {
  const { first, last } = bounds(cidr);
  return [...new Set([first, first + (last - first + 1n) / 2n, last])].map((value) => spell(value, width(cidr)));
}
/** A range's embedding samples: `ipv4` placed where the table says, host bits clear and set. */
function embeddings(range: SpecialPurposeRange, ipv4: string) {
  if (range.handling.action !== 'check-embedded-ipv4') throw new Error('not an embedding range');
  const { first } = bounds(range.cidr);
  const below = BigInt(128 - range.handling.at - 32);
  const base = first | (toBig(ipv4) << below);
  return [...new Set([base, base | ((1n << below) - 1n)])].map((value) => spell(value, 128));
}

describe('the special-purpose table', () => {
  test('covers every range of the IANA registries that is not globally reachable, plus multicast', () => {
    const cidrs = SPECIAL_PURPOSE_RANGES.map((range) => range.cidr);
    for (const cidr of [
      '0.0.0.0/8',
      '10.0.0.0/8',
      '100.64.0.0/10',
      '127.0.0.0/8',
      '169.254.0.0/16',
      '172.16.0.0/12',
      '192.0.0.0/24',
      '192.0.2.0/24',
      '192.88.99.0/24',
      '192.168.0.0/16',
      '198.18.0.0/15',
      '198.51.100.0/24',
      '203.0.113.0/24',
      '224.0.0.0/4',
      '240.0.0.0/4',
      '255.255.255.255/32',
      '::/128',
      '::1/128',
      '::/96',
      '::ffff:0:0/96',
      '::ffff:0:0:0/96',
      '64:ff9b::/96',
      '64:ff9b:1::/48',
      '100::/64',
      '100:0:0:1::/64',
      '2001::/23',
      '2001::/32',
      '2001:2::/48',
      '2001:db8::/32',
      '2002::/16',
      '3fff::/20',
      '5f00::/16',
      'fc00::/7',
      'fe80::/10',
      'fec0::/10',
      'ff00::/8',
    ]) {
      expect(cidrs, cidr).toContain(cidr);
    }
    expect(new Set(cidrs).size).toBe(cidrs.length);
    for (const range of SPECIAL_PURPOSE_RANGES) {
      expect(range.name, range.cidr).toMatch(/\S/);
      expect(range.rfc, range.cidr).toMatch(/^RFC \d+(, RFC \d+)*$/);
      expect(invalidAllowanceEntry(range.cidr), range.cidr).toBeNull();
      expect(bounds(range.cidr).first, `${range.cidr} has host bits set`).toBe(toBig(range.cidr.split('/')[0]!));
    }
    expect(Object.fromEntries(EMBEDDING.map((range) => [range.cidr, range.handling]))).toEqual({
      '::/96': { action: 'check-embedded-ipv4', at: 96 },
      '::ffff:0:0/96': { action: 'check-embedded-ipv4', at: 96 },
      '::ffff:0:0:0/96': { action: 'check-embedded-ipv4', at: 96 },
      '64:ff9b::/96': { action: 'check-embedded-ipv4', at: 96 },
      '2002::/16': { action: 'check-embedded-ipv4', at: 16 },
    });
  });

  describe.each(REFUSED.map((range) => [`${range.cidr} (${range.name}, ${range.rfc})`, range] as const))('refused range %s', (_, range) => {
    test('its first, middle and last addresses are refused by privateAddressKind, checkHost and lookup', async () => {
      const guard = createAddressGuard(false, resolver(Object.fromEntries(samples(range.cidr).map(({ address }) => [`host-${address}.example`, [address]]))));
      for (const { address, hostname, bare } of samples(range.cidr)) {
        // The most specific range names it: 2001:: is Teredo inside 2001::/23, 0.0.0.0 unspecified inside 0.0.0.0/8.
        const kind = holder(address)!.name;
        expect(holder(address)!.handling.action, address).toBe('refuse');
        expect(privateAddressKind(address), address).toBe(kind);
        expect(privateAddressKind(bare), bare).toBe(kind);
        expect(guard.checkHost(hostname), hostname).toBe(refusal(bare, kind));
        const { error } = await lookup(guard, `host-${address}.example`);
        expect(error?.code, address).toBe(BLOCKED_CODE);
        expect(error?.message, address).toBe(`host-${address}.example resolves to ${refusal(address, kind)}`);
      }
    });

    test('the addresses just outside it are not refused as it', () => {
      const { first, last } = bounds(range.cidr);
      for (const value of [first - 1n, last + 1n].filter((v) => v >= 0n && v < 1n << BigInt(width(range.cidr)))) {
        const { address } = spell(value, width(range.cidr));
        const outer = holder(address);
        if (outer === undefined) expect(privateAddressKind(address), address).toBeNull();
        else if (outer.handling.action === 'refuse') expect(privateAddressKind(address), address).toBe(outer.name);
        else expect(embeddedIPv4(address), address).not.toBeNull();
      }
    });
  });

  describe.each(EMBEDDING.map((range) => [`${range.cidr} (${range.name}, ${range.rfc})`, range] as const))('embedding range %s', (_, range) => {
    test.each(PRIVATE_V4)('with %s inside is refused by privateAddressKind, checkHost and lookup', async (ipv4) => {
      const inner = privateAddressKind(ipv4)!;
      expect(inner).not.toBeNull();
      const list = embeddings(range, ipv4);
      const guard = createAddressGuard(false, resolver(Object.fromEntries(list.map(({ address }) => [`host-${address}.example`, [address]]))));
      for (const { address, hostname, bare } of list) {
        expect(holder(address), address).toBe(range);
        expect(embeddedIPv4(address), address).toBe(ipv4);
        expect(privateAddressKind(address), address).toBe(`${inner} (IPv4 inside IPv6)`);
        expect(guard.checkHost(hostname), hostname).toBe(refusal(bare, `${inner} (IPv4 inside IPv6)`));
        const { error } = await lookup(guard, `host-${address}.example`);
        expect(error?.code, address).toBe(BLOCKED_CODE);
        expect(error?.message, address).toBe(`host-${address}.example resolves to ${refusal(address, `${inner} (IPv4 inside IPv6)`)}`);
      }
    });

    test.each(PUBLIC_V4)('with %s inside is allowed', async (ipv4) => {
      const list = embeddings(range, ipv4);
      const guard = createAddressGuard(false, resolver(Object.fromEntries(list.map(({ address }) => [`host-${address}.example`, [address]]))));
      for (const { address, hostname } of list) {
        expect(embeddedIPv4(address), address).toBe(ipv4);
        expect(privateAddressKind(address), address).toBeNull();
        expect(guard.checkHost(hostname), hostname).toBeNull();
        expect(await lookup(guard, `host-${address}.example`), address).toEqual({ error: null, result: address });
      }
    });
  });

  test.each(PUBLIC)('public %s is allowed by privateAddressKind, checkHost and lookup', async (address) => {
    const guard = createAddressGuard(false, resolver({ 'public.example': [address] }));
    expect(holder(address)).toBeUndefined();
    expect(privateAddressKind(address)).toBeNull();
    expect(guard.checkHost(new URL(`http://${address.includes(':') ? `[${address}]` : address}/`).hostname)).toBeNull();
    expect(await lookup(guard, 'public.example')).toEqual({ error: null, result: address });
  });
});

describe('guard gap: IPv4-translated and local-use NAT64 addresses', () => {
  const GAP_URLS = ['http://[::ffff:0:a9fe:a9fe]/', 'http://[::ffff:0:7f00:1]/', 'http://[64:ff9b:1::a9fe:a9fe]/'];

  test('guard gap: IPv4-translated and local-use NAT64 addresses', async () => {
    const guard = createAddressGuard(false);
    for (const url of GAP_URLS) {
      expect.soft(guard.checkHost(new URL(url).hostname), url).toEqual(expect.stringMatching(/; set fetch\.allowPrivateNetwork to allow it$/));
    }
    const storage = memoryStorage();
    const engine = createCrawlEngine({ storage });
    for (const url of GAP_URLS) {
      const error = await engine.jobs.create({ url }).catch((e: unknown) => e);
      expect.soft(error, url).toMatchObject({
        code: 'invalid_input',
        errors: [{ path: 'url', message: expect.stringMatching(/^expected an address the processors may fetch: .*; set fetch\.allowPrivateNetwork/) }],
      });
    }
    expect((await storage.listJobs({ limit: 10 })).items).toEqual([]);
    await engine.close();
  });

  test('the fetcher refuses them with blocked, without opening a socket', async () => {
    const server = await serve((_, res) => res.end(html('hi')));
    const guard = createAddressGuard(false);
    // A tripwire: every socket connect in this test throws instead of connecting.
    const connect = vi.spyOn(Socket.prototype, 'connect').mockImplementation(() => {
      throw new Error('tripwire: the fetcher tried to open a socket');
    });
    const fetcher = createFetcher({
      userAgent: 'test-agent/1',
      timeoutMs: 500,
      maxBytes: 64 * 1024,
      maxRedirects: 3,
      maxRetryAfterMs: 10_000,
      allowPrivateNetwork: [new URL(server.url).hostname],
    });
    try {
      for (const url of GAP_URLS) {
        // Precondition: fetch only what the guard refuses, so a regression cannot connect anywhere.
        const reason = guard.checkHost(new URL(url).hostname);
        expect(reason, url).not.toBeNull();
        const got = await fetcher.fetch(url, () => null);
        expect(got.error, url).toMatchObject({ code: 'blocked', message: `refused to connect: ${reason}` });
      }
      expect(connect).not.toHaveBeenCalled();
      // The tripwire works: an allowed loopback fetch does reach it (and fails without connecting).
      expect((await fetcher.fetch(server.url, () => null)).error?.code).not.toBe('blocked');
      expect(connect).toHaveBeenCalled();
      expect(server.requests).toEqual([]);
    } finally {
      connect.mockRestore();
      await fetcher.close();
      await server.close();
    }
  });
});
