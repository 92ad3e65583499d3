/**
 * The operations of the model test as plain data, their fast-check generators, the inputs a
 * completion becomes, and the shapes of what the reference model expects. Indices pick a job or a lease of the run modulo how many there
 * are, small ones the newest, so that shrinking towards 0 keeps a sequence meaningful.
 */
import type * as FastCheck from 'fast-check';
import type { CompleteInput, FrontierLink, Lease, SkippedLink } from '../core/storage.js';
import type { ErrorInfo, JobCounts, PageResult, ProgressEvent } from '../core/types.js';
import { disallowed, result, robotsResult } from './fixtures.js';

/** A link found on a page: one of two hosts, one of a few paths (path 0 is the start URL). */
export interface LinkSpec {
  host: number;
  path: number;
  allowed: boolean;
}

export interface CreateOp {
  kind: 'create';
  maxPages: number;
  perHostConcurrency: number;
  perHostDelayMs: number;
  maxDepth: number;
}

/** A lease of the run: the `n`-th newest of those still current, or with `stale`, of those that are not (storage must refuse them). */
export interface LeasePick {
  n: number;
  stale: boolean;
}

/** How one page ends, in a `complete` or a `completeMany` operation. */
export interface CompleteSpec {
  lease: LeasePick;
  outcome: 'ok' | 'failed' | 'robots';
  links: LinkSpec[];
  skipped: LinkSpec[];
}

export type Op =
  | CreateOp
  /** createJob() again with the id of a job of the run: refused. */
  | { kind: 'recreate'; job: number }
  | { kind: 'claim'; job: number; limit: number; leaseMs: number }
  | ({ kind: 'complete' } & CompleteSpec)
  /** One completeMany() call with leases (current or stale, maybe one twice) of one job; the model applies them as complete() in order. */
  | { kind: 'completeMany'; job: number; items: CompleteSpec[] }
  | { kind: 'retry'; lease: LeasePick; backoffMs: number }
  | { kind: 'release'; leases: LeasePick[] }
  | { kind: 'cancel'; job: number }
  /** The clock moves on (leases expire, backoffs and host delays end). */
  | { kind: 'tick'; ms: number }
  | { kind: 'robots'; job: number; host: number; crawlDelayMs: number | null };

/** The options of a job that storage acts on. */
export interface ModelJobOptions {
  maxPages: number;
  perHostConcurrency: number;
  perHostDelayMs: number;
}

/** An event as the model expects it; `counts` undefined where the contract leaves them open. */
export interface ExpectedEvent {
  type: ProgressEvent['type'];
  url?: string;
  error?: ErrorInfo;
  counts?: JobCounts;
}

export interface Expected<T> {
  value: T;
  events: ExpectedEvent[];
}

export const HOSTS = ['a.test', 'b.test'];
export const PATHS = 6;

export function linkUrl(spec: { host: number; path: number }): string {
  return `http://${HOSTS[spec.host]}/${spec.path === 0 ? '' : `p${spec.path}`}`;
}

/**
 * A run: the job it starts with, then the operations. `completeMany` operations only with
 * `options.completeMany` (the adapter has the method); without, the sequences are as they were.
 */
export function sequence(fc: typeof FastCheck, maxSteps: number, options: { completeMany?: boolean } = {}): FastCheck.Arbitrary<[CreateOp, Op[]]> {
  const pick = fc.nat({ max: 7 });
  const lease: FastCheck.Arbitrary<LeasePick> = fc.record({ n: pick, stale: fc.constantFrom(false, false, false, true) });
  const linkSpec = fc.record({ host: fc.nat({ max: HOSTS.length - 1 }), path: fc.nat({ max: PATHS - 1 }), allowed: fc.boolean() });
  const create: FastCheck.Arbitrary<CreateOp> = fc.record({
    kind: fc.constant('create' as const),
    maxPages: fc.integer({ min: 1, max: 6 }),
    perHostConcurrency: fc.constantFrom(100, 1, 2),
    perHostDelayMs: fc.constantFrom(0, 0, 500),
    maxDepth: fc.constantFrom(1, 2, 3, 3),
  });
  const ok = fc.constant('ok' as const);
  const outcome = fc.oneof(
    { weight: 6, arbitrary: ok },
    { weight: 1, arbitrary: fc.constant('failed' as const) },
    { weight: 2, arbitrary: fc.constant('robots' as const) },
  );
  const page = {
    lease,
    outcome,
    links: fc.array(linkSpec, { minLength: 1, maxLength: 6 }),
    skipped: fc.array(linkSpec, { maxLength: 3 }),
  };
  const completeMany: FastCheck.Arbitrary<Op> = fc.record({
    kind: fc.constant('completeMany' as const),
    job: pick,
    items: fc.array(fc.record(page), { minLength: 1, maxLength: 4 }),
  });
  const op: FastCheck.Arbitrary<Op> = fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        kind: fc.constant('claim' as const),
        job: pick,
        limit: fc.integer({ min: 1, max: 4 }),
        leaseMs: fc.constantFrom(1000, 1000, 5000),
      }),
    },
    {
      weight: 16,
      arbitrary: fc.record({ kind: fc.constant('complete' as const), ...page }),
    },
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(1, 300, 1000, 1000, 6000) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('retry' as const), lease, backoffMs: fc.constantFrom(0, 200, 2000) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), leases: fc.array(lease, { minLength: 1, maxLength: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), job: pick }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('robots' as const),
        job: pick,
        host: fc.nat({ max: HOSTS.length - 1 }),
        crawlDelayMs: fc.constantFrom(null, 0, 700, 700),
      }),
    },
    { weight: 3, arbitrary: create },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('recreate' as const), job: pick }) },
    ...(options.completeMany === true ? [{ weight: 8, arbitrary: completeMany }] : []),
  );
  return fc.tuple(create, fc.array(op, { maxLength: maxSteps, size: 'max' }));
}

/** One line per operation, for failure messages. */
export function describeOp(op: Op): string {
  const { kind, ...rest } = op;
  return `${kind} ${JSON.stringify(rest)}`;
}

/** The input of completing `lease` as `spec` says, as the processor would build it for a job of `maxDepth`. */
export function completeInput(maxDepth: number, lease: Lease, spec: CompleteSpec, now: number): CompleteInput & { skipped: SkippedLink[] } {
  // As the processor does: no links past maxDepth, none from a page that was not fetched.
  const found = spec.outcome === 'ok' && lease.depth < maxDepth;
  const links = found ? spec.links.map((link) => frontierLink(link, lease.depth + 1)) : [];
  const skipped = found ? spec.skipped.map((link) => disallowed(frontierLink(link, lease.depth + 1))) : [];
  return { result: pageResult(lease, spec.outcome, now), links, skipped, now };
}

function frontierLink(spec: LinkSpec, depth: number): FrontierLink {
  const url = linkUrl(spec);
  return { url, key: url, depth, host: HOSTS[spec.host]!, robots: spec.allowed ? 'allowed' : 'unknown' };
}

function pageResult(lease: Lease, outcome: 'ok' | 'failed' | 'robots', now: number): PageResult {
  const page = outcome === 'robots' ? robotsResult(lease.url, lease.depth, lease.attempts) : result(lease, outcome === 'ok');
  return { ...page, fetchedAt: new Date(now).toISOString() };
}
