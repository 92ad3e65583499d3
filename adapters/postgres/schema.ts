/**
 * The Postgres schema as versioned migrations. Every storage operation that reads and writes is
 * one SQL function, so each is one round trip and atomic on its own (it works over Neon's HTTP
 * driver too). Every function that touches a job locks that job's row first, so the operations of
 * one job never interleave: exact `maxPages`, completion exactly once, no deadlocks.
 */

export interface Names {
  /** Quoted schema, e.g. `"public"`. */
  schema: string;
  /** Table/function name prefix, e.g. `crawl_`. */
  prefix: string;
}

/** A fully qualified, quoted name: `"public"."crawl_jobs"`. */
export const qualified = (n: Names, name: string) => `${n.schema}."${n.prefix}${name}"`;

export interface Migration {
  version: number;
  name: string;
  statements: (n: Names) => string[];
}

const counts = `jsonb_build_object('discovered', j.discovered, 'queued', j.queued, 'inProgress', j.in_progress, 'succeeded', j.succeeded, 'failed', j.failed, 'skipped', j.skipped)`;

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'jobs, frontier, hosts, results, events, robots',
    statements: (n) => {
      const t = (name: string) => qualified(n, name);
      return [
        `CREATE TABLE ${t('jobs')} (
          id text PRIMARY KEY,
          ordinal bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
          status text NOT NULL,
          url text NOT NULL,
          options jsonb NOT NULL,
          metadata jsonb NOT NULL,
          created_at text NOT NULL,
          started_at text,
          finished_at text,
          error jsonb,
          first_error jsonb,
          discovered int NOT NULL DEFAULT 1,
          queued int NOT NULL DEFAULT 1,
          in_progress int NOT NULL DEFAULT 0,
          succeeded int NOT NULL DEFAULT 0,
          failed int NOT NULL DEFAULT 0,
          skipped int NOT NULL DEFAULT 0,
          event_seq bigint NOT NULL DEFAULT 0,
          trimmed jsonb,
          last_claim bigint NOT NULL DEFAULT 0,
          max_pages int NOT NULL,
          per_host_concurrency int NOT NULL,
          per_host_delay_ms int NOT NULL
        )`,
        `CREATE INDEX "${n.prefix}jobs_active" ON ${t('jobs')} (last_claim, ordinal) WHERE status IN ('queued', 'running')`,
        `CREATE INDEX "${n.prefix}jobs_status" ON ${t('jobs')} (status, ordinal)`,
        `CREATE TABLE ${t('frontier')} (
          job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
          url_key text NOT NULL,
          seq bigint GENERATED ALWAYS AS IDENTITY,
          url text NOT NULL,
          depth int NOT NULL,
          host text NOT NULL,
          state text NOT NULL DEFAULT 'pending',
          token text,
          attempts int NOT NULL DEFAULT 0,
          lease_until bigint NOT NULL DEFAULT 0,
          not_before bigint NOT NULL DEFAULT 0,
          prio int NOT NULL DEFAULT 0,
          PRIMARY KEY (job_id, url_key)
        )`,
        `CREATE INDEX "${n.prefix}frontier_ready" ON ${t('frontier')} (job_id, host, prio, seq) WHERE state = 'pending'`,
        `CREATE INDEX "${n.prefix}frontier_leased" ON ${t('frontier')} (job_id, lease_until) WHERE state = 'leased'`,
        `CREATE INDEX "${n.prefix}frontier_waiting" ON ${t('frontier')} (job_id, not_before) WHERE state = 'pending' AND not_before > 0`,
        `CREATE TABLE ${t('hosts')} (
          job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
          host text NOT NULL,
          in_flight int NOT NULL DEFAULT 0,
          next_at bigint NOT NULL DEFAULT 0,
          crawl_delay_ms int NOT NULL DEFAULT 0,
          last_pick bigint NOT NULL DEFAULT 0,
          PRIMARY KEY (job_id, host)
        )`,
        `CREATE TABLE ${t('results')} (
          job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
          seq bigint GENERATED ALWAYS AS IDENTITY,
          result jsonb NOT NULL,
          PRIMARY KEY (job_id, seq)
        )`,
        `CREATE TABLE ${t('events')} (
          job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
          id bigint NOT NULL,
          event jsonb NOT NULL,
          PRIMARY KEY (job_id, id)
        )`,
        `CREATE TABLE ${t('robots')} (
          job_id text NOT NULL REFERENCES ${t('jobs')} (id) ON DELETE CASCADE,
          origin text NOT NULL,
          record jsonb NOT NULL,
          PRIMARY KEY (job_id, origin)
        )`,

        // The JSON of a job row, as the API returns it.
        `CREATE FUNCTION ${t('job_json')}(j ${t('jobs')}) RETURNS jsonb LANGUAGE sql STABLE AS $fn$
          SELECT jsonb_build_object(
            'id', j.id, 'status', j.status, 'url', j.url, 'options', j.options,
            'counts', ${counts},
            'createdAt', j.created_at, 'startedAt', j.started_at, 'finishedAt', j.finished_at,
            'error', j.error, 'metadata', j.metadata)
        $fn$`,

        // Appends one event with the job's current counts; trims the log; wakes LISTENers.
        `CREATE FUNCTION ${t('append_event')}(p_job text, p_type text, p_at text, p_url text, p_error jsonb, p_max_events int)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE j ${t('jobs')}; ev jsonb; slack int := greatest(16, p_max_events / 8); cut bigint;
        BEGIN
          UPDATE ${t('jobs')} SET event_seq = event_seq + 1 WHERE id = p_job RETURNING * INTO j;
          ev := jsonb_build_object('id', j.event_seq::text, 'jobId', p_job, 'type', p_type, 'at', p_at, 'counts', ${counts});
          IF p_url IS NOT NULL THEN ev := ev || jsonb_build_object('url', p_url); END IF;
          IF p_error IS NOT NULL THEN ev := ev || jsonb_build_object('error', p_error); END IF;
          INSERT INTO ${t('events')} (job_id, id, event) VALUES (p_job, j.event_seq, ev);
          IF j.event_seq > p_max_events + slack AND j.event_seq % slack = 0 THEN
            cut := j.event_seq - p_max_events;
            UPDATE ${t('jobs')} SET trimmed = (SELECT event FROM ${t('events')} WHERE job_id = p_job AND id = cut) WHERE id = p_job;
            DELETE FROM ${t('events')} WHERE job_id = p_job AND id <= cut;
          END IF;
          PERFORM pg_notify('${n.prefix}events', p_job);
          RETURN ev;
        END $fn$`,

        `CREATE FUNCTION ${t('create_job')}(p_job jsonb, p_seed jsonb, p_max_events int) RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE j ${t('jobs')}; ev jsonb;
        BEGIN
          INSERT INTO ${t('jobs')} (id, status, url, options, metadata, created_at, max_pages, per_host_concurrency, per_host_delay_ms)
          VALUES (p_job->>'id', 'queued', p_job->>'url', p_job->'options', p_job->'metadata', p_job->>'createdAt',
                  (p_job->'options'->>'maxPages')::int, (p_job->'options'->>'perHostConcurrency')::int, (p_job->'options'->>'perHostDelayMs')::int);
          INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host) VALUES (p_job->>'id', p_seed->>'key', p_seed->>'url', (p_seed->>'depth')::int, p_seed->>'host');
          INSERT INTO ${t('hosts')} (job_id, host) VALUES (p_job->>'id', p_seed->>'host');
          ev := ${t('append_event')}(p_job->>'id', 'job:created', p_job->>'createdAt', p_job->>'url', NULL, p_max_events);
          SELECT * INTO j FROM ${t('jobs')} WHERE id = p_job->>'id';
          RETURN jsonb_build_object('job', ${t('job_json')}(j), 'events', jsonb_build_array(ev));
        END $fn$`,

        // Hands out ready URLs: expired leases first, then per host (rotating) within the host's
        // concurrency and delay; jobs in least-recently-claimed order, each getting a fair share.
        `CREATE FUNCTION ${t('claim')}(p_limit int, p_lease_ms bigint, p_now bigint, p_now_iso text, p_job text, p_max_events int)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
          leases jsonb := '[]'; events jsonb := '[]';
          jid text; j ${t('jobs')}; h ${t('hosts')}; f record;
          remaining int := p_limit; share int; took int; fresh int; n_active int; pass int;
          slots int; delay int; tok text; next_ready bigint := NULL; busy boolean := false; w bigint; lj jsonb;
        BEGIN
          SELECT count(*) INTO n_active FROM ${t('jobs')} WHERE status IN ('queued', 'running') AND (p_job IS NULL OR id = p_job);
          IF n_active = 0 THEN RETURN jsonb_build_object('leases', leases, 'events', events, 'nextReadyAt', NULL); END IF;
          FOR pass IN 1..2 LOOP
            EXIT WHEN remaining <= 0;
            share := CASE WHEN pass = 1 THEN greatest(1, ceil(p_limit::numeric / least(n_active, p_limit))::int) ELSE remaining END;
            FOR jid IN SELECT id FROM ${t('jobs')} WHERE status IN ('queued', 'running') AND (p_job IS NULL OR id = p_job) ORDER BY last_claim, ordinal LIMIT 100 LOOP
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
              FOR f IN SELECT url_key FROM ${t('frontier')} WHERE job_id = jid AND state = 'leased' AND lease_until <= p_now ORDER BY lease_until LIMIT least(share, remaining) FOR UPDATE SKIP LOCKED LOOP
                tok := gen_random_uuid()::text;
                UPDATE ${t('frontier')} fr SET token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms
                  WHERE fr.job_id = jid AND fr.url_key = f.url_key
                  RETURNING jsonb_build_object('jobId', fr.job_id, 'url', fr.url, 'key', fr.url_key, 'depth', fr.depth, 'host', fr.host, 'token', fr.token, 'attempts', fr.attempts, 'expiresAt', fr.lease_until) INTO lj;
                leases := leases || jsonb_build_array(lj);
                took := took + 1;
              END LOOP;
              -- Retries whose backoff has passed become ready.
              UPDATE ${t('frontier')} SET not_before = 0, prio = -1 WHERE job_id = jid AND state = 'pending' AND not_before > 0 AND not_before <= p_now;
              FOR h IN SELECT * FROM ${t('hosts')} WHERE job_id = jid ORDER BY last_pick, host LOOP
                EXIT WHEN took >= share OR took >= remaining;
                delay := greatest(j.per_host_delay_ms, h.crawl_delay_ms);
                slots := CASE WHEN delay > 0 THEN 1 ELSE j.per_host_concurrency END;
                CONTINUE WHEN h.in_flight >= slots;
                IF h.next_at > p_now THEN
                  IF EXISTS (SELECT 1 FROM ${t('frontier')} WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0) THEN
                    next_ready := least(coalesce(next_ready, h.next_at), h.next_at);
                  END IF;
                  CONTINUE;
                END IF;
                w := 0;
                FOR f IN SELECT url_key FROM ${t('frontier')} WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0
                         ORDER BY prio, seq LIMIT least(slots - h.in_flight, share - took, remaining - took) FOR UPDATE SKIP LOCKED LOOP
                  tok := gen_random_uuid()::text;
                  UPDATE ${t('frontier')} fr SET state = 'leased', token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms, prio = 0
                    WHERE fr.job_id = jid AND fr.url_key = f.url_key
                    RETURNING jsonb_build_object('jobId', fr.job_id, 'url', fr.url, 'key', fr.url_key, 'depth', fr.depth, 'host', fr.host, 'token', fr.token, 'attempts', fr.attempts, 'expiresAt', fr.lease_until) INTO lj;
                  leases := leases || jsonb_build_array(lj);
                  took := took + 1; fresh := fresh + 1; w := w + 1;
                END LOOP;
                IF w > 0 THEN
                  UPDATE ${t('hosts')} SET in_flight = in_flight + w, last_pick = p_now WHERE job_id = jid AND host = h.host;
                END IF;
              END LOOP;
              IF took > 0 THEN
                UPDATE ${t('jobs')} SET queued = queued - fresh, in_progress = in_progress + fresh, last_claim = p_now,
                  status = 'running', started_at = coalesce(started_at, p_now_iso) WHERE id = jid;
                IF j.status = 'queued' THEN
                  events := events || jsonb_build_array(${t('append_event')}(jid, 'job:started', p_now_iso, NULL, NULL, p_max_events));
                END IF;
                remaining := remaining - took;
              END IF;
            END LOOP;
          END LOOP;
          IF remaining > 0 THEN
            SELECT least(next_ready, min(fr.not_before)) INTO next_ready FROM ${t('frontier')} fr
              JOIN ${t('jobs')} jj ON jj.id = fr.job_id
              WHERE fr.state = 'pending' AND fr.not_before > p_now AND jj.status IN ('queued', 'running') AND (p_job IS NULL OR fr.job_id = p_job);
            IF busy THEN next_ready := least(coalesce(next_ready, p_now + 5), p_now + 5); END IF;
          END IF;
          RETURN jsonb_build_object('leases', leases, 'events', events, 'nextReadyAt', next_ready);
        END $fn$`,

        // Frees a lease's host slot; a started request also starts the host's delay.
        `CREATE FUNCTION ${t('end_lease')}(p_job text, p_host text, p_now bigint, p_started boolean, p_host_delay int) RETURNS void LANGUAGE sql AS $fn$
          UPDATE ${t('hosts')} h SET in_flight = greatest(0, in_flight - 1),
            next_at = CASE WHEN p_started AND greatest(p_host_delay, h.crawl_delay_ms) > 0 THEN greatest(h.next_at, p_now + greatest(p_host_delay, h.crawl_delay_ms)) ELSE h.next_at END
          WHERE h.job_id = p_job AND h.host = p_host
        $fn$`,

        `CREATE FUNCTION ${t('complete')}(p_lease jsonb, p_result jsonb, p_links jsonb, p_now bigint, p_now_iso text, p_max_events int)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
          j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')};
          v_ok boolean := (p_result->>'ok')::boolean; v_skipped boolean; v_admitted int := 0; v_room int;
          v_events jsonb := '[]'; v_kind text; v_failed_job boolean;
        BEGIN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
          IF NOT FOUND THEN RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events); END IF;
          SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = jid AND url_key = p_lease->>'key';
          IF NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM p_lease->>'token' THEN
            RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events);
          END IF;
          v_skipped := NOT v_ok AND (p_result->'error'->>'code') = 'robots';
          UPDATE ${t('frontier')} SET state = CASE WHEN v_ok THEN 'done' ELSE 'failed' END, token = NULL WHERE job_id = jid AND url_key = fr.url_key;
          PERFORM ${t('end_lease')}(jid, fr.host, p_now, NOT v_skipped, j.per_host_delay_ms);
          INSERT INTO ${t('results')} (job_id, result) VALUES (jid, p_result);
          v_room := j.max_pages - j.discovered;
          IF v_room > 0 AND jsonb_array_length(p_links) > 0 THEN
            WITH input AS (
              SELECT DISTINCT ON (l->>'key') l->>'key' AS url_key, l->>'url' AS url, (l->>'depth')::int AS depth, l->>'host' AS host, ord
              FROM jsonb_array_elements(p_links) WITH ORDINALITY AS e(l, ord) ORDER BY l->>'key', ord
            ), fresh AS (
              SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM ${t('frontier')} x WHERE x.job_id = jid AND x.url_key = i.url_key)
              ORDER BY ord LIMIT v_room
            ), added AS (
              INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host)
              SELECT jid, url_key, url, depth, host FROM fresh ORDER BY ord
              RETURNING host
            ), hosts AS (
              INSERT INTO ${t('hosts')} (job_id, host) SELECT DISTINCT jid, host FROM added ON CONFLICT DO NOTHING
            )
            SELECT count(*) INTO v_admitted FROM added;
          END IF;
          UPDATE ${t('jobs')} SET
            in_progress = in_progress - 1,
            succeeded = succeeded + CASE WHEN v_ok THEN 1 ELSE 0 END,
            failed = failed + CASE WHEN NOT v_ok AND NOT v_skipped THEN 1 ELSE 0 END,
            skipped = skipped + CASE WHEN v_skipped THEN 1 ELSE 0 END,
            discovered = discovered + v_admitted, queued = queued + v_admitted,
            first_error = coalesce(first_error, CASE WHEN v_ok THEN NULL ELSE p_result->'error' END)
          WHERE id = jid RETURNING * INTO j;
          v_kind := CASE WHEN v_ok THEN 'page:done' WHEN v_skipped THEN 'page:skipped' ELSE 'page:failed' END;
          v_events := v_events || jsonb_build_array(${t('append_event')}(jid, v_kind, p_now_iso, fr.url, CASE WHEN v_ok THEN NULL ELSE p_result->'error' END, p_max_events));
          IF j.queued = 0 AND j.in_progress = 0 AND j.status IN ('queued', 'running') THEN
            v_failed_job := j.succeeded = 0;
            UPDATE ${t('jobs')} SET status = CASE WHEN v_failed_job THEN 'failed' ELSE 'completed' END, finished_at = p_now_iso,
              error = CASE WHEN v_failed_job THEN coalesce(first_error, '{"code":"failed","message":"no page could be fetched"}'::jsonb) ELSE NULL END
            WHERE id = jid RETURNING * INTO j;
            v_events := v_events || jsonb_build_array(${t('append_event')}(jid, CASE WHEN v_failed_job THEN 'job:failed' ELSE 'job:completed' END, p_now_iso, NULL, j.error, p_max_events));
          END IF;
          RETURN jsonb_build_object('ok', true, 'admitted', v_admitted, 'events', v_events);
        END $fn$`,

        `CREATE FUNCTION ${t('retry')}(p_lease jsonb, p_not_before bigint, p_now bigint) RETURNS boolean LANGUAGE plpgsql AS $fn$
        DECLARE j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')};
        BEGIN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
          IF NOT FOUND THEN RETURN false; END IF;
          SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = jid AND url_key = p_lease->>'key';
          IF NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM p_lease->>'token' THEN RETURN false; END IF;
          UPDATE ${t('frontier')} SET state = 'pending', token = NULL, not_before = greatest(p_not_before, 1), prio = -1 WHERE job_id = jid AND url_key = fr.url_key;
          PERFORM ${t('end_lease')}(jid, fr.host, p_now, true, j.per_host_delay_ms);
          UPDATE ${t('jobs')} SET in_progress = in_progress - 1, queued = queued + 1 WHERE id = jid;
          RETURN true;
        END $fn$`,

        `CREATE FUNCTION ${t('release')}(p_leases jsonb) RETURNS int LANGUAGE plpgsql AS $fn$
        DECLARE l jsonb; j ${t('jobs')}; fr ${t('frontier')}; n int := 0;
        BEGIN
          FOR l IN SELECT value FROM jsonb_array_elements(p_leases) ORDER BY value->>'jobId' LOOP
            SELECT * INTO j FROM ${t('jobs')} WHERE id = l->>'jobId' FOR UPDATE;
            CONTINUE WHEN NOT FOUND;
            SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = j.id AND url_key = l->>'key';
            CONTINUE WHEN NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM l->>'token';
            UPDATE ${t('frontier')} SET state = 'pending', token = NULL, attempts = greatest(0, attempts - 1), prio = -1 WHERE job_id = j.id AND url_key = fr.url_key;
            PERFORM ${t('end_lease')}(j.id, fr.host, 0, false, 0);
            UPDATE ${t('jobs')} SET in_progress = in_progress - 1, queued = queued + 1 WHERE id = j.id;
            n := n + 1;
          END LOOP;
          RETURN n;
        END $fn$`,

        `CREATE FUNCTION ${t('cancel')}(p_job text, p_now_iso text, p_max_events int) RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE j ${t('jobs')}; ev jsonb;
        BEGIN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = p_job FOR UPDATE;
          IF NOT FOUND THEN RETURN jsonb_build_object('job', NULL, 'events', '[]'::jsonb); END IF;
          IF j.status NOT IN ('queued', 'running') THEN RETURN jsonb_build_object('job', ${t('job_json')}(j), 'events', '[]'::jsonb); END IF;
          UPDATE ${t('frontier')} SET state = 'cancelled', token = NULL WHERE job_id = p_job AND state IN ('pending', 'leased');
          UPDATE ${t('hosts')} SET in_flight = 0 WHERE job_id = p_job;
          UPDATE ${t('jobs')} SET status = 'cancelled', finished_at = p_now_iso, queued = 0, in_progress = 0 WHERE id = p_job;
          ev := ${t('append_event')}(p_job, 'job:cancelled', p_now_iso, NULL, NULL, p_max_events);
          SELECT * INTO j FROM ${t('jobs')} WHERE id = p_job;
          RETURN jsonb_build_object('job', ${t('job_json')}(j), 'events', jsonb_build_array(ev));
        END $fn$`,

        `CREATE FUNCTION ${t('append_events')}(p_job text, p_events jsonb, p_max_events int) RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE e jsonb; out jsonb := '[]';
        BEGIN
          PERFORM 1 FROM ${t('jobs')} WHERE id = p_job FOR UPDATE;
          IF NOT FOUND THEN RETURN NULL; END IF;
          FOR e IN SELECT value FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(value, ord) ORDER BY ord LOOP
            out := out || jsonb_build_array(${t('append_event')}(p_job, e->>'type', e->>'at', e->>'url', e->'error', p_max_events));
          END LOOP;
          RETURN out;
        END $fn$`,

        `CREATE FUNCTION ${t('read_events')}(p_job text, p_after bigint, p_limit int) RETURNS jsonb LANGUAGE plpgsql STABLE AS $fn$
        DECLARE snap jsonb; out jsonb := '[]'; from_id bigint := p_after;
        BEGIN
          SELECT trimmed INTO snap FROM ${t('jobs')} WHERE id = p_job;
          IF snap IS NOT NULL AND p_after < (snap->>'id')::bigint THEN
            out := jsonb_build_array(snap || jsonb_build_object('type', 'progress'));
            from_id := (snap->>'id')::bigint;
          END IF;
          SELECT out || coalesce(jsonb_agg(event ORDER BY id), '[]'::jsonb) INTO out FROM (
            SELECT event, id FROM ${t('events')} WHERE job_id = p_job AND id > from_id ORDER BY id LIMIT greatest(0, p_limit - jsonb_array_length(out))
          ) s;
          RETURN out;
        END $fn$`,
      ];
    },
  },
  {
    version: 2,
    name: 'parked jobs: claims skip jobs with nothing ready until their time comes or they are woken',
    statements: (n) => {
      const t = (name: string) => qualified(n, name);
      const active = `status IN ('queued', 'running')`;
      const leaseJson = `jsonb_build_object('jobId', fr.job_id, 'url', fr.url, 'key', fr.url_key, 'depth', fr.depth, 'host', fr.host, 'token', fr.token, 'attempts', fr.attempts, 'expiresAt', fr.lease_until)`;
      return [
        // ready_at: 0 while claims visit the job; otherwise the job is parked (a claim found nothing
        // ready in it) until then, or until woken by complete, retry or release (which reset it to
        // 0). wait_at: while parked, when its first URL waiting on the clock alone (a host delay, a
        // retry backoff) becomes ready, 0 if none; claims report the earliest as nextReadyAt.
        `ALTER TABLE ${t('jobs')} ADD COLUMN ready_at bigint NOT NULL DEFAULT 0`,
        `ALTER TABLE ${t('jobs')} ADD COLUMN wait_at bigint NOT NULL DEFAULT 0`,
        `DROP INDEX IF EXISTS ${n.schema}."${n.prefix}jobs_active"`,
        `CREATE INDEX "${n.prefix}jobs_eligible" ON ${t('jobs')} (last_claim, ordinal) WHERE ${active} AND ready_at = 0`,
        `CREATE INDEX "${n.prefix}jobs_parked" ON ${t('jobs')} (ready_at) WHERE ${active} AND ready_at > 0`,
        `CREATE INDEX "${n.prefix}jobs_waiting" ON ${t('jobs')} (wait_at) WHERE ${active} AND wait_at > 0`,

        // Hands out ready URLs: expired leases first, then per host (rotating) within the host's
        // concurrency and delay. Visits at most 100 jobs that are not parked (or whose park has
        // ended), least recently claimed first, each getting a fair share; a job that has nothing
        // ready is parked until the earliest time it could (a host delay or retry backoff ending,
        // a live lease expiring), so parked jobs cost claims nothing however many there are.
        `CREATE OR REPLACE FUNCTION ${t('claim')}(p_limit int, p_lease_ms bigint, p_now bigint, p_now_iso text, p_job text, p_max_events int)
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
            SELECT coalesce(array_agg(id), '{}') INTO cands FROM ${t('jobs')} WHERE id = p_job AND ${active};
          ELSE
            SELECT coalesce(array_agg(c.id ORDER BY c.last_claim, c.ordinal), '{}') INTO cands FROM (
              SELECT u.id, u.last_claim, u.ordinal FROM (
                (SELECT id, last_claim, ordinal FROM ${t('jobs')} WHERE ${active} AND ready_at = 0 ORDER BY last_claim, ordinal LIMIT 100)
                UNION ALL
                (SELECT id, last_claim, ordinal FROM ${t('jobs')} WHERE ${active} AND ready_at > 0 AND ready_at <= p_now ORDER BY ready_at LIMIT 100)
              ) u ORDER BY u.last_claim, u.ordinal LIMIT 100
            ) c;
          END IF;
          n_ready := cardinality(cands);
          FOR pass IN 1..2 LOOP
            EXIT WHEN remaining <= 0 OR n_ready = 0;
            share := CASE WHEN pass = 1 THEN greatest(1, ceil(p_limit::numeric / least(n_ready, p_limit))::int) ELSE remaining END;
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
              FOR f IN SELECT url_key FROM ${t('frontier')} WHERE job_id = jid AND state = 'leased' AND lease_until <= p_now ORDER BY lease_until LIMIT least(share, remaining) FOR UPDATE SKIP LOCKED LOOP
                tok := gen_random_uuid()::text;
                UPDATE ${t('frontier')} fr SET token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms
                  WHERE fr.job_id = jid AND fr.url_key = f.url_key
                  RETURNING ${leaseJson} INTO lj;
                leases := leases || jsonb_build_array(lj);
                took := took + 1;
              END LOOP;
              -- Retries whose backoff has passed become ready.
              UPDATE ${t('frontier')} SET not_before = 0, prio = -1 WHERE job_id = jid AND state = 'pending' AND not_before > 0 AND not_before <= p_now;
              FOR h IN SELECT * FROM ${t('hosts')} WHERE job_id = jid ORDER BY last_pick, host LOOP
                EXIT WHEN took >= share OR took >= remaining;
                delay := greatest(j.per_host_delay_ms, h.crawl_delay_ms);
                slots := CASE WHEN delay > 0 THEN 1 ELSE j.per_host_concurrency END;
                CONTINUE WHEN h.in_flight >= slots;
                IF h.next_at > p_now THEN
                  IF EXISTS (SELECT 1 FROM ${t('frontier')} WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0) THEN
                    next_ready := least(coalesce(next_ready, h.next_at), h.next_at);
                    host_wait := least(coalesce(host_wait, h.next_at), h.next_at);
                  END IF;
                  CONTINUE;
                END IF;
                w := 0;
                FOR f IN SELECT url_key FROM ${t('frontier')} WHERE job_id = jid AND host = h.host AND state = 'pending' AND not_before = 0
                         ORDER BY prio, seq LIMIT least(slots - h.in_flight, share - took, remaining - took) FOR UPDATE SKIP LOCKED LOOP
                  tok := gen_random_uuid()::text;
                  UPDATE ${t('frontier')} fr SET state = 'leased', token = tok, attempts = fr.attempts + 1, lease_until = p_now + p_lease_ms, prio = 0
                    WHERE fr.job_id = jid AND fr.url_key = f.url_key
                    RETURNING ${leaseJson} INTO lj;
                  leases := leases || jsonb_build_array(lj);
                  took := took + 1; fresh := fresh + 1; w := w + 1;
                END LOOP;
                IF w > 0 THEN
                  UPDATE ${t('hosts')} SET in_flight = in_flight + w, last_pick = p_now WHERE job_id = jid AND host = h.host;
                END IF;
              END LOOP;
              IF took > 0 THEN
                UPDATE ${t('jobs')} SET queued = queued - fresh, in_progress = in_progress + fresh, last_claim = p_now, ready_at = 0, wait_at = 0,
                  status = 'running', started_at = coalesce(started_at, p_now_iso) WHERE id = jid;
                IF j.status = 'queued' THEN
                  events := events || jsonb_build_array(${t('append_event')}(jid, 'job:started', p_now_iso, NULL, NULL, p_max_events));
                END IF;
                IF NOT jid = ANY(served) THEN served := served || jid; END IF;
                remaining := remaining - took;
              ELSIF NOT jid = ANY(served) THEN
                idle := idle || jid;
                -- Nothing ready (and nothing given by pass 1): every host of the job was looked at
                -- (took stayed below share), so each pending URL waits on its host's delay, on its
                -- backoff or on a host slot held by a live lease. Park the job until the earliest
                -- of those ends.
                SELECT min(not_before) INTO clock_wait FROM ${t('frontier')} WHERE job_id = jid AND state = 'pending' AND not_before > 0;
                SELECT min(lease_until) INTO lease_wait FROM ${t('frontier')} WHERE job_id = jid AND state = 'leased';
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
        END $fn$`,

        // As in version 1, and wakes a parked job: a freed host slot or new links may make it ready.
        `CREATE OR REPLACE FUNCTION ${t('complete')}(p_lease jsonb, p_result jsonb, p_links jsonb, p_now bigint, p_now_iso text, p_max_events int)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
          j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')};
          v_ok boolean := (p_result->>'ok')::boolean; v_skipped boolean; v_admitted int := 0; v_room int;
          v_events jsonb := '[]'; v_kind text; v_failed_job boolean;
        BEGIN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
          IF NOT FOUND THEN RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events); END IF;
          SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = jid AND url_key = p_lease->>'key';
          IF NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM p_lease->>'token' THEN
            RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events);
          END IF;
          v_skipped := NOT v_ok AND (p_result->'error'->>'code') = 'robots';
          UPDATE ${t('frontier')} SET state = CASE WHEN v_ok THEN 'done' ELSE 'failed' END, token = NULL WHERE job_id = jid AND url_key = fr.url_key;
          PERFORM ${t('end_lease')}(jid, fr.host, p_now, NOT v_skipped, j.per_host_delay_ms);
          INSERT INTO ${t('results')} (job_id, result) VALUES (jid, p_result);
          v_room := j.max_pages - j.discovered;
          IF v_room > 0 AND jsonb_array_length(p_links) > 0 THEN
            WITH input AS (
              SELECT DISTINCT ON (l->>'key') l->>'key' AS url_key, l->>'url' AS url, (l->>'depth')::int AS depth, l->>'host' AS host, ord
              FROM jsonb_array_elements(p_links) WITH ORDINALITY AS e(l, ord) ORDER BY l->>'key', ord
            ), fresh AS (
              SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM ${t('frontier')} x WHERE x.job_id = jid AND x.url_key = i.url_key)
              ORDER BY ord LIMIT v_room
            ), added AS (
              INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host)
              SELECT jid, url_key, url, depth, host FROM fresh ORDER BY ord
              RETURNING host
            ), hosts AS (
              INSERT INTO ${t('hosts')} (job_id, host) SELECT DISTINCT jid, host FROM added ON CONFLICT DO NOTHING
            )
            SELECT count(*) INTO v_admitted FROM added;
          END IF;
          UPDATE ${t('jobs')} SET
            in_progress = in_progress - 1,
            succeeded = succeeded + CASE WHEN v_ok THEN 1 ELSE 0 END,
            failed = failed + CASE WHEN NOT v_ok AND NOT v_skipped THEN 1 ELSE 0 END,
            skipped = skipped + CASE WHEN v_skipped THEN 1 ELSE 0 END,
            discovered = discovered + v_admitted, queued = queued + v_admitted,
            first_error = coalesce(first_error, CASE WHEN v_ok THEN NULL ELSE p_result->'error' END),
            ready_at = 0, wait_at = 0
          WHERE id = jid RETURNING * INTO j;
          v_kind := CASE WHEN v_ok THEN 'page:done' WHEN v_skipped THEN 'page:skipped' ELSE 'page:failed' END;
          v_events := v_events || jsonb_build_array(${t('append_event')}(jid, v_kind, p_now_iso, fr.url, CASE WHEN v_ok THEN NULL ELSE p_result->'error' END, p_max_events));
          IF j.queued = 0 AND j.in_progress = 0 AND j.status IN ('queued', 'running') THEN
            v_failed_job := j.succeeded = 0;
            UPDATE ${t('jobs')} SET status = CASE WHEN v_failed_job THEN 'failed' ELSE 'completed' END, finished_at = p_now_iso,
              error = CASE WHEN v_failed_job THEN coalesce(first_error, '{"code":"failed","message":"no page could be fetched"}'::jsonb) ELSE NULL END
            WHERE id = jid RETURNING * INTO j;
            v_events := v_events || jsonb_build_array(${t('append_event')}(jid, CASE WHEN v_failed_job THEN 'job:failed' ELSE 'job:completed' END, p_now_iso, NULL, j.error, p_max_events));
          END IF;
          RETURN jsonb_build_object('ok', true, 'admitted', v_admitted, 'events', v_events);
        END $fn$`,

        // As in version 1, and wakes a parked job: the retry may be due before the job's park ends.
        `CREATE OR REPLACE FUNCTION ${t('retry')}(p_lease jsonb, p_not_before bigint, p_now bigint) RETURNS boolean LANGUAGE plpgsql AS $fn$
        DECLARE j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')};
        BEGIN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
          IF NOT FOUND THEN RETURN false; END IF;
          SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = jid AND url_key = p_lease->>'key';
          IF NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM p_lease->>'token' THEN RETURN false; END IF;
          UPDATE ${t('frontier')} SET state = 'pending', token = NULL, not_before = greatest(p_not_before, 1), prio = -1 WHERE job_id = jid AND url_key = fr.url_key;
          PERFORM ${t('end_lease')}(jid, fr.host, p_now, true, j.per_host_delay_ms);
          UPDATE ${t('jobs')} SET in_progress = in_progress - 1, queued = queued + 1, ready_at = 0, wait_at = 0 WHERE id = jid;
          RETURN true;
        END $fn$`,

        // As in version 1, and wakes a parked job: the released URL is ready at once.
        `CREATE OR REPLACE FUNCTION ${t('release')}(p_leases jsonb) RETURNS int LANGUAGE plpgsql AS $fn$
        DECLARE l jsonb; j ${t('jobs')}; fr ${t('frontier')}; n int := 0;
        BEGIN
          FOR l IN SELECT value FROM jsonb_array_elements(p_leases) ORDER BY value->>'jobId' LOOP
            SELECT * INTO j FROM ${t('jobs')} WHERE id = l->>'jobId' FOR UPDATE;
            CONTINUE WHEN NOT FOUND;
            SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = j.id AND url_key = l->>'key';
            CONTINUE WHEN NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM l->>'token';
            UPDATE ${t('frontier')} SET state = 'pending', token = NULL, attempts = greatest(0, attempts - 1), prio = -1 WHERE job_id = j.id AND url_key = fr.url_key;
            PERFORM ${t('end_lease')}(j.id, fr.host, 0, false, 0);
            UPDATE ${t('jobs')} SET in_progress = in_progress - 1, queued = queued + 1, ready_at = 0, wait_at = 0 WHERE id = j.id;
            n := n + 1;
          END LOOP;
          RETURN n;
        END $fn$`,
      ];
    },
  },
  {
    version: 3,
    name: 'maxPages counts pages fetched: robots.txt skips recorded without a charge, refunds, spare links',
    statements: (n) => {
      const t = (name: string) => qualified(n, name);
      return [
        // robots_free: skipped links recorded without a charge (at most max_pages). refunds: charges
        // given back by URLs skipped for robots.txt after they were admitted (at most max_pages).
        // The charged URLs are discovered - robots_free - refunds (at most max_pages). unsure:
        // unfinished admitted URLs whose robots.txt was unknown when found (they may be refunded).
        // spares: links kept past max_pages (state 'spare') to stand in for refunded URLs. Jobs of
        // an older version start at 0, which is how they were counted.
        `ALTER TABLE ${t('jobs')} ADD COLUMN robots_free int NOT NULL DEFAULT 0`,
        `ALTER TABLE ${t('jobs')} ADD COLUMN refunds int NOT NULL DEFAULT 0`,
        `ALTER TABLE ${t('jobs')} ADD COLUMN unsure int NOT NULL DEFAULT 0`,
        `ALTER TABLE ${t('jobs')} ADD COLUMN spares int NOT NULL DEFAULT 0`,
        `ALTER TABLE ${t('frontier')} ADD COLUMN unsure boolean NOT NULL DEFAULT false`,
        `CREATE INDEX "${n.prefix}frontier_spare" ON ${t('frontier')} (job_id, seq) WHERE state = 'spare'`,

        // As in version 2, with skipped links and the charges of maxPages: a URL admitted from
        // p_links is charged; a leased URL whose result is robots gives its charge back (to the
        // oldest spare, or as room); p_skipped links are recorded as skipped results at once.
        `CREATE FUNCTION ${t('complete')}(p_lease jsonb, p_result jsonb, p_links jsonb, p_skipped jsonb, p_now bigint, p_now_iso text, p_max_events int)
        RETURNS jsonb LANGUAGE plpgsql AS $fn$
        DECLARE
          j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')}; s jsonb;
          v_ok boolean := (p_result->>'ok')::boolean; v_skipped boolean; v_refund int := 0; v_room int;
          v_admitted int := 0; v_admitted_unsure int := 0; v_promoted int := 0; v_promoted_unsure int := 0;
          v_spared int := 0; v_spare_room int; v_recorded int := 0;
          v_events jsonb := '[]'; v_kind text; v_failed_job boolean;
        BEGIN
          SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
          IF NOT FOUND THEN RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events); END IF;
          SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = jid AND url_key = p_lease->>'key';
          IF NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM p_lease->>'token' THEN
            RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events);
          END IF;
          v_skipped := NOT v_ok AND (p_result->'error'->>'code') = 'robots';
          UPDATE ${t('frontier')} SET state = CASE WHEN v_ok THEN 'done' ELSE 'failed' END, token = NULL, unsure = false WHERE job_id = jid AND url_key = fr.url_key;
          PERFORM ${t('end_lease')}(jid, fr.host, p_now, NOT v_skipped, j.per_host_delay_ms);
          INSERT INTO ${t('results')} (job_id, result) VALUES (jid, p_result);
          -- Skipped for robots.txt after it was admitted: its charge goes to the oldest spare, or frees room.
          IF v_skipped AND j.refunds < j.max_pages THEN
            v_refund := 1;
            IF j.spares > 0 THEN
              WITH spare AS (
                SELECT url_key FROM ${t('frontier')} WHERE job_id = jid AND state = 'spare' ORDER BY seq LIMIT 1
              ), admitted AS (
                UPDATE ${t('frontier')} f SET state = 'pending' FROM spare WHERE f.job_id = jid AND f.url_key = spare.url_key
                RETURNING f.host, f.unsure
              ), hosts AS (
                INSERT INTO ${t('hosts')} (job_id, host) SELECT jid, host FROM admitted ON CONFLICT DO NOTHING
              )
              SELECT count(*), count(*) FILTER (WHERE unsure) INTO v_promoted, v_promoted_unsure FROM admitted;
            END IF;
          END IF;
          v_room := j.max_pages - (j.discovered + v_promoted - j.robots_free - j.refunds - v_refund);
          IF v_room > 0 AND jsonb_array_length(p_links) > 0 THEN
            WITH input AS (
              SELECT DISTINCT ON (l->>'key') l->>'key' AS url_key, l->>'url' AS url, (l->>'depth')::int AS depth, l->>'host' AS host,
                coalesce(l->>'robots', 'unknown') <> 'allowed' AS unsure, ord
              FROM jsonb_array_elements(p_links) WITH ORDINALITY AS e(l, ord) ORDER BY l->>'key', ord
            ), fresh AS (
              SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM ${t('frontier')} x WHERE x.job_id = jid AND x.url_key = i.url_key)
              ORDER BY ord LIMIT v_room
            ), added AS (
              INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host, unsure)
              SELECT jid, url_key, url, depth, host, unsure FROM fresh ORDER BY ord
              RETURNING host, unsure
            ), hosts AS (
              INSERT INTO ${t('hosts')} (job_id, host) SELECT DISTINCT jid, host FROM added ON CONFLICT DO NOTHING
            )
            SELECT count(*), count(*) FILTER (WHERE unsure) INTO v_admitted, v_admitted_unsure FROM added;
          END IF;
          -- No room left: spares, as many as unfinished unsure URLs (which may yet be refunded) and refunds left.
          v_spare_room := least(j.unsure - CASE WHEN fr.unsure THEN 1 ELSE 0 END + v_promoted_unsure + v_admitted_unsure, j.max_pages - j.refunds - v_refund)
            - (j.spares - v_promoted);
          IF v_room - v_admitted <= 0 AND v_spare_room > 0 AND jsonb_array_length(p_links) > v_admitted THEN
            WITH input AS (
              SELECT DISTINCT ON (l->>'key') l->>'key' AS url_key, l->>'url' AS url, (l->>'depth')::int AS depth, l->>'host' AS host,
                coalesce(l->>'robots', 'unknown') <> 'allowed' AS unsure, ord
              FROM jsonb_array_elements(p_links) WITH ORDINALITY AS e(l, ord) ORDER BY l->>'key', ord
            ), fresh AS (
              SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM ${t('frontier')} x WHERE x.job_id = jid AND x.url_key = i.url_key)
              ORDER BY ord LIMIT v_spare_room
            ), added AS (
              INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host, unsure, state)
              SELECT jid, url_key, url, depth, host, unsure, 'spare' FROM fresh ORDER BY ord
              RETURNING 1
            )
            SELECT count(*) INTO v_spared FROM added;
          END IF;
          UPDATE ${t('jobs')} SET
            in_progress = in_progress - 1,
            succeeded = succeeded + CASE WHEN v_ok THEN 1 ELSE 0 END,
            failed = failed + CASE WHEN NOT v_ok AND NOT v_skipped THEN 1 ELSE 0 END,
            skipped = skipped + CASE WHEN v_skipped THEN 1 ELSE 0 END,
            discovered = discovered + v_admitted + v_promoted, queued = queued + v_admitted + v_promoted,
            refunds = refunds + v_refund,
            unsure = unsure - CASE WHEN fr.unsure THEN 1 ELSE 0 END + v_promoted_unsure + v_admitted_unsure,
            spares = spares - v_promoted + v_spared,
            first_error = coalesce(first_error, CASE WHEN v_ok THEN NULL ELSE p_result->'error' END),
            ready_at = 0, wait_at = 0
          WHERE id = jid RETURNING * INTO j;
          v_kind := CASE WHEN v_ok THEN 'page:done' WHEN v_skipped THEN 'page:skipped' ELSE 'page:failed' END;
          v_events := v_events || jsonb_build_array(${t('append_event')}(jid, v_kind, p_now_iso, fr.url, CASE WHEN v_ok THEN NULL ELSE p_result->'error' END, p_max_events));
          -- Links robots.txt disallows: recorded as skipped at once, new ones only, at most max_pages per job.
          IF p_skipped IS NOT NULL AND jsonb_array_length(p_skipped) > 0 AND j.robots_free < j.max_pages THEN
            FOR s IN SELECT value FROM jsonb_array_elements(p_skipped) WITH ORDINALITY AS x(value, ord) ORDER BY ord LOOP
              EXIT WHEN j.robots_free + v_recorded >= j.max_pages;
              INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host, state)
              VALUES (jid, s->'link'->>'key', s->'link'->>'url', (s->'link'->>'depth')::int, s->'link'->>'host', 'failed')
              ON CONFLICT DO NOTHING;
              CONTINUE WHEN NOT FOUND;
              INSERT INTO ${t('results')} (job_id, result) VALUES (jid, s->'result');
              UPDATE ${t('jobs')} SET discovered = discovered + 1, skipped = skipped + 1, robots_free = robots_free + 1 WHERE id = jid;
              v_recorded := v_recorded + 1;
              v_events := v_events || jsonb_build_array(${t('append_event')}(jid, 'page:skipped', p_now_iso, s->'link'->>'url', s->'result'->'error', p_max_events));
            END LOOP;
          END IF;
          IF j.queued = 0 AND j.in_progress = 0 AND j.status IN ('queued', 'running') THEN
            v_failed_job := j.succeeded = 0;
            UPDATE ${t('jobs')} SET status = CASE WHEN v_failed_job THEN 'failed' ELSE 'completed' END, finished_at = p_now_iso,
              error = CASE WHEN v_failed_job THEN coalesce(first_error, '{"code":"failed","message":"no page could be fetched"}'::jsonb) ELSE NULL END
            WHERE id = jid RETURNING * INTO j;
            v_events := v_events || jsonb_build_array(${t('append_event')}(jid, CASE WHEN v_failed_job THEN 'job:failed' ELSE 'job:completed' END, p_now_iso, NULL, j.error, p_max_events));
          END IF;
          RETURN jsonb_build_object('ok', true, 'admitted', v_admitted, 'events', v_events);
        END $fn$`,

        // The version 2 signature, for processors of an older version still running during an upgrade.
        `CREATE OR REPLACE FUNCTION ${t('complete')}(p_lease jsonb, p_result jsonb, p_links jsonb, p_now bigint, p_now_iso text, p_max_events int)
        RETURNS jsonb LANGUAGE sql AS $fn$
          SELECT ${t('complete')}(p_lease, p_result, p_links, '[]'::jsonb, p_now, p_now_iso, p_max_events)
        $fn$`,
      ];
    },
  },
];
