/**
 * `claim`, which hands out leases: version 1, version 2 (parked jobs), which replaced it, version 7
 * (admission), a new signature beside them, and version 8, which replaces both signatures with
 * leases that carry the frontier row's `lastmod`. Versions 1, 2 and 7 are frozen: version 8 is
 * built by the same builders with its own lease JSON.
 */
import { type Names, namer } from './names.js';

/** A SQL string literal of `text`. */
const sqlString = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** The `Lease` of the frontier row `fr` just leased. */
const leaseJson = `jsonb_build_object('jobId', fr.job_id, 'url', fr.url, 'key', fr.url_key, 'depth', fr.depth,
                    'host', fr.host, 'token', fr.token, 'attempts', fr.attempts, 'expiresAt', fr.lease_until)`;

/** Version 8: the `Lease` with the row's `lastmod` when it has one (no key at all when it has none). */
const leaseJsonV8 = `${leaseJson}
                    || CASE WHEN fr.lastmod IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('lastmod', fr.lastmod) END`;

/**
 * `claim(limit, lease_ms, now, now_iso, job, max_events) → { leases, events, nextReadyAt }`,
 * version 1. Hands out at most `limit` ready URLs (of `job` alone when given): expired leases first
 * (the processor that held them is gone: a new token, one more attempt), then per host, rotating,
 * within the host's concurrency (one at a time while a delay applies) and delay. Jobs are visited in
 * least-recently-claimed order, at most 100, each getting a fair share in pass 1 and what is left in
 * pass 2. Each job is served under its row lock; a job locked by another claim is skipped (then
 * `nextReadyAt` is at most 5 ms away). A job's first claim makes it `running` with `job:started`.
 * `nextReadyAt` is the earliest time a URL not handed out could be ready (a host delay, a backoff).
 * Invariant: a host's `in_flight` counts its leased URLs; new ones are leased only below its slots.
 */
export function claimFunctionV1(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('claim')}(p_limit int, p_lease_ms bigint, p_now bigint, p_now_iso text, p_job text,
    p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    leases jsonb := '[]'; events jsonb := '[]';
    jid text; j ${t('jobs')}; h ${t('hosts')}; f record;
    remaining int := p_limit; share int; took int; fresh int; n_active int; pass int;
    slots int; delay int; tok text; next_ready bigint := NULL; busy boolean := false; w bigint; lj jsonb;
  BEGIN
    SELECT count(*) INTO n_active FROM ${t('jobs')}
      WHERE status IN ('queued', 'running') AND (p_job IS NULL OR id = p_job);
    IF n_active = 0 THEN RETURN jsonb_build_object('leases', leases, 'events', events, 'nextReadyAt', NULL); END IF;
    FOR pass IN 1..2 LOOP
      EXIT WHEN remaining <= 0;
      share := CASE WHEN pass = 1 THEN greatest(1, ceil(p_limit::numeric / least(n_active, p_limit))::int)
               ELSE remaining END;
      FOR jid IN SELECT id FROM ${t('jobs')}
                 WHERE status IN ('queued', 'running') AND (p_job IS NULL OR id = p_job)
                 ORDER BY last_claim, ordinal LIMIT 100 LOOP
        EXIT WHEN remaining <= 0;
        IF p_job IS NOT NULL THEN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
        ELSE
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE SKIP LOCKED;
          IF NOT FOUND THEN busy := true; CONTINUE; END IF;
        END IF;
        CONTINUE WHEN j.status NOT IN ('queued', 'running');
        took := 0; fresh := 0;
        -- Expired leases: the processor that held them is gone.
        FOR f IN SELECT url_key FROM ${t('frontier')}
                 WHERE job_id = jid AND state = 'leased' AND lease_until <= p_now
                 ORDER BY lease_until LIMIT least(share, remaining) FOR UPDATE SKIP LOCKED LOOP
          tok := gen_random_uuid()::text;
          UPDATE ${t('frontier')} fr
            SET token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms
            WHERE fr.job_id = jid AND fr.url_key = f.url_key
            RETURNING ${leaseJson} INTO lj;
          leases := leases || jsonb_build_array(lj);
          took := took + 1;
        END LOOP;
        -- Retries whose backoff has passed become ready.
        UPDATE ${t('frontier')} SET not_before = 0, prio = -1
          WHERE job_id = jid AND state = 'pending' AND not_before > 0 AND not_before <= p_now;
        FOR h IN SELECT * FROM ${t('hosts')} WHERE job_id = jid ORDER BY last_pick, host LOOP
          EXIT WHEN took >= share OR took >= remaining;
          delay := greatest(j.per_host_delay_ms, h.crawl_delay_ms);
          slots := CASE WHEN delay > 0 THEN 1 ELSE j.per_host_concurrency END;
          CONTINUE WHEN h.in_flight >= slots;
          IF h.next_at > p_now THEN
            IF EXISTS (SELECT 1 FROM ${t('frontier')}
                       WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0) THEN
              next_ready := least(coalesce(next_ready, h.next_at), h.next_at);
            END IF;
            CONTINUE;
          END IF;
          w := 0;
          FOR f IN SELECT url_key FROM ${t('frontier')}
                   WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0
                   ORDER BY prio, seq LIMIT least(slots - h.in_flight, share - took, remaining - took)
                   FOR UPDATE SKIP LOCKED LOOP
            tok := gen_random_uuid()::text;
            UPDATE ${t('frontier')} fr
              SET state = 'leased', token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms, prio = 0
              WHERE fr.job_id = jid AND fr.url_key = f.url_key
              RETURNING ${leaseJson} INTO lj;
            leases := leases || jsonb_build_array(lj);
            took := took + 1; fresh := fresh + 1; w := w + 1;
          END LOOP;
          IF w > 0 THEN
            UPDATE ${t('hosts')} SET in_flight = in_flight + w, last_pick = p_now
              WHERE job_id = jid AND host = h.host;
          END IF;
        END LOOP;
        IF took > 0 THEN
          UPDATE ${t('jobs')}
            SET queued = queued - fresh, in_progress = in_progress + fresh, last_claim = p_now,
            status = 'running', started_at = coalesce(started_at, p_now_iso) WHERE id = jid;
          IF j.status = 'queued' THEN
            events := events || jsonb_build_array(${t('append_event')}(jid, 'job:started', p_now_iso, NULL, NULL,
              p_max_events));
          END IF;
          remaining := remaining - took;
        END IF;
      END LOOP;
    END LOOP;
    IF remaining > 0 THEN
      SELECT least(next_ready, min(fr.not_before)) INTO next_ready FROM ${t('frontier')} fr
        JOIN ${t('jobs')} jj ON jj.id = fr.job_id
        WHERE fr.state = 'pending' AND fr.not_before > p_now AND jj.status IN ('queued', 'running')
          AND (p_job IS NULL OR fr.job_id = p_job);
      IF busy THEN next_ready := least(coalesce(next_ready, p_now + 5), p_now + 5); END IF;
    END IF;
    RETURN jsonb_build_object('leases', leases, 'events', events, 'nextReadyAt', next_ready);
  END $fn$`;
}

/**
 * `claim`, version 2: version 1, with parked jobs. Visits at most 100 jobs that are not parked (or
 * whose park has ended), least recently claimed first; a job that has nothing ready is parked
 * (`ready_at`) until the earliest time it could (a host delay or retry backoff ending, a live lease
 * expiring), so parked jobs cost claims nothing however many there are. `nextReadyAt` takes the
 * parked jobs' clock waits from `wait_at`, and is `now` when more than 100 jobs were eligible.
 * Invariant: a job is parked only after all its hosts were looked at and none gave a URL, and every
 * change that can make a URL ready (complete, retry, release) resets `ready_at` to 0.
 */
export function claimFunctionV2(n: Names): string {
  return claimV2(n, leaseJson);
}

function claimV2(n: Names, lease: string): string {
  const t = namer(n);
  const active = `status IN ('queued', 'running')`;
  return `CREATE OR REPLACE FUNCTION ${t('claim')}(p_limit int, p_lease_ms bigint, p_now bigint, p_now_iso text,
    p_job text, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    leases jsonb := '[]'; events jsonb := '[]';
    cands text[]; served text[] := '{}'; idle text[] := '{}';
    jid text; j ${t('jobs')}; h ${t('hosts')}; f record;
    remaining int := p_limit; share int; took int; fresh int; n_ready int; pass int;
    slots int; delay int; tok text; next_ready bigint := NULL; busy boolean := false; w bigint; lj jsonb;
    host_wait bigint; clock_wait bigint; lease_wait bigint; park_at bigint;
  BEGIN
    IF p_job IS NOT NULL THEN
      SELECT coalesce(array_agg(id), '{}') INTO cands FROM ${t('jobs')}
        WHERE id = p_job AND ${active};
    ELSE
      SELECT coalesce(array_agg(c.id ORDER BY c.last_claim, c.ordinal), '{}') INTO cands FROM (
        SELECT u.id, u.last_claim, u.ordinal FROM (
          (SELECT id, last_claim, ordinal FROM ${t('jobs')}
           WHERE ${active} AND ready_at = 0 ORDER BY last_claim, ordinal LIMIT 100)
          UNION ALL
          (SELECT id, last_claim, ordinal FROM ${t('jobs')}
           WHERE ${active} AND ready_at > 0 AND ready_at <= p_now ORDER BY ready_at LIMIT 100)
        ) u ORDER BY u.last_claim, u.ordinal LIMIT 100
      ) c;
    END IF;
    n_ready := cardinality(cands);
    FOR pass IN 1..2 LOOP
      EXIT WHEN remaining <= 0 OR n_ready = 0;
      share := CASE WHEN pass = 1 THEN greatest(1, ceil(p_limit::numeric / least(n_ready, p_limit))::int)
               ELSE remaining END;
      FOREACH jid IN ARRAY cands LOOP
        EXIT WHEN remaining <= 0;
        -- Pass 1 found nothing in it: no need to look again.
        CONTINUE WHEN pass = 2 AND jid = ANY(idle);
        IF p_job IS NOT NULL THEN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
        ELSE
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE SKIP LOCKED;
          IF NOT FOUND THEN busy := true; CONTINUE; END IF;
        END IF;
        CONTINUE WHEN j.status NOT IN ('queued', 'running');
        -- Parked meanwhile (by pass 1, or by another claim): nothing to find here.
        CONTINUE WHEN p_job IS NULL AND j.ready_at > p_now;
        took := 0; fresh := 0; host_wait := NULL;
        -- Expired leases: the processor that held them is gone.
        FOR f IN SELECT url_key FROM ${t('frontier')}
                 WHERE job_id = jid AND state = 'leased' AND lease_until <= p_now
                 ORDER BY lease_until LIMIT least(share, remaining) FOR UPDATE SKIP LOCKED LOOP
          tok := gen_random_uuid()::text;
          UPDATE ${t('frontier')} fr
            SET token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms
            WHERE fr.job_id = jid AND fr.url_key = f.url_key
            RETURNING ${lease} INTO lj;
          leases := leases || jsonb_build_array(lj);
          took := took + 1;
        END LOOP;
        -- Retries whose backoff has passed become ready.
        UPDATE ${t('frontier')} SET not_before = 0, prio = -1
          WHERE job_id = jid AND state = 'pending' AND not_before > 0 AND not_before <= p_now;
        FOR h IN SELECT * FROM ${t('hosts')} WHERE job_id = jid ORDER BY last_pick, host LOOP
          EXIT WHEN took >= share OR took >= remaining;
          delay := greatest(j.per_host_delay_ms, h.crawl_delay_ms);
          slots := CASE WHEN delay > 0 THEN 1 ELSE j.per_host_concurrency END;
          CONTINUE WHEN h.in_flight >= slots;
          IF h.next_at > p_now THEN
            IF EXISTS (SELECT 1 FROM ${t('frontier')}
                       WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0) THEN
              next_ready := least(coalesce(next_ready, h.next_at), h.next_at);
              host_wait := least(coalesce(host_wait, h.next_at), h.next_at);
            END IF;
            CONTINUE;
          END IF;
          w := 0;
          FOR f IN SELECT url_key FROM ${t('frontier')}
                   WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0
                   ORDER BY prio, seq LIMIT least(slots - h.in_flight, share - took, remaining - took)
                   FOR UPDATE SKIP LOCKED LOOP
            tok := gen_random_uuid()::text;
            UPDATE ${t('frontier')} fr
              SET state = 'leased', token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms, prio = 0
              WHERE fr.job_id = jid AND fr.url_key = f.url_key
              RETURNING ${lease} INTO lj;
            leases := leases || jsonb_build_array(lj);
            took := took + 1; fresh := fresh + 1; w := w + 1;
          END LOOP;
          IF w > 0 THEN
            UPDATE ${t('hosts')} SET in_flight = in_flight + w, last_pick = p_now
              WHERE job_id = jid AND host = h.host;
          END IF;
        END LOOP;
        IF took > 0 THEN
          UPDATE ${t('jobs')}
            SET queued = queued - fresh, in_progress = in_progress + fresh, last_claim = p_now,
            ready_at = 0, wait_at = 0, status = 'running', started_at = coalesce(started_at, p_now_iso) WHERE id = jid;
          IF j.status = 'queued' THEN
            events := events || jsonb_build_array(${t('append_event')}(jid, 'job:started', p_now_iso, NULL, NULL,
              p_max_events));
          END IF;
          IF NOT jid = ANY(served) THEN served := served || jid; END IF;
          remaining := remaining - took;
        ELSIF NOT jid = ANY(served) THEN
          idle := idle || jid;
          -- Nothing ready (and nothing given by pass 1): every host of the job was looked at
          -- (took stayed below share), so each pending URL waits on its host's delay, on its
          -- backoff or on a host slot held by a live lease. Park the job until the earliest
          -- of those ends.
          SELECT min(not_before) INTO clock_wait FROM ${t('frontier')}
            WHERE job_id = jid AND state = 'pending' AND not_before > 0;
          SELECT min(lease_until) INTO lease_wait FROM ${t('frontier')}
            WHERE job_id = jid AND state = 'leased';
          clock_wait := least(host_wait, clock_wait);
          -- With nothing waiting on the clock or a lease, only a wake ends the park.
          park_at := coalesce(least(clock_wait, lease_wait), 9000000000000000);
          IF park_at > p_now AND (j.ready_at <> park_at OR j.wait_at <> coalesce(clock_wait, 0)) THEN
            UPDATE ${t('jobs')} SET ready_at = park_at, wait_at = coalesce(clock_wait, 0) WHERE id = jid;
          END IF;
        END IF;
      END LOOP;
    END LOOP;
    IF remaining > 0 THEN
      -- Backoffs of the jobs that gave URLs; parked jobs (those of this claim too) keep theirs in wait_at.
      IF cardinality(served) > 0 THEN
        SELECT least(next_ready, min(fr.not_before)) INTO next_ready FROM ${t('frontier')} fr
          WHERE fr.job_id = ANY(served) AND fr.state = 'pending' AND fr.not_before > 0 AND fr.not_before > p_now;
      END IF;
      SELECT least(next_ready, min(wait_at)) INTO next_ready FROM ${t('jobs')}
        WHERE ${active} AND wait_at > 0 AND wait_at > p_now AND (p_job IS NULL OR id = p_job);
      -- More jobs were eligible than one claim visits: the next claim sees the others at once.
      IF p_job IS NULL AND n_ready >= 100 THEN next_ready := p_now; END IF;
      IF busy THEN next_ready := least(coalesce(next_ready, p_now + 5), p_now + 5); END IF;
    END IF;
    RETURN jsonb_build_object('leases', leases, 'events', events, 'nextReadyAt', next_ready);
  END $fn$`;
}

/**
 * `claim(limit, lease_ms, now, now_iso, job, max_events, max_active)`, version 7: version 2 with
 * admission. A claim across jobs given `max_active` first starts queued jobs, in order of `priority`
 * (highest first), then `ordinal`, while fewer than `max_active` jobs started that way (`admitted`)
 * are running: `running`, `started_at` and `job:started` now, so that this claim visits them first
 * (never claimed: `last_claim` 0). Then it visits only running jobs (indexes `jobs_running_*`), so
 * neither admission nor the visit reads the queued jobs beyond the next few in line, however many
 * there are. One claim admits at a time (a transaction advisory lock, tried: a claim that does not
 * get it admits nothing this time), so concurrent claims never overshoot the bound. Without
 * `max_active` (NULL) it is version 2: queued jobs are visited and started by their first lease. A
 * claim of one job (`job`) starts it by its first lease, uncounted.
 * A job this claim parks waiting on the clock (a host delay or a retry backoff) is no longer
 * counted (`admitted` false): the bound holds jobs that could make progress now.
 *
 * Version 2's description follows.
 *
 * `claim`, version 2: version 1, with parked jobs. Visits at most 100 jobs that are not parked (or
 * whose park has ended), least recently claimed first; a job that has nothing ready is parked
 * (`ready_at`) until the earliest time it could (a host delay or retry backoff ending, a live lease
 * expiring), so parked jobs cost claims nothing however many there are. `nextReadyAt` takes the
 * parked jobs' clock waits from `wait_at`, and is `now` when more than 100 jobs were eligible.
 * Invariant: a job is parked only after all its hosts were looked at and none gave a URL, and every
 * change that can make a URL ready (complete, retry, release) resets `ready_at` to 0.
 */
export function claimFunctionV7(n: Names): string {
  return claimV7(n, 'CREATE FUNCTION', leaseJson);
}

/**
 * `claim`, version 8: versions 2 (the signature without `max_active`) and 7, replaced, each the same
 * but for its leases, which carry the frontier row's `lastmod` when it has one.
 */
export function claimFunctionsV8(n: Names): string[] {
  return [claimV2(n, leaseJsonV8), claimV7(n, 'CREATE OR REPLACE FUNCTION', leaseJsonV8)];
}

function claimV7(n: Names, create: string, lease: string): string {
  const t = namer(n);
  const active = `status IN ('queued', 'running')`;
  const lock = `hashtext('crawl-engine:admit:' || ${sqlString(t('jobs'))})`;
  return `${create} ${t('claim')}(p_limit int, p_lease_ms bigint, p_now bigint, p_now_iso text,
    p_job text, p_max_events int, p_max_active int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    leases jsonb := '[]'; events jsonb := '[]';
    cands text[]; served text[] := '{}'; idle text[] := '{}';
    jid text; j ${t('jobs')}; h ${t('hosts')}; f record;
    remaining int := p_limit; share int; took int; fresh int; n_ready int; pass int;
    slots int; delay int; tok text; next_ready bigint := NULL; busy boolean := false; w bigint; lj jsonb;
    host_wait bigint; clock_wait bigint; lease_wait bigint; park_at bigint; n_admitted int;
    freed boolean := false;
  BEGIN
    IF p_job IS NULL AND p_max_active IS NOT NULL AND pg_try_advisory_xact_lock(${lock}) THEN
      SELECT count(*) INTO n_admitted FROM ${t('jobs')} WHERE status = 'running' AND admitted;
      -- FOR UPDATE rechecks the status of a row another transaction changed (cancelled, or started
      -- by a claim of its own); a row locked right now is left for the next claim.
      FOR jid IN SELECT id FROM ${t('jobs')} WHERE status = 'queued'
                 ORDER BY priority DESC, ordinal LIMIT greatest(0, p_max_active - n_admitted)
                 FOR UPDATE SKIP LOCKED LOOP
        UPDATE ${t('jobs')} SET status = 'running', admitted = true, started_at = coalesce(started_at, p_now_iso),
          ready_at = 0, wait_at = 0 WHERE id = jid;
        events := events || jsonb_build_array(${t('append_event')}(jid, 'job:started', p_now_iso, NULL, NULL,
          p_max_events));
      END LOOP;
    END IF;
    IF p_job IS NOT NULL THEN
      SELECT coalesce(array_agg(id), '{}') INTO cands FROM ${t('jobs')}
        WHERE id = p_job AND ${active};
    ELSE
      SELECT coalesce(array_agg(c.id ORDER BY c.last_claim, c.ordinal), '{}') INTO cands FROM (
        SELECT u.id, u.last_claim, u.ordinal FROM (
          (SELECT id, last_claim, ordinal FROM ${t('jobs')}
           WHERE p_max_active IS NULL AND ${active} AND ready_at = 0 ORDER BY last_claim, ordinal LIMIT 100)
          UNION ALL
          (SELECT id, last_claim, ordinal FROM ${t('jobs')}
           WHERE p_max_active IS NULL AND ${active} AND ready_at > 0 AND ready_at <= p_now ORDER BY ready_at LIMIT 100)
          UNION ALL
          (SELECT id, last_claim, ordinal FROM ${t('jobs')}
           WHERE p_max_active IS NOT NULL AND status = 'running' AND ready_at = 0 ORDER BY last_claim, ordinal LIMIT 100)
          UNION ALL
          (SELECT id, last_claim, ordinal FROM ${t('jobs')}
           WHERE p_max_active IS NOT NULL AND status = 'running' AND ready_at > 0 AND ready_at <= p_now
           ORDER BY ready_at LIMIT 100)
        ) u ORDER BY u.last_claim, u.ordinal LIMIT 100
      ) c;
    END IF;
    n_ready := cardinality(cands);
    FOR pass IN 1..2 LOOP
      EXIT WHEN remaining <= 0 OR n_ready = 0;
      share := CASE WHEN pass = 1 THEN greatest(1, ceil(p_limit::numeric / least(n_ready, p_limit))::int)
               ELSE remaining END;
      FOREACH jid IN ARRAY cands LOOP
        EXIT WHEN remaining <= 0;
        -- Pass 1 found nothing in it: no need to look again.
        CONTINUE WHEN pass = 2 AND jid = ANY(idle);
        IF p_job IS NOT NULL THEN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
        ELSE
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE SKIP LOCKED;
          IF NOT FOUND THEN busy := true; CONTINUE; END IF;
        END IF;
        CONTINUE WHEN j.status NOT IN ('queued', 'running');
        -- Parked meanwhile (by pass 1, or by another claim): nothing to find here.
        CONTINUE WHEN p_job IS NULL AND j.ready_at > p_now;
        took := 0; fresh := 0; host_wait := NULL;
        -- Expired leases: the processor that held them is gone.
        FOR f IN SELECT url_key FROM ${t('frontier')}
                 WHERE job_id = jid AND state = 'leased' AND lease_until <= p_now
                 ORDER BY lease_until LIMIT least(share, remaining) FOR UPDATE SKIP LOCKED LOOP
          tok := gen_random_uuid()::text;
          UPDATE ${t('frontier')} fr
            SET token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms
            WHERE fr.job_id = jid AND fr.url_key = f.url_key
            RETURNING ${lease} INTO lj;
          leases := leases || jsonb_build_array(lj);
          took := took + 1;
        END LOOP;
        -- Retries whose backoff has passed become ready.
        UPDATE ${t('frontier')} SET not_before = 0, prio = -1
          WHERE job_id = jid AND state = 'pending' AND not_before > 0 AND not_before <= p_now;
        FOR h IN SELECT * FROM ${t('hosts')} WHERE job_id = jid ORDER BY last_pick, host LOOP
          EXIT WHEN took >= share OR took >= remaining;
          delay := greatest(j.per_host_delay_ms, h.crawl_delay_ms);
          slots := CASE WHEN delay > 0 THEN 1 ELSE j.per_host_concurrency END;
          CONTINUE WHEN h.in_flight >= slots;
          IF h.next_at > p_now THEN
            IF EXISTS (SELECT 1 FROM ${t('frontier')}
                       WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0) THEN
              next_ready := least(coalesce(next_ready, h.next_at), h.next_at);
              host_wait := least(coalesce(host_wait, h.next_at), h.next_at);
            END IF;
            CONTINUE;
          END IF;
          w := 0;
          FOR f IN SELECT url_key FROM ${t('frontier')}
                   WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0
                   ORDER BY prio, seq LIMIT least(slots - h.in_flight, share - took, remaining - took)
                   FOR UPDATE SKIP LOCKED LOOP
            tok := gen_random_uuid()::text;
            UPDATE ${t('frontier')} fr
              SET state = 'leased', token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms, prio = 0
              WHERE fr.job_id = jid AND fr.url_key = f.url_key
              RETURNING ${lease} INTO lj;
            leases := leases || jsonb_build_array(lj);
            took := took + 1; fresh := fresh + 1; w := w + 1;
          END LOOP;
          IF w > 0 THEN
            UPDATE ${t('hosts')} SET in_flight = in_flight + w, last_pick = p_now
              WHERE job_id = jid AND host = h.host;
          END IF;
        END LOOP;
        IF took > 0 THEN
          UPDATE ${t('jobs')}
            SET queued = queued - fresh, in_progress = in_progress + fresh, last_claim = p_now,
            ready_at = 0, wait_at = 0, status = 'running', started_at = coalesce(started_at, p_now_iso) WHERE id = jid;
          IF j.status = 'queued' THEN
            events := events || jsonb_build_array(${t('append_event')}(jid, 'job:started', p_now_iso, NULL, NULL,
              p_max_events));
          END IF;
          IF NOT jid = ANY(served) THEN served := served || jid; END IF;
          remaining := remaining - took;
        ELSIF NOT jid = ANY(served) THEN
          idle := idle || jid;
          -- Nothing ready (and nothing given by pass 1): every host of the job was looked at
          -- (took stayed below share), so each pending URL waits on its host's delay, on its
          -- backoff or on a host slot held by a live lease. Park the job until the earliest
          -- of those ends.
          SELECT min(not_before) INTO clock_wait FROM ${t('frontier')}
            WHERE job_id = jid AND state = 'pending' AND not_before > 0;
          SELECT min(lease_until) INTO lease_wait FROM ${t('frontier')}
            WHERE job_id = jid AND state = 'leased';
          clock_wait := least(host_wait, clock_wait);
          -- With nothing waiting on the clock or a lease, only a wake ends the park.
          park_at := coalesce(least(clock_wait, lease_wait), 9000000000000000);
          -- Waiting on the clock, an admitted job gives up its place (admitted = false): it runs on
          -- uncounted. Parked only on host slots held by live leases, it keeps it.
          IF park_at > p_now AND (j.ready_at <> park_at OR j.wait_at <> coalesce(clock_wait, 0)
                                  OR (clock_wait IS NOT NULL AND j.admitted)) THEN
            UPDATE ${t('jobs')} SET ready_at = park_at, wait_at = coalesce(clock_wait, 0),
              admitted = admitted AND clock_wait IS NULL WHERE id = jid;
            freed := freed OR (clock_wait IS NOT NULL AND j.admitted);
          END IF;
        END IF;
      END LOOP;
    END LOOP;
    IF remaining > 0 THEN
      -- Backoffs of the jobs that gave URLs; parked jobs (those of this claim too) keep theirs in wait_at.
      IF cardinality(served) > 0 THEN
        SELECT least(next_ready, min(fr.not_before)) INTO next_ready FROM ${t('frontier')} fr
          WHERE fr.job_id = ANY(served) AND fr.state = 'pending' AND fr.not_before > 0 AND fr.not_before > p_now;
      END IF;
      SELECT least(next_ready, min(wait_at)) INTO next_ready FROM ${t('jobs')}
        WHERE ${active} AND wait_at > 0 AND wait_at > p_now AND (p_job IS NULL OR id = p_job);

      -- More jobs were eligible than one claim visits: the next claim sees the others at once.
      IF p_job IS NULL AND n_ready >= 100 THEN next_ready := p_now; END IF;
      IF busy THEN next_ready := least(coalesce(next_ready, p_now + 5), p_now + 5); END IF;
      -- Jobs parked on the clock gave up their places: the next claim admits queued jobs at once.
      IF freed AND p_max_active IS NOT NULL AND EXISTS (SELECT 1 FROM ${t('jobs')} WHERE status = 'queued') THEN
        next_ready := p_now;
      END IF;
    END IF;
    RETURN jsonb_build_object('leases', leases, 'events', events, 'nextReadyAt', next_ready);
  END $fn$`;
}
