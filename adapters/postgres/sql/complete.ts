/**
 * `complete`, which records a leased page's result, admits its links and ends the job when nothing
 * is left: version 1, version 2 (wakes a parked job), version 3 (the charges of `maxPages`, a new
 * signature) and version 3's wrapper of the version 2 signature. All frozen.
 */
import { type Names, namer, oneOf } from './names.js';

/**
 * The shared start of every version: the job's row lock, then the lease's URL, which must still
 * be `leased` under the lease's token (else `ok: false` and nothing changes: the lease expired and
 * was taken over, the job was cancelled, or this result was already recorded).
 */
function lockLease(n: Names): string {
  const t = namer(n);
  return `SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events); END IF;
    SELECT * INTO fr FROM ${t('frontier')} WHERE job_id = jid AND url_key = p_lease->>'key';
    IF NOT FOUND OR fr.state <> 'leased' OR fr.token IS DISTINCT FROM p_lease->>'token' THEN
      RETURN jsonb_build_object('ok', false, 'admitted', 0, 'events', v_events);
    END IF;`;
}

/** `v_skipped`: the page failed with one of the skip codes (the skip rule). */
const skipRule = (codes: readonly string[]) => {
  const code = `(p_result->'error'->>'code')`;
  return `v_skipped := NOT v_ok AND ${oneOf(code, codes)};`;
};

/** The page's event: `page:done`, `page:skipped` or `page:failed` (with the error). */
function pageEvent(n: Names): string {
  const t = namer(n);
  return `v_kind := CASE WHEN v_ok THEN 'page:done' WHEN v_skipped THEN 'page:skipped' ELSE 'page:failed' END;
    v_events := v_events || jsonb_build_array(${t('append_event')}(jid, v_kind, p_now_iso, fr.url,
      CASE WHEN v_ok THEN NULL ELSE p_result->'error' END, p_max_events));`;
}

/**
 * The shared end of every version: with nothing queued or in progress, the job ends, once (its
 * status is checked under the row lock): `failed` with its first error when no page succeeded,
 * else `completed`; with the matching event.
 */
export function finishJob(n: Names): string {
  const t = namer(n);
  return `IF j.queued = 0 AND j.in_progress = 0 AND j.status IN ('queued', 'running') THEN
      v_failed_job := j.succeeded = 0;
      UPDATE ${t('jobs')}
        SET status = CASE WHEN v_failed_job THEN 'failed' ELSE 'completed' END, finished_at = p_now_iso,
          error = CASE WHEN v_failed_job
                  THEN coalesce(first_error, '{"code":"failed","message":"no page could be fetched"}'::jsonb)
                  ELSE NULL END
      WHERE id = jid RETURNING * INTO j;
      v_events := v_events || jsonb_build_array(${t('append_event')}(jid,
        CASE WHEN v_failed_job THEN 'job:failed' ELSE 'job:completed' END, p_now_iso, NULL, j.error, p_max_events));
    END IF;`;
}

/**
 * `complete(lease, result, links, now, now_iso, max_events) → { ok, admitted, events }`, versions 1
 * and 2. Under `lockLease`: the URL becomes `done` or `failed`, its host slot is freed (a skipped
 * page made no request, so it starts no host delay), the result is recorded, and new links (first
 * of each key, in order, not yet in the frontier) are admitted while `discovered` stays within
 * `max_pages`; then the page's event and `finishJob`. Version 2 also wakes a parked job: a freed
 * host slot or new links may make it ready.
 */
function completeV1V2(n: Names, v: 1 | 2, skipCodes: readonly string[]): string {
  const t = namer(n);
  const wake = `,
      ready_at = 0, wait_at = 0`;
  return `${v === 1 ? 'CREATE FUNCTION' : 'CREATE OR REPLACE FUNCTION'} ${t('complete')}(p_lease jsonb, p_result jsonb,
    p_links jsonb, p_now bigint, p_now_iso text, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')};
    v_ok boolean := (p_result->>'ok')::boolean; v_skipped boolean; v_admitted int := 0; v_room int;
    v_events jsonb := '[]'; v_kind text; v_failed_job boolean;
  BEGIN
    ${lockLease(n)}
    ${skipRule(skipCodes)}
    UPDATE ${t('frontier')} SET state = CASE WHEN v_ok THEN 'done' ELSE 'failed' END, token = NULL
      WHERE job_id = jid AND url_key = fr.url_key;
    PERFORM ${t('end_lease')}(jid, fr.host, p_now, NOT v_skipped, j.per_host_delay_ms);
    INSERT INTO ${t('results')} (job_id, result) VALUES (jid, p_result);
    v_room := j.max_pages - j.discovered;
    IF v_room > 0 AND jsonb_array_length(p_links) > 0 THEN
      WITH input AS (
        SELECT DISTINCT ON (l->>'key') l->>'key' AS url_key, l->>'url' AS url, (l->>'depth')::int AS depth,
          l->>'host' AS host, ord
        FROM jsonb_array_elements(p_links) WITH ORDINALITY AS e(l, ord) ORDER BY l->>'key', ord
      ), fresh AS (
        SELECT i.* FROM input i
        WHERE NOT EXISTS (SELECT 1 FROM ${t('frontier')} x WHERE x.job_id = jid AND x.url_key = i.url_key)
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
      first_error = coalesce(first_error, CASE WHEN v_ok THEN NULL ELSE p_result->'error' END)${v === 1 ? '' : wake}
    WHERE id = jid RETURNING * INTO j;
    ${pageEvent(n)}
    ${finishJob(n)}
    RETURN jsonb_build_object('ok', true, 'admitted', v_admitted, 'events', v_events);
  END $fn$`;
}

/** `complete`, version 1. See `completeV1V2`. */
export function completeFunctionV1(n: Names, skipCodes: readonly string[]): string {
  return completeV1V2(n, 1, skipCodes);
}

/** `complete`, version 2: version 1 that wakes a parked job. */
export function completeFunctionV2(n: Names, skipCodes: readonly string[]): string {
  return completeV1V2(n, 2, skipCodes);
}

/**
 * Version 3's links of `p_links` not yet in the frontier (CTEs `input`, `fresh`): the first of each
 * key, in order, at most `limit`; `unsure` unless robots.txt was known to allow it when found.
 */
function newLinks(n: Names, limit: string, lastmod: boolean): string {
  const t = namer(n);
  return `WITH input AS (
        SELECT DISTINCT ON (l->>'key') l->>'key' AS url_key, l->>'url' AS url, (l->>'depth')::int AS depth,
          l->>'host' AS host, coalesce(l->>'robots', 'unknown') <> 'allowed' AS unsure${lastmod ? ", l->>'lastmod' AS lastmod" : ''}, ord
        FROM jsonb_array_elements(p_links) WITH ORDINALITY AS e(l, ord) ORDER BY l->>'key', ord
      ), fresh AS (
        SELECT i.* FROM input i
        WHERE NOT EXISTS (SELECT 1 FROM ${t('frontier')} x WHERE x.job_id = jid AND x.url_key = i.url_key)
        ORDER BY ord LIMIT ${limit}
      )`;
}

/**
 * `complete(lease, result, links, skipped, now, now_iso, max_events) → { ok, admitted, events }`,
 * version 3: version 2 with skipped links and the charges of `maxPages` (see `accountingColumns`).
 * A URL admitted from `links` is charged; a leased URL whose result is skipped gives its charge
 * back (at most `max_pages` refunds), to the oldest spare (promoted to `pending`) or as room. Links
 * past the room are kept as spares, as many as could yet be refunded (unfinished unsure URLs,
 * refunds left). `skipped` links (robots.txt disallows them) are recorded as skipped results at
 * once, new ones only, at most `max_pages` per job, without a charge. Invariant: discovered -
 * robots_free - refunds ≤ max_pages.
 */
export function completeFunctionV3(n: Names, skipCodes: readonly string[]): string {
  return completeV3V8(n, 3, skipCodes);
}

/**
 * `complete`, version 8: version 3, replaced, that stores each admitted link's `lastmod` (as spare
 * links too) with its frontier row.
 */
export function completeFunctionV8(n: Names, skipCodes: readonly string[]): string {
  return completeV3V8(n, 8, skipCodes);
}

function completeV3V8(n: Names, v: 3 | 8, skipCodes: readonly string[]): string {
  const t = namer(n);
  const lm = v === 8;
  const lastmodColumn = lm ? ', lastmod' : '';
  return `${v === 3 ? 'CREATE FUNCTION' : 'CREATE OR REPLACE FUNCTION'} ${t('complete')}(p_lease jsonb, p_result jsonb, p_links jsonb, p_skipped jsonb, p_now bigint,
    p_now_iso text, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    j ${t('jobs')}; jid text := p_lease->>'jobId'; fr ${t('frontier')}; s jsonb;
    v_ok boolean := (p_result->>'ok')::boolean; v_skipped boolean; v_refund int := 0; v_room int;
    v_admitted int := 0; v_admitted_unsure int := 0; v_promoted int := 0; v_promoted_unsure int := 0;
    v_spared int := 0; v_spare_room int; v_recorded int := 0;
    v_events jsonb := '[]'; v_kind text; v_failed_job boolean;
  BEGIN
    ${lockLease(n)}
    ${skipRule(skipCodes)}
    UPDATE ${t('frontier')}
      SET state = CASE WHEN v_ok THEN 'done' ELSE 'failed' END, token = NULL, unsure = false
      WHERE job_id = jid AND url_key = fr.url_key;
    PERFORM ${t('end_lease')}(jid, fr.host, p_now, NOT v_skipped, j.per_host_delay_ms);
    INSERT INTO ${t('results')} (job_id, result) VALUES (jid, p_result);
    -- Skipped for robots.txt after it was admitted: its charge goes to the oldest spare, or frees room.
    IF v_skipped AND j.refunds < j.max_pages THEN
      v_refund := 1;
      IF j.spares > 0 THEN
        WITH spare AS (
          SELECT url_key FROM ${t('frontier')} WHERE job_id = jid AND state = 'spare' ORDER BY seq LIMIT 1
        ), admitted AS (
          UPDATE ${t('frontier')} f SET state = 'pending' FROM spare
          WHERE f.job_id = jid AND f.url_key = spare.url_key
          RETURNING f.host, f.unsure
        ), hosts AS (
          INSERT INTO ${t('hosts')} (job_id, host) SELECT jid, host FROM admitted ON CONFLICT DO NOTHING
        )
        SELECT count(*), count(*) FILTER (WHERE unsure) INTO v_promoted, v_promoted_unsure FROM admitted;
      END IF;
    END IF;
    v_room := j.max_pages - (j.discovered + v_promoted - j.robots_free - j.refunds - v_refund);
    IF v_room > 0 AND jsonb_array_length(p_links) > 0 THEN
      ${newLinks(n, 'v_room', lm)}, added AS (
        INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host, unsure${lastmodColumn})
        SELECT jid, url_key, url, depth, host, unsure${lastmodColumn} FROM fresh ORDER BY ord
        RETURNING host, unsure
      ), hosts AS (
        INSERT INTO ${t('hosts')} (job_id, host) SELECT DISTINCT jid, host FROM added ON CONFLICT DO NOTHING
      )
      SELECT count(*), count(*) FILTER (WHERE unsure) INTO v_admitted, v_admitted_unsure FROM added;
    END IF;
    -- No room left: spares, as many as unfinished unsure URLs (which may yet be refunded) and refunds left.
    v_spare_room := least(j.unsure - CASE WHEN fr.unsure THEN 1 ELSE 0 END + v_promoted_unsure + v_admitted_unsure,
                          j.max_pages - j.refunds - v_refund)
      - (j.spares - v_promoted);
    IF v_room - v_admitted <= 0 AND v_spare_room > 0 AND jsonb_array_length(p_links) > v_admitted THEN
      ${newLinks(n, 'v_spare_room', lm)}, added AS (
        INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host, unsure, state${lastmodColumn})
        SELECT jid, url_key, url, depth, host, unsure, 'spare'${lastmodColumn} FROM fresh ORDER BY ord
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
    ${pageEvent(n)}
    -- Links robots.txt disallows: recorded as skipped at once, new ones only, at most max_pages per job.
    IF p_skipped IS NOT NULL AND jsonb_array_length(p_skipped) > 0 AND j.robots_free < j.max_pages THEN
      FOR s IN SELECT value FROM jsonb_array_elements(p_skipped) WITH ORDINALITY AS x(value, ord) ORDER BY ord LOOP
        EXIT WHEN j.robots_free + v_recorded >= j.max_pages;
        INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host, state)
        VALUES (jid, s->'link'->>'key', s->'link'->>'url', (s->'link'->>'depth')::int, s->'link'->>'host', 'failed')
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        INSERT INTO ${t('results')} (job_id, result) VALUES (jid, s->'result');
        UPDATE ${t('jobs')}
          SET discovered = discovered + 1, skipped = skipped + 1, robots_free = robots_free + 1 WHERE id = jid;
        v_recorded := v_recorded + 1;
        v_events := v_events || jsonb_build_array(${t('append_event')}(jid, 'page:skipped', p_now_iso,
          s->'link'->>'url', s->'result'->'error', p_max_events));
      END LOOP;
    END IF;
    ${finishJob(n)}
    RETURN jsonb_build_object('ok', true, 'admitted', v_admitted, 'events', v_events);
  END $fn$`;
}

/**
 * Version 3: `complete` with the version 2 signature (no skipped links), for processors of an older
 * version still running during an upgrade.
 */
export function completeV2SignatureFunction(n: Names): string {
  const t = namer(n);
  return `CREATE OR REPLACE FUNCTION ${t('complete')}(p_lease jsonb, p_result jsonb, p_links jsonb, p_now bigint,
    p_now_iso text, p_max_events int)
  RETURNS jsonb LANGUAGE sql AS $fn$
    SELECT ${t('complete')}(p_lease, p_result, p_links, '[]'::jsonb, p_now, p_now_iso, p_max_events)
  $fn$`;
}
