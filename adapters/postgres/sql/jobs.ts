/**
 * The job functions, of version 1: the job's JSON, creating a job and cancelling one; and version 8's
 * `create_job`, which stores the seed's `lastmod`.
 */
import { countsJson } from './events.js';
import { type Names, namer } from './names.js';

/** `job_json(job row) → Job`: the JSON of a job row, as the API returns it. */
export function jobJsonFunction(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('job_json')}(j ${t('jobs')}) RETURNS jsonb LANGUAGE sql STABLE AS $fn$
    SELECT jsonb_build_object(
      'id', j.id, 'status', j.status, 'url', j.url, 'options', j.options,
      'counts', ${countsJson},
      'createdAt', j.created_at, 'startedAt', j.started_at, 'finishedAt', j.finished_at,
      'error', j.error, 'metadata', j.metadata)
  $fn$`;
}

/**
 * `create_job(job, seed, max_events) → { job, events }`. Inserts the job `queued` with its seed URL
 * as the one pending frontier row (the column defaults count it: discovered = queued = 1), the
 * seed's host, and the `job:created` event, in one transaction. A job id that exists fails with
 * unique_violation (23505), which the adapter reports as a conflict.
 */
export function createJobFunction(n: Names): string {
  return createJobV1V8(n, 1);
}

/** `create_job`, version 8: version 1, replaced, that stores the seed's `lastmod` with its frontier row. */
export function createJobFunctionV8(n: Names): string {
  return createJobV1V8(n, 8);
}

function createJobV1V8(n: Names, v: 1 | 8): string {
  const t = namer(n);
  return `${v === 1 ? 'CREATE FUNCTION' : 'CREATE OR REPLACE FUNCTION'} ${t('create_job')}(p_job jsonb, p_seed jsonb, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE j ${t('jobs')}; ev jsonb;
  BEGIN
    INSERT INTO ${t('jobs')} (id, status, url, options, metadata, created_at, max_pages, per_host_concurrency,
      per_host_delay_ms)
    VALUES (p_job->>'id', 'queued', p_job->>'url', p_job->'options', p_job->'metadata', p_job->>'createdAt',
            (p_job->'options'->>'maxPages')::int, (p_job->'options'->>'perHostConcurrency')::int,
            (p_job->'options'->>'perHostDelayMs')::int);
    INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host${v === 8 ? ', lastmod' : ''})
      VALUES (p_job->>'id', p_seed->>'key', p_seed->>'url', (p_seed->>'depth')::int, p_seed->>'host'${v === 8 ? ", p_seed->>'lastmod'" : ''});
    INSERT INTO ${t('hosts')} (job_id, host) VALUES (p_job->>'id', p_seed->>'host');
    ev := ${t('append_event')}(p_job->>'id', 'job:created', p_job->>'createdAt', p_job->>'url', NULL,
      p_max_events);
    SELECT * INTO j FROM ${t('jobs')} WHERE id = p_job->>'id';
    RETURN jsonb_build_object('job', ${t('job_json')}(j), 'events', jsonb_build_array(ev));
  END $fn$`;
}

/**
 * `cancel(job, now_iso, max_events) → { job, events }`. Under the job's row lock: an active job
 * becomes `cancelled` with its pending and leased URLs (leases die: their tokens are cleared, so a
 * late complete or retry finds nothing), its host slots freed, queued and in_progress zeroed, and
 * one `job:cancelled` event. A finished job is returned unchanged with no event; a missing one as
 * NULL.
 */
export function cancelFunction(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('cancel')}(p_job text, p_now_iso text, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE j ${t('jobs')}; ev jsonb;
  BEGIN
    SELECT * INTO j FROM ${t('jobs')} WHERE id = p_job FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('job', NULL, 'events', '[]'::jsonb); END IF;
    IF j.status NOT IN ('queued', 'running') THEN
      RETURN jsonb_build_object('job', ${t('job_json')}(j), 'events', '[]'::jsonb);
    END IF;
    UPDATE ${t('frontier')} SET state = 'cancelled', token = NULL
      WHERE job_id = p_job AND state IN ('pending', 'leased');
    UPDATE ${t('hosts')} SET in_flight = 0 WHERE job_id = p_job;
    UPDATE ${t('jobs')} SET status = 'cancelled', finished_at = p_now_iso, queued = 0, in_progress = 0
      WHERE id = p_job;
    ev := ${t('append_event')}(p_job, 'job:cancelled', p_now_iso, NULL, NULL, p_max_events);
    SELECT * INTO j FROM ${t('jobs')} WHERE id = p_job;
    RETURN jsonb_build_object('job', ${t('job_json')}(j), 'events', jsonb_build_array(ev));
  END $fn$`;
}
