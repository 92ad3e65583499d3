/**
 * `claim()` of the KV adapter: one script per job (lua/claim-9.lua), over the jobs the index says
 * are active and not parked, a fair share each first; what the index must learn (a job parked,
 * woken, served or gone) is queued and applied in one round trip at the end. The index call that
 * lists the jobs also admits queued ones under `maxActiveJobs` (lua/index-active-6.lua); each job
 * it admitted is started by its claim script, even when the claim is full. A claim of one job
 * defers its `touch` (see TOUCH_DEFER_MS), so it is one round trip, unless it started the job
 * (then the index learns it is out of the admission line).
 */
import { randomBytes } from 'node:crypto';
import type { ClaimQuery, ClaimResult, Job, Lease, ProgressEvent } from '../../src/storage/index.js';
import { type Ctx, type IndexOp, parse } from './client.js';
import * as S from './scripts.js';

/** Jobs one claim across all jobs looks at, at most. */
const WINDOW = 50;

interface ClaimReply {
  leases: Lease[];
  events: ProgressEvent[];
  nextReadyAt: number | null;
  inactive?: boolean;
  park?: { v: number; at: number; wait: number };
  wake?: number;
}

/** Claims from one job; queues what the index must learn in `ops`. */
async function claimJob(ctx: Ctx, jobId: string, limit: number, query: ClaimQuery, force: 1 | 0 | -1, ops: IndexOp[], start: 1 | 0 = 0): Promise<ClaimReply> {
  const out = await ctx.call<ClaimReply>(S.CLAIM, jobId, [
    limit,
    query.leaseMs,
    query.now,
    new Date(query.now).toISOString(),
    ctx.maxEvents,
    randomBytes(9).toString('base64url'),
    force,
    start,
  ]);
  if (out.inactive) {
    // Still indexed as active: the finish's own index update has not landed (or never will, if its
    // process died): the job joins the finished index here too, so that retention finds it.
    const job = await ctx.call<Job | null>(S.READ_JOB, jobId, []);
    const finishedAt = job?.finishedAt == null ? Number.NaN : Date.parse(job.finishedAt);
    if (Number.isFinite(finishedAt)) ops.push(['finish', jobId, 0, finishedAt, 0]);
    // Admitted between createJob's two steps (the index entry first, then the data): it goes back
    // to the head of the line rather than out of the index, or it would stay queued for ever.
    else if (job === null && start === 1) ops.push(['requeue', jobId, 0, query.now, 0]);
    else ops.push(['remove', jobId, 0, 0, 0]);
  } else if (out.park !== undefined) ops.push(['park', jobId, out.park.v, out.park.at, out.park.wait]);
  else if (out.wake !== undefined) ops.push(['wake', jobId, out.wake, query.now, 0]);
  else if (out.leases.length > 0) ops.push(['touch', jobId, 0, query.now, 0]);
  return out;
}

export async function claim(ctx: Ctx, query: ClaimQuery): Promise<ClaimResult> {
  const ops: IndexOp[] = [];
  if (query.jobId !== undefined) {
    const out = await claimJob(ctx, query.jobId, query.limit, query, 0, ops);
    // Started by this claim, ahead of admission: claims across jobs visit it from now on.
    if (out.events.some((e) => e.type === 'job:started')) ops.push(['start', query.jobId, 0, query.now, 0]);
    await ctx.applyIndex(ops, { deferTouch: true });
    return { leases: out.leases, events: out.events, nextReadyAt: out.leases.length < query.limit ? out.nextReadyAt : null };
  }
  // Active jobs and parked ones whose time has come, longest idle first; parked jobs cost nothing.
  await ctx.flushTouches();
  const bound = query.maxActiveJobs ?? '';
  const listed = parse<{ next: number | null; ids: string[]; admitted: string[] }>(await ctx.indexCall(S.INDEX_ACTIVE(ctx.ix), [WINDOW, query.now, bound]));
  const { next: waiting, admitted } = listed;
  // Jobs just admitted first (they were never served), each visited even when the claim is full.
  const ids = [...admitted, ...listed.ids.filter((id) => !admitted.includes(id))];
  const starting = new Set(admitted);
  const leases: Lease[] = [];
  const events: ProgressEvent[] = [];
  let next = waiting;
  const idle = new Set<string>();
  let freed = 0;
  try {
    // A fair share per job first, then whatever is left to whoever has more.
    for (const pass of [1, 2]) {
      for (const id of ids) {
        const want = query.limit - leases.length;
        const start = starting.delete(id) ? 1 : 0;
        if (want <= 0 && start === 0) break;
        if (idle.has(id)) continue;
        const share = pass === 1 ? Math.max(1, Math.ceil(query.limit / ids.length)) : want;
        // A job is parked only when this claim got nothing from it.
        const out = await claimJob(ctx, id, Math.max(0, Math.min(share, want)), query, pass === 1 ? 1 : -1, ops, start);
        leases.push(...out.leases);
        events.push(...out.events);
        if (out.leases.length === 0) idle.add(id);
        if (out.nextReadyAt !== null && (next === null || out.nextReadyAt < next)) next = out.nextReadyAt;
      }
    }
  } finally {
    freed = await ctx.applyIndex(ops);
  }
  // More jobs were eligible than one claim visits: the next claim sees the others at once. So too
  // when jobs parked on the clock gave up their places while queued jobs wait: it admits them.
  if (ids.length >= WINDOW || (freed > 0 && query.maxActiveJobs !== undefined)) next = query.now;
  return { leases, events, nextReadyAt: leases.length < query.limit ? next : null };
}
