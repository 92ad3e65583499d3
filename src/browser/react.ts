/**
 * `useCrawlJob`: a React hook that loads a job and follows its progress live.
 *
 * @module crawl-engine/react
 */
import { useEffect, useState } from 'react';
import { createCrawlClient, type CrawlClientOptions } from './client.js';
import { TERMINAL_EVENT_LIST, TERMINAL_STATUS_LIST } from '../core/constants.js';
import type { Job, JobCounts, JobStatus, ProgressEvent, ProgressEventType } from '../core/types.js';

export interface UseCrawlJobOptions extends CrawlClientOptions {
  /**
   * How many recent page events to keep (newest first).
   * @default 50
   */
  recent?: number;
}

export interface CrawlJobState {
  job: Job | null;
  status: JobStatus | null;
  counts: JobCounts | null;
  /** Recent `page:done` / `page:failed` / `page:skipped` events, newest first. */
  pages: ProgressEvent[];
  /** Finished pages / discovered, from 0 to 1. */
  progress: number;
  done: boolean;
  error: Error | null;
}

/** The job status each event implies; null (a `progress` snapshot) keeps the one known. Every event type must be listed. */
const STATUS_OF: Record<ProgressEventType, JobStatus | null> = {
  'job:created': 'queued',
  'job:started': 'running',
  'page:done': 'running',
  'page:failed': 'running',
  'page:skipped': 'running',
  'job:completed': 'completed',
  'job:cancelled': 'cancelled',
  'job:failed': 'failed',
  progress: null,
};
const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(TERMINAL_STATUS_LIST);
const TERMINAL_EVENTS: ReadonlySet<ProgressEventType> = new Set(TERMINAL_EVENT_LIST);

const EMPTY: CrawlJobState = { job: null, status: null, counts: null, pages: [], progress: 0, done: false, error: null };

function progressOf(counts: JobCounts | null): number {
  if (counts === null || counts.discovered === 0) return 0;
  return (counts.succeeded + counts.failed + counts.skipped) / counts.discovered;
}

/** Loads job `jobId` (null: nothing) and keeps its status, counts and recent pages live. */
export function useCrawlJob(jobId: string | null, options: UseCrawlJobOptions = {}): CrawlJobState {
  const [state, setState] = useState<CrawlJobState>(EMPTY);
  const { baseUrl, fetch: fetchFn, EventSource: Source, headers, recent = 50 } = options;

  useEffect(() => {
    setState(EMPTY);
    if (jobId === null) return;
    const controller = new AbortController();
    const client = createCrawlClient({
      ...(baseUrl === undefined ? {} : { baseUrl }),
      ...(fetchFn === undefined ? {} : { fetch: fetchFn }),
      ...(Source === undefined ? {} : { EventSource: Source }),
      ...(headers === undefined ? {} : { headers }),
    });
    const fail = (error: unknown) => {
      if (!controller.signal.aborted) setState((s) => ({ ...s, error: error instanceof Error ? error : new Error(String(error)) }));
    };
    client
      .getJob(jobId)
      .then((job) => {
        if (controller.signal.aborted) return;
        setState((s) => ({
          ...s,
          job,
          status: s.status ?? job.status,
          counts: s.counts ?? job.counts,
          progress: s.counts ? s.progress : progressOf(job.counts),
          done: s.done || TERMINAL_STATUSES.has(job.status),
        }));
      })
      .catch(fail);
    client
      .watch(jobId, {
        signal: controller.signal,
        onEvent: (event) => {
          setState((s) => {
            const isPage = event.type.startsWith('page:');
            const status = STATUS_OF[event.type] ?? s.status;
            const done = s.done || TERMINAL_EVENTS.has(event.type);
            return {
              ...s,
              status,
              counts: event.counts,
              progress: progressOf(event.counts),
              done,
              job: s.job === null ? s.job : { ...s.job, status: status ?? s.job.status, counts: event.counts },
              pages: isPage ? [event, ...s.pages].slice(0, recent) : s.pages,
            };
          });
        },
      })
      .catch(fail);
    return () => controller.abort();
  }, [jobId, baseUrl, fetchFn, Source, headers, recent]);

  return state;
}
