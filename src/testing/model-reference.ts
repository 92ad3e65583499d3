/**
 * The reference model of one job's storage, written to be obviously right rather than fast: every
 * URL is an entry with a state, every count is derived from the states, and each operation is the
 * contract of `CrawlStorage` (src/core/storage.ts) stated as plainly as it can be. The model test
 * runs the same operations on an adapter and on this model and compares what it can observe.
 *
 * Where the contract lets an adapter choose (which ready URLs a claim hands out), the model takes
 * the adapter's choice and checks that it was allowed.
 */
import assert from 'node:assert/strict';
import type { FrontierLink, Lease, SkippedLink } from '../core/storage.js';
import type { ErrorInfo, JobCounts, JobStatus, PageResult } from '../core/types.js';
import type { Expected, ExpectedEvent, ModelJobOptions } from './model-ops.js';

type CompleteIn = { result: PageResult; links: FrontierLink[]; skipped: SkippedLink[]; now: number };

type State = 'pending' | 'leased' | 'done' | 'failed' | 'skipped' | 'spare' | 'cancelled';

interface Entry {
  key: string;
  url: string;
  host: string;
  depth: number;
  state: State;
  /** The current lease's token (while leased), and every token ever handed out for the URL. */
  token: string | null;
  tokens: Set<string>;
  attempts: number;
  expiresAt: number;
  notBefore: number;
  /** Found while its robots.txt was unknown: until it finishes, it may yet be refunded. */
  unsure: boolean;
}

const ACTIVE: ReadonlySet<JobStatus> = new Set(['queued', 'running']);
/** The count each state adds to, besides `discovered` (spares add to none, cancelled URLs to that alone). */
const COUNTED: Partial<Record<State, keyof JobCounts>> = { pending: 'queued', leased: 'inProgress', done: 'succeeded', failed: 'failed', skipped: 'skipped' };
const iso = (ms: number) => new Date(ms).toISOString();

export class JobModel {
  status: JobStatus = 'queued';
  startedAt: string | null = null;
  finishedAt: string | null = null;
  error: ErrorInfo | null = null;
  /** Results in the order they were stored. */
  readonly results: PageResult[] = [];
  private readonly entries = new Map<string, Entry>();
  /** Keys of spare links, oldest first. */
  private spares: string[] = [];
  /** URLs ever admitted (the start URL, links, spares admitted for a refund), each charged against maxPages... */
  private admitted = 0;
  /** ...less the charges given back by URLs skipped for robots.txt after admission. */
  private refunds = 0;
  /** Skipped links recorded (no charge). */
  private free = 0;
  private firstError: ErrorInfo | null = null;
  private readonly hostNextAt = new Map<string, number>();
  private readonly crawlDelay = new Map<string, number>();

  constructor(
    readonly id: string,
    readonly options: ModelJobOptions,
    seed: FrontierLink,
  ) {
    this.add(seed, 'pending');
    this.admitted = 1;
  }

  get active(): boolean {
    return ACTIVE.has(this.status);
  }

  counts(): JobCounts {
    const c = { discovered: 0, queued: 0, inProgress: 0, succeeded: 0, failed: 0, skipped: 0 };
    for (const e of this.entries.values()) {
      if (e.state === 'spare') continue;
      c.discovered++;
      const field = COUNTED[e.state];
      if (field !== undefined) c[field]++;
    }
    return c;
  }

  /** The rules that must hold in every state, checked on the model itself. */
  checkInvariants(): void {
    const c = this.counts();
    if (this.status !== 'cancelled') assert.equal(c.queued + c.inProgress + c.succeeded + c.failed + c.skipped, c.discovered, 'model: counts add up');
    assert.ok(c.queued + c.inProgress + c.succeeded + c.failed <= this.options.maxPages, 'model: never more than maxPages pages fetched or to fetch');
    assert.ok(this.free <= this.options.maxPages && this.refunds <= this.options.maxPages, 'model: skipped links and refunds stay within maxPages');
    if (!this.active) assert.equal(c.queued + c.inProgress, 0, 'model: a finished job has nothing queued or in progress');
  }

  private add(link: FrontierLink, state: State): Entry {
    const { key, url, host, depth } = link;
    const entry: Entry = {
      key,
      url,
      host,
      depth,
      state,
      token: null,
      tokens: new Set(),
      attempts: 0,
      expiresAt: 0,
      notBefore: 0,
      unsure: link.robots !== 'allowed',
    };
    this.entries.set(key, entry);
    return entry;
  }

  private delayOf(host: string): number {
    return Math.max(this.options.perHostDelayMs, this.crawlDelay.get(host) ?? 0);
  }

  /** Slots of `host` no lease holds (one when it has a delay), its delay aside. */
  private freeSlots(host: string): number {
    const slots = this.delayOf(host) > 0 ? 1 : this.options.perHostConcurrency;
    return slots - [...this.entries.values()].filter((e) => e.state === 'leased' && e.host === host).length;
  }

  isCurrent(lease: Lease): boolean {
    return this.current(lease) !== null;
  }

  private current(lease: Lease): Entry | null {
    const entry = this.entries.get(lease.key);
    return entry !== undefined && entry.state === 'leased' && entry.token === lease.token ? entry : null;
  }

  /** A lease ended: a started fetch makes a host with a delay wait that long from now. */
  private endLease(entry: Entry, now: number, started: boolean): void {
    entry.token = null;
    const delay = this.delayOf(entry.host);
    if (started && delay > 0) this.hostNextAt.set(entry.host, Math.max(this.hostNextAt.get(entry.host) ?? 0, now + delay));
  }

  private unfinishedUnsure(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.unsure && (e.state === 'pending' || e.state === 'leased')) n++;
    return n;
  }

  /**
   * Checks a claim's leases against what was ready, then records them. `nextReadyAt` is checked
   * for what matters to a processor that sleeps until then: it is not later than the first URL that
   * becomes ready by the clock alone.
   */
  claim(leases: Lease[], query: { limit: number; leaseMs: number; now: number }, nextReadyAt: number | null | undefined): ExpectedEvent[] {
    const { now } = query;
    if (!this.active) {
      assert.equal(leases.length, 0, 'a finished or cancelled job hands out nothing');
      return [];
    }
    const expired = [...this.entries.values()].filter((e) => e.state === 'leased' && e.expiresAt <= now);
    const readyByHost = new Map<string, number>();
    for (const e of this.entries.values()) {
      if (e.state === 'pending' && e.notBefore <= now) readyByHost.set(e.host, (readyByHost.get(e.host) ?? 0) + 1);
    }
    const capacity = new Map([...readyByHost.keys()].map((h) => [h, (this.hostNextAt.get(h) ?? 0) > now ? 0 : Math.max(0, this.freeSlots(h))]));
    let ready = expired.length;
    for (const [host, n] of readyByHost) ready += Math.min(n, capacity.get(host)!);
    assert.equal(leases.length, Math.min(query.limit, ready), `a claim hands out every ready URL up to its limit (${ready} ready)`);
    const seen = new Set<string>();
    for (const lease of leases) {
      const entry = this.entries.get(lease.key);
      assert.ok(entry, `a lease for a URL the job has: ${lease.key}`);
      assert.ok(!seen.has(lease.key), `one URL twice in one claim: ${lease.key}`);
      seen.add(lease.key);
      if (entry.state === 'pending') {
        assert.ok(entry.notBefore <= now, `${lease.key} handed out before its not-before time`);
        const left = capacity.get(entry.host) ?? 0;
        assert.ok(left > 0, `${lease.key}: host ${entry.host} is at its concurrency or inside its delay`);
        capacity.set(entry.host, left - 1);
      } else {
        assert.ok(
          entry.state === 'leased' && entry.expiresAt <= now,
          `${lease.key} is ${entry.state}${entry.state === 'leased' ? ' under a live lease' : ''}: not claimable`,
        );
      }
      assert.ok(!entry.tokens.has(lease.token) && lease.token.length > 0, `${lease.key}: a fresh lease token`);
      entry.state = 'leased';
      entry.token = lease.token;
      entry.tokens.add(lease.token);
      entry.attempts++;
      entry.expiresAt = now + query.leaseMs;
      assert.deepEqual(
        { url: lease.url, depth: lease.depth, host: lease.host, attempts: lease.attempts, expiresAt: lease.expiresAt },
        { url: entry.url, depth: entry.depth, host: entry.host, attempts: entry.attempts, expiresAt: entry.expiresAt },
        `the lease of ${lease.key} describes its URL`,
      );
    }
    if (leases.length < query.limit) {
      let due: number | null = null;
      for (const e of this.entries.values()) {
        if (e.state !== 'pending' || this.freeSlots(e.host) <= 0) continue;
        const at = Math.max(e.notBefore, this.hostNextAt.get(e.host) ?? 0);
        if (at > now && (due === null || at < due)) due = at;
      }
      if (due !== null) {
        assert.ok(
          typeof nextReadyAt === 'number' && nextReadyAt > now && nextReadyAt <= due,
          `nextReadyAt ${nextReadyAt}: a URL is ready by the clock at ${due}`,
        );
      }
    }
    if (this.status === 'queued' && leases.length > 0) {
      this.status = 'running';
      this.startedAt = iso(now);
      return [{ type: 'job:started' }];
    }
    return [];
  }

  complete(lease: Lease, input: CompleteIn): Expected<{ ok: boolean; admitted: number }> {
    const entry = this.current(lease);
    if (entry === null) return { value: { ok: false, admitted: 0 }, events: [] };
    const { result, now } = input;
    const robots = !result.ok && result.error?.code === 'robots';
    const M = this.options.maxPages;
    this.endLease(entry, now, !robots);
    entry.state = result.ok ? 'done' : robots ? 'skipped' : 'failed';
    if (!result.ok) this.firstError ??= result.error;
    this.results.push(result);
    // Skipped for robots.txt after admission: the charge comes back, to the oldest spare if any.
    if (robots && this.refunds < M) {
      this.refunds++;
      const spare = this.spares.shift();
      if (spare !== undefined) {
        this.entries.get(spare)!.state = 'pending';
        this.admitted++;
      }
    }
    let admitted = 0;
    for (const link of input.links) {
      if (this.entries.has(link.key)) continue;
      if (this.admitted - this.refunds < M) {
        this.add(link, 'pending');
        this.admitted++;
        admitted++;
      } else if (this.spares.length < Math.min(this.unfinishedUnsure(), M - this.refunds)) {
        this.add(link, 'spare');
        this.spares.push(link.key);
      } else break;
    }
    const events: ExpectedEvent[] = [
      {
        type: result.ok ? 'page:done' : robots ? 'page:skipped' : 'page:failed',
        url: lease.url,
        ...(result.error ? { error: result.error } : {}),
        counts: this.counts(),
      },
    ];
    for (const { link, result: skippedResult } of input.skipped) {
      if (this.free >= M) break;
      if (this.entries.has(link.key)) continue;
      this.add(link, 'skipped');
      this.free++;
      this.results.push(skippedResult);
      events.push({ type: 'page:skipped', url: link.url, ...(skippedResult.error ? { error: skippedResult.error } : {}), counts: this.counts() });
    }
    const c = this.counts();
    if (c.queued === 0 && c.inProgress === 0) {
      const failed = c.succeeded === 0;
      this.status = failed ? 'failed' : 'completed';
      this.finishedAt = iso(now);
      if (failed) this.error = this.firstError ?? { code: 'failed', message: 'no page could be fetched' };
      events.push({ type: failed ? 'job:failed' : 'job:completed', ...(failed ? { error: this.error! } : {}), counts: c });
    }
    return { value: { ok: true, admitted }, events };
  }

  retry(lease: Lease, input: { notBefore: number; now: number }): boolean {
    const entry = this.current(lease);
    if (entry === null) return false;
    this.endLease(entry, input.now, true);
    entry.state = 'pending';
    entry.notBefore = input.notBefore;
    return true;
  }

  /** One lease of a release() call; true when it went back. */
  release(lease: Lease): boolean {
    const entry = this.current(lease);
    if (entry === null) return false;
    this.endLease(entry, 0, false);
    entry.state = 'pending';
    entry.notBefore = 0;
    entry.attempts = Math.max(0, entry.attempts - 1);
    return true;
  }

  cancel(now: number): ExpectedEvent[] {
    if (!this.active) return [];
    this.status = 'cancelled';
    this.finishedAt = iso(now);
    for (const e of this.entries.values()) {
      if (e.state === 'pending' || e.state === 'leased') {
        e.state = 'cancelled';
        e.token = null;
      }
    }
    return [{ type: 'job:cancelled', counts: this.counts() }];
  }

  putRobots(host: string, crawlDelayMs: number | null): void {
    this.crawlDelay.set(host, crawlDelayMs ?? 0);
  }
}
