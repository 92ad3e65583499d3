/**
 * Giving a lease back without a result: freeing its host slot (`end_lease`), a retry after a
 * backoff (`retry`) and a release untouched (`release`). Version 1 and version 2 (which also wakes a
 * parked job) differ by one clause, so each pair shares one builder; both are frozen.
 */
import { type Names, namer } from './names.js';

/** The migrations that wrote `retry` and `release`: version 2 adds waking a parked job. */
type Version = 1 | 2;

const create = (v: Version) => (v === 1 ? 'CREATE FUNCTION' : 'CREATE OR REPLACE FUNCTION');
/** Version 2's extra assignments when a job's URL becomes ready again: unpark the job. */
const wake = (v: Version) => (v === 1 ? '' : ', ready_at = 0, wait_at = 0');

/**
 * `end_lease(job, host, now, started, host_delay)`, version 1. Frees a lease's host slot (never
 * below 0); a lease whose request started also starts the host's delay, the larger of the job's
 * and robots.txt's, without ever moving `next_at` back.
 */
export function endLeaseFunction(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('end_lease')}(p_job text, p_host text, p_now bigint, p_started boolean, p_host_delay int)
  RETURNS void LANGUAGE sql AS $fn$
    UPDATE ${t('hosts')} h SET in_flight = greatest(0, in_flight - 1),
      next_at = CASE WHEN p_started AND greatest(p_host_delay, h.crawl_delay_ms) > 0
                THEN greatest(h.next_at, p_now + greatest(p_host_delay, h.crawl_delay_ms)) ELSE h.next_at END
    WHERE h.job_id = p_job AND h.host = p_host
  $fn$`;
}

/**
 * `end_lease`, version 5: version 1 in PL/pgSQL, whose plan is cached per connection (a SQL
 * function called from PL/pgSQL is planned again at every call: a third of a page's `complete`).
 */
export function endLeaseFunctionV5(n: Names): string {
  const t = namer(n);
  return `CREATE OR REPLACE FUNCTION ${t('end_lease')}(p_job text, p_host text, p_now bigint, p_started boolean,
    p_host_delay int)
  RETURNS void LANGUAGE plpgsql AS $fn$
  BEGIN
    UPDATE ${t('hosts')} h SET in_flight = greatest(0, in_flight - 1),
      next_at = CASE WHEN p_started AND greatest(p_host_delay, h.crawl_delay_ms) > 0
                THEN greatest(h.next_at, p_now + greatest(p_host_delay, h.crawl_delay_ms)) ELSE h.next_at END
    WHERE h.job_id = p_job AND h.host = p_host;
  END $fn$`;
}

/**
 * `retry(lease, not_before, now) → boolean`. Under the job's row lock, and only while the lease's
 * token is still the URL's (else false: the lease expired and was taken over, or the job was
 * cancelled): the URL goes back to `pending`, first in line (`prio` -1) once `not_before` (at least
 * 1, which marks it waiting) has passed; its host slot is freed and the host's delay started; one
 * URL moves from in_progress to queued. Attempts stay counted. Version 2 also wakes a parked job:
 * the retry may be due before the job's park ends.
 */
function retry(n: Names, v: Version): string {
  const t = namer(n);
  return `${create(v)} ${t('retry')}(p_lease jsonb, p_not_before bigint, p_now bigint)
  RETURNS boolean LANGUAGE plpgsql AS $fn$
  DECLARE j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')};
  BEGIN
    SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
    IF NOT FOUND THEN RETURN false; END IF;
    SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = jid AND url_key = p_lease->>'key';
    IF NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM p_lease->>'token' THEN RETURN false; END IF;
    UPDATE ${t('frontier')}
      SET state = 'pending', token = NULL, not_before = greatest(p_not_before, 1), prio = -1
      WHERE job_id = jid AND url_key = fr.url_key;
    PERFORM ${t('end_lease')}(jid, fr.host, p_now, true, j.per_host_delay_ms);
    UPDATE ${t('jobs')} SET in_progress = in_progress - 1, queued = queued + 1${wake(v)}
      WHERE id = jid;
    RETURN true;
  END $fn$`;
}

/** `retry`, version 1. See `retry`. */
export function retryFunctionV1(n: Names): string {
  return retry(n, 1);
}
/** `retry`, version 2: version 1 that wakes a parked job. */
export function retryFunctionV2(n: Names): string {
  return retry(n, 2);
}

/**
 * `release(leases) → released count`. Gives leases back untouched (a processor stopping): each
 * whose token is still the URL's goes back to `pending`, first in line, its attempt not counted and
 * its host slot freed without starting the delay (no request was made). Jobs are locked in id order,
 * so two releases never deadlock. Version 2 also wakes a parked job: the released URL is ready at once.
 */
function release(n: Names, v: Version): string {
  const t = namer(n);
  return `${create(v)} ${t('release')}(p_leases jsonb) RETURNS int LANGUAGE plpgsql AS $fn$
  DECLARE l jsonb; j ${t('jobs')}; fr ${t('frontier')}; n int := 0;
  BEGIN
    FOR l IN SELECT value FROM jsonb_array_elements(p_leases) ORDER BY value->>'jobId' LOOP
      SELECT * INTO j FROM ${t('jobs')} WHERE id = l->>'jobId' FOR UPDATE;
      CONTINUE WHEN NOT FOUND;
      SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = j.id AND url_key = l->>'key';
      CONTINUE WHEN NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM l->>'token';
      UPDATE ${t('frontier')}
        SET state = 'pending', token = NULL, attempts = greatest(0, attempts - 1), prio = -1
        WHERE job_id = j.id AND url_key = fr.url_key;
      PERFORM ${t('end_lease')}(j.id, fr.host, 0, false, 0);
      UPDATE ${t('jobs')} SET in_progress = in_progress - 1, queued = queued + 1${wake(v)}
        WHERE id = j.id;
      n := n + 1;
    END LOOP;
    RETURN n;
  END $fn$`;
}

/** `release`, version 1. See `release`. */
export function releaseFunctionV1(n: Names): string {
  return release(n, 1);
}
/** `release`, version 2: version 1 that wakes a parked job. */
export function releaseFunctionV2(n: Names): string {
  return release(n, 2);
}
