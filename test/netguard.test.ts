import type dns from 'node:dns';
import { afterEach, describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { createCrawlEngine } from '../src/engine.js';
import { createAddressGuard, embeddedIPv4, invalidAllowanceEntry, privateAddressKind } from '../src/netguard.js';
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
    ['255.255.255.255', 'reserved'],
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
  ])('%s is %s', (address, kind) => {
    expect(privateAddressKind(address)).toBe(kind);
  });

  test.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2002:808:808::1'])('%s is public', (address) => {
    expect(privateAddressKind(address)).toBeNull();
  });

  test('embeddedIPv4() finds IPv4 inside mapped, NAT64 and 6to4 addresses only', () => {
    expect(embeddedIPv4('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(embeddedIPv4('64:ff9b::102:304')).toBe('1.2.3.4');
    expect(embeddedIPv4('2002:102:304::')).toBe('1.2.3.4');
    expect(embeddedIPv4('2606:4700::1')).toBeNull();
  });
});

describe('createAddressGuard()', () => {
  // A stub resolver: no DNS traffic leaves the machine.
  const resolver = (answers: Record<string, string[]>) =>
    ((host: string, _options: unknown, callback: (e: Error | null, a?: dns.LookupAddress[]) => void) => {
      const list = answers[host];
      if (!list) return callback(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
      callback(null, list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
    }) as unknown as typeof dns.lookup;

  const lookup = (guard: ReturnType<typeof createAddressGuard>, host: string, all = false) =>
    new Promise<{ error: NodeJS.ErrnoException | null; result: unknown }>((resolve) => {
      (guard.lookup as unknown as (h: string, o: object, cb: (e: NodeJS.ErrnoException | null, r?: unknown) => void) => void)(host, { all }, (error, result) =>
        resolve({ error, result }),
      );
    });

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
    const guard = createAddressGuard(['intranet.example', '10.1.0.0/16', '127.0.0.1'], resolver({ 'intranet.example': ['10.0.0.5'], 'db.example': ['10.1.2.3'], 'other.example': ['10.2.0.1'] }));
    expect((await lookup(guard, 'intranet.example')).error).toBeNull();
    expect((await lookup(guard, 'db.example')).error).toBeNull();
    expect((await lookup(guard, 'other.example')).error?.code).toBe('ERR_CRAWL_ENGINE_BLOCKED');
    expect(guard.checkHost('127.0.0.1')).toBeNull();
    expect(guard.checkHost('127.0.0.2')).toMatch(/127\.0\.0\.2, a loopback address/);
    expect(guard.checkHost('[::1]')).toMatch(/loopback/);
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
    for (const url of [server.url, server.url.replace('127.0.0.1', '[::ffff:127.0.0.1]'), 'http://[::1]/', 'http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/']) {
      const error = await engine.jobs.create({ url }).catch((e: unknown) => e);
      expect(error, url).toMatchObject({ code: 'invalid_input', errors: [{ path: 'url', message: expect.stringMatching(/^expected an address the processors may fetch: .*(loopback|link-local).*; set fetch\.allowPrivateNetwork/) }] });
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
