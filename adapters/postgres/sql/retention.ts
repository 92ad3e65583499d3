/** Deleting jobs, of version 6: the index of finished jobs and `delete_job` (which version 9 replaces). */
import { type Names, namer } from './names.js';

/** The statuses of finished jobs, the ones the retention sweep removes. */
const FINISHED = `status IN ('completed', 'failed', 'cancelled')`;

/**
 * Version 6: finished jobs by finish time, for the retention sweep (oldest first, `ordinal` breaking
 * ties). `finished_at` is an ISO time as text, compared in the "C" collation: byte order is time
 * order, whatever the database's collation.
 */
export function jobsFinishedIndexV6(n: Names): string {
  return `CREATE INDEX "${n.prefix}jobs_finished" ON ${namer(n)('jobs')} ((finished_at COLLATE "C"), ordinal) WHERE ${FINISHED}`;
}

/**
 * `delete_job(job, now_iso, max_events, finished_before) → { deleted, events }`. Under the job's
 * row lock: a queued or running job is cancelled first (status, finish time and counts as `cancel`
 * leaves them, and its `job:cancelled` appended, which NOTIFYs its watchers at commit), then the
 * job row goes and with it, by ON DELETE CASCADE, its frontier, hosts, results, events and robots
 * rows. Its leases die with their rows, so a late complete, retry or release finds nothing. With
 * `finished_before` (ISO time), only a finished job whose `finished_at` is before it is deleted
 * (the retention sweep), so a job that a racing call deleted or that is not due is left alone.
 */
export function deleteJobFunctionV6(n: Names): string {
  return deleteJobV6V9(n, '');
}

/**
 * `delete_job` as version 6 made it, with `more` (statements run under the job's row lock just
 * before the job row is deleted) for the version that replaces it (9, `./webhooks.ts`).
 */
export function deleteJobV6V9(n: Names, more: string): string {
  const t = namer(n);
  return `${more === '' ? 'CREATE FUNCTION' : 'CREATE OR REPLACE FUNCTION'} ${t('delete_job')}(p_job text, p_now_iso text, p_max_events int, p_finished_before text)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE j ${t('jobs')}; evs jsonb := '[]'::jsonb;
  BEGIN
    SELECT * INTO j FROM ${t('jobs')} WHERE id = p_job FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('deleted', false, 'events', evs); END IF;
    IF p_finished_before IS NOT NULL AND NOT (j.status IN ('completed', 'failed', 'cancelled') AND j.finished_at COLLATE "C" < p_finished_before COLLATE "C") THEN
      RETURN jsonb_build_object('deleted', false, 'events', evs);
    END IF;
    IF j.status IN ('queued', 'running') THEN
      UPDATE ${t('jobs')} SET status = 'cancelled', finished_at = p_now_iso, queued = 0, in_progress = 0
        WHERE id = p_job;
      evs := jsonb_build_array(${t('append_event')}(p_job, 'job:cancelled', p_now_iso, NULL, NULL, p_max_events));
    END IF;
    ${more}DELETE FROM ${t('jobs')} WHERE id = p_job;
    RETURN jsonb_build_object('deleted', true, 'events', evs);
  END $fn$`;
}
