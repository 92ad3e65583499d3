/** The event log functions, all of version 1: append (one or many) and read with trimmed history. */
import { type Names, namer } from './names.js';

/** The `counts` object of a job row `j`, as in the API's `Job` and in every event. */
export const countsJson = `jsonb_build_object('discovered', j.discovered, 'queued', j.queued,
      'inProgress', j.in_progress, 'succeeded', j.succeeded, 'failed', j.failed, 'skipped', j.skipped)`;

/**
 * `append_event(job, type, at, url, error, max_events) → event`. Appends one event stamped with the
 * job's current counts and the next id of `event_seq` (so ids only grow), and wakes LISTENers on
 * the `<prefix>events` channel. Keeps the last `max_events`: every `slack` events past that it
 * stores the event at the cut as `trimmed` and deletes what precedes it, so a reader that fell
 * behind gets a snapshot in place of the lost history. Callers hold the job's row lock (it takes it
 * itself otherwise, through the UPDATE).
 */
export function appendEventFunction(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('append_event')}(p_job text, p_type text, p_at text, p_url text, p_error jsonb,
    p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE j ${t('jobs')}; ev jsonb; slack int := greatest(16, p_max_events / 8); cut bigint;
  BEGIN
    UPDATE ${t('jobs')} SET event_seq = event_seq + 1 WHERE id = p_job RETURNING * INTO j;
    ev := jsonb_build_object('id', j.event_seq::text, 'jobId', p_job, 'type', p_type, 'at', p_at,
      'counts', ${countsJson});
    IF p_url IS NOT NULL THEN ev := ev || jsonb_build_object('url', p_url); END IF;
    IF p_error IS NOT NULL THEN ev := ev || jsonb_build_object('error', p_error); END IF;
    INSERT INTO ${t('events')} (job_id, id, event) VALUES (p_job, j.event_seq, ev);
    IF j.event_seq > p_max_events + slack AND j.event_seq % slack = 0 THEN
      cut := j.event_seq - p_max_events;
      UPDATE ${t('jobs')}
        SET trimmed = (SELECT event FROM ${t('events')} WHERE job_id = p_job AND id = cut) WHERE id = p_job;
      DELETE FROM ${t('events')} WHERE job_id = p_job AND id <= cut;
    END IF;
    PERFORM pg_notify('${n.prefix}events', p_job);
    RETURN ev;
  END $fn$`;
}

/**
 * `append_events(job, events, max_events) → events | NULL`. Appends caller-made events (`type`,
 * `at`, `url`, `error` each) in order under the job's row lock; NULL when the job does not exist.
 */
export function appendEventsFunction(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('append_events')}(p_job text, p_events jsonb, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE e jsonb; out jsonb := '[]';
  BEGIN
    PERFORM 1 FROM ${t('jobs')} WHERE id = p_job FOR UPDATE;
    IF NOT FOUND THEN RETURN NULL; END IF;
    FOR e IN SELECT value FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(value, ord) ORDER BY ord LOOP
      out := out || jsonb_build_array(${t('append_event')}(p_job, e->>'type', e->>'at', e->>'url', e->'error',
        p_max_events));
    END LOOP;
    RETURN out;
  END $fn$`;
}

/**
 * `read_events(job, after, limit) → events`. At most `limit` events with ids above `after`, in
 * order. When the events right after `after` were trimmed, the first is the `trimmed` snapshot as a
 * `progress` event (its id is the cut), and reading resumes after it: a reader never silently skips.
 */
export function readEventsFunction(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('read_events')}(p_job text, p_after bigint, p_limit int)
  RETURNS jsonb LANGUAGE plpgsql STABLE AS $fn$
  DECLARE snap jsonb; out jsonb := '[]'; from_id bigint := p_after;
  BEGIN
    SELECT trimmed INTO snap FROM ${t('jobs')} WHERE id = p_job;
    IF snap IS NOT NULL AND p_after < (snap->>'id')::bigint THEN
      out := jsonb_build_array(snap || jsonb_build_object('type', 'progress'));
      from_id := (snap->>'id')::bigint;
    END IF;
    SELECT out || coalesce(jsonb_agg(event ORDER BY id), '[]'::jsonb) INTO out FROM (
      SELECT event, id FROM ${t('events')} WHERE job_id = p_job AND id > from_id
      ORDER BY id LIMIT greatest(0, p_limit - jsonb_array_length(out))
    ) s;
    RETURN out;
  END $fn$`;
}
