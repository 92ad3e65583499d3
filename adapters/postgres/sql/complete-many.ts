/** `complete_many`, version 4: group commit, several pages' `complete` in one statement. Frozen. */
import { finishJob } from './complete.js';
import { type Names, namer, oneOf } from './names.js';

/**
 * `complete_many(items, max_events) → [{ ok, admitted, events }, …]`, version 4. Each item is
 * `{ lease, result, links, skipped, now, nowIso }` and is applied by the 7-argument `complete`
 * (version 3), so its semantics are exactly those of one `complete` call: fenced by its own lease,
 * links deduplicated against everything stored before, earlier items included, the job finished
 * once. All in the caller's one statement, so one transaction: a job's row lock is taken by its
 * first item and held for the rest (taking it again is free), and the call is all or nothing.
 *
 * Deadlocks: the items are applied in job id order, each job's items in their given order, so
 * job rows are locked in id order, as `release` does: of two calls given items of the same jobs in
 * opposite orders, one waits for the other instead of both deadlocking. Results come back in the
 * given order. NOTIFY: `append_event` notifies per event, and Postgres delivers identical notifications
 * of one transaction once, so subscribers get one wake per job per call.
 */
export function completeManyFunction(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('complete_many')}(p_items jsonb, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    it record; out jsonb[] := array_fill(NULL::jsonb, ARRAY[jsonb_array_length(p_items)]);
  BEGIN
    FOR it IN SELECT value AS item, ord::int AS ord FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(value, ord)
              ORDER BY value->'lease'->>'jobId', ord LOOP
      out[it.ord] := ${t('complete')}(it.item->'lease', it.item->'result', coalesce(it.item->'links', '[]'::jsonb),
        coalesce(it.item->'skipped', '[]'::jsonb), (it.item->>'now')::bigint, it.item->>'nowIso', p_max_events);
    END LOOP;
    RETURN to_jsonb(out);
  END $fn$`;
}

/**
 * The items of job `jid` in `p_items` (CTE `items`), one row each with its position `ord`
 * (1-based, as in the result array) and the fields the fast path reads.
 */
const itemsOf = `items AS (
        SELECT x.ord::int AS ord, x.value->'lease'->>'key' AS key, x.value->'lease'->>'token' AS token,
          x.value->'result' AS result, (x.value->'result'->>'ok')::boolean AS ok,
          coalesce(x.value->'links', '[]'::jsonb) AS links, coalesce(x.value->'skipped', '[]'::jsonb) AS skipped,
          (x.value->>'now')::bigint AS now, x.value->>'nowIso' AS now_iso
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(value, ord)
        WHERE x.value->'lease'->>'jobId' = jid
      )`;

/**
 * The links of the valid items (CTE `firsts`): the first of each key in (item, link) order; and
 * those not yet in the frontier (CTE `fresh`, given the keys already there in `v_existing`),
 * numbered `rn` in that order; `unsure` unless robots.txt was known to allow it.
 */
/** The frontier row of job `jid` whose key is `key` (a primary key probe), as a LATERAL subquery. */
const byKey = (t: (name: string) => string, key: string, columns: string) =>
  `SELECT ${columns} FROM ${t('frontier')} x WHERE x.job_id = jid AND x.url_key = ${key} LIMIT 1`;

const firstLinksOf = (lastmod: boolean) => `links AS (
        SELECT i.ord AS iord, e.lord, e.l->>'key' AS url_key, e.l->>'url' AS url, (e.l->>'depth')::int AS depth,
          e.l->>'host' AS host, coalesce(e.l->>'robots', 'unknown') <> 'allowed' AS unsure${lastmod ? ", e.l->>'lastmod' AS lastmod" : ''}
        FROM items i, jsonb_array_elements(i.links) WITH ORDINALITY AS e(l, lord)
        WHERE i.ord = ANY(v_valid)
      ), firsts AS (
        SELECT DISTINCT ON (url_key) * FROM links ORDER BY url_key, iord, lord
      )`;
const freshLinksOf = (lastmod: boolean) => `${firstLinksOf(lastmod)}, fresh AS (
        SELECT f.*, row_number() OVER (ORDER BY iord, lord) AS rn FROM firsts f WHERE NOT (f.url_key = ANY(v_existing))
      )`;

/**
 * `complete_many(items, max_events)`, version 5: the same contract and results as version 4, with
 * a set-based fast path. Version 4 ran the per-page `complete` once per item, so a page cost about
 * ten statements (a dozen index and row updates, the job row rewritten three times); here a job's
 * items cost about ten statements in all: one update of their frontier rows, one of their hosts,
 * one insert of the results, of the new links and of the events, and one update of the job row.
 * Frontier rows are looked up one key at a time (a LATERAL subquery per key) and updated by `ctid`,
 * so every lookup is a primary key probe whatever the planner believes about the table's size (a
 * join would be planned as a scan of the job's rows while the table is young and unanalysed).
 *
 * Per job, in job id order, under the job's row lock, the fast path applies when the job is active,
 * no item is a skipped page (a refund) or carries skipped links, every failed item has an error code
 * (`complete` counts one without as neither failed nor skipped), no lease appears twice, and either
 * every new link fits within `maxPages` or no spare link could be kept (unsure URLs and spares, see
 * `complete` version 3). Then the result equals version 4's item by item: stale leases get
 * `ok: false`; links are admitted first come first served in item order within the room left; each
 * page event is stamped with the counts as they stood after its item; the event log is trimmed at
 * the same points; the job ends, once, after its last item. Otherwise the job's items go through
 * `complete` one by one, as in version 4. One NOTIFY per job.
 */
export function completeManyFunctionV5(n: Names, skipCodes: readonly string[]): string {
  return completeManyV5V8(n, 5, skipCodes);
}

/**
 * `complete_many(items, max_events)`, version 8: version 5, replaced, that stores each admitted
 * link's `lastmod` with its frontier row (its slow path calls `complete`, which version 8 replaced
 * to do the same).
 */
export function completeManyFunctionV8(n: Names, skipCodes: readonly string[]): string {
  return completeManyV5V8(n, 8, skipCodes);
}

function completeManyV5V8(n: Names, v: 5 | 8, skipCodes: readonly string[]): string {
  const t = namer(n);
  const lm = v === 8;
  const lastmodColumn = lm ? ', lastmod' : '';
  // Only the insert of new links reads lastmod: the other uses of the links leave it out.
  const firstLinks = firstLinksOf(false);
  const freshLinks = freshLinksOf(false);
  const skipped = oneOf(`(i.result->'error'->>'code')`, skipCodes);
  return `CREATE OR REPLACE FUNCTION ${t('complete_many')}(p_items jsonb, p_max_events int)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    out jsonb[] := array_fill('{"ok":false,"admitted":0,"events":[]}'::jsonb, ARRAY[jsonb_array_length(p_items)]);
    jid text; j ${t('jobs')}; j0 ${t('jobs')}; it record; r record; v_fast boolean;
    v_valid int[]; v_vctids tid[]; v_fkeys text[]; v_vhosts text[]; v_vurls text[]; v_n int; v_unsure_done int;
    v_lkeys text[]; v_existing text[]; v_room int; v_fresh int; v_admit_unsure int;
    v_per_item jsonb; v_admitted int; v_ok int; v_failed int; v_first_error jsonb; v_evs jsonb;
    v_last int; v_events jsonb; v_failed_job boolean; p_now_iso text;
    slack int := greatest(16, p_max_events / 8); v_top bigint; v_cut bigint;
  BEGIN
    FOR jid IN SELECT DISTINCT value->'lease'->>'jobId' FROM jsonb_array_elements(p_items) ORDER BY 1 LOOP
      SELECT * INTO j FROM ${t('jobs')} WHERE id = jid FOR UPDATE;
      v_fast := FOUND AND j.status IN ('queued', 'running');
      IF v_fast THEN
        WITH ${itemsOf}
        SELECT coalesce(bool_and(coalesce(i.ok IS NOT NULL AND (i.ok OR NOT (${skipped})) AND jsonb_array_length(i.skipped) = 0, false)), false)
            AND count(DISTINCT i.key) = count(*)
          INTO v_fast FROM items i;
      END IF;
      IF v_fast THEN
        -- The items whose lease still holds its URL: the others get ok: false and change nothing.
        WITH ${itemsOf}
        SELECT coalesce(array_agg(i.ord ORDER BY i.ord), '{}'), array_agg(f.ctid ORDER BY i.ord),
            coalesce(array_agg(i.key ORDER BY i.ord) FILTER (WHERE NOT i.ok), '{}'),
            array_agg(f.host ORDER BY i.ord), array_agg(f.url ORDER BY i.ord), count(*) FILTER (WHERE f.unsure)
          INTO v_valid, v_vctids, v_fkeys, v_vhosts, v_vurls, v_unsure_done
          FROM items i CROSS JOIN LATERAL (${byKey(t, 'i.key', 'x.ctid, x.host, x.url, x.unsure, x.state, x.token')}) f
          WHERE f.state = 'leased' AND f.token = i.token;
        v_n := cardinality(v_valid);
        v_room := greatest(0, j.max_pages - (j.discovered - j.robots_free - j.refunds));
        WITH ${itemsOf}, ${firstLinks}
        SELECT coalesce(array_agg(url_key), '{}') INTO v_lkeys FROM firsts;
        SELECT coalesce(array_agg(k.key), '{}') INTO v_existing
          FROM unnest(v_lkeys) AS k(key) CROSS JOIN LATERAL (${byKey(t, 'k.key', '1')}) f;
        WITH ${itemsOf}, ${freshLinks}
        SELECT count(*), count(*) FILTER (WHERE rn <= v_room AND unsure) INTO v_fresh, v_admit_unsure FROM fresh;
        -- Links past the room: version 3 may keep some as spares; leave that to it.
        IF v_fresh > v_room AND least(j.unsure + v_admit_unsure, j.max_pages - j.refunds) - j.spares > 0 THEN
          v_fast := false;
        END IF;
      END IF;
      IF NOT v_fast THEN
        FOR it IN SELECT value AS item, ord::int AS ord FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(value, ord)
                  WHERE value->'lease'->>'jobId' = jid ORDER BY ord LOOP
          out[it.ord] := ${t('complete')}(it.item->'lease', it.item->'result', coalesce(it.item->'links', '[]'::jsonb),
            coalesce(it.item->'skipped', '[]'::jsonb), (it.item->>'now')::bigint, it.item->>'nowIso', p_max_events);
        END LOOP;
        CONTINUE;
      END IF;
      CONTINUE WHEN v_n = 0;
      j0 := j;
      WITH ${itemsOf}
      UPDATE ${t('hosts')} h SET in_flight = greatest(0, h.in_flight - v.c),
        next_at = CASE WHEN greatest(j.per_host_delay_ms, h.crawl_delay_ms) > 0
                  THEN greatest(h.next_at, v.latest + greatest(j.per_host_delay_ms, h.crawl_delay_ms)) ELSE h.next_at END
        FROM (SELECT u.host, count(*)::int AS c, max(i.now) AS latest
              FROM unnest(v_valid, v_vhosts) AS u(ord, host) JOIN items i ON i.ord = u.ord GROUP BY u.host) v
        WHERE h.job_id = jid AND h.host = v.host;
      UPDATE ${t('frontier')} SET state = CASE WHEN url_key = ANY(v_fkeys) THEN 'failed' ELSE 'done' END, token = NULL,
        unsure = false
        WHERE ctid = ANY(v_vctids);
      WITH ${itemsOf}
      INSERT INTO ${t('results')} (job_id, result) SELECT jid, i.result FROM items i WHERE i.ord = ANY(v_valid) ORDER BY i.ord;
      v_per_item := '{}'; v_admitted := 0;
      IF v_room > 0 AND v_fresh > 0 THEN
        WITH ${itemsOf}, ${freshLinksOf(lm)}, added AS (
          INSERT INTO ${t('frontier')} (job_id, url_key, url, depth, host, unsure${lastmodColumn})
          SELECT jid, url_key, url, depth, host, unsure${lastmodColumn} FROM fresh WHERE rn <= v_room ORDER BY rn
          RETURNING host
        ), new_hosts AS (
          INSERT INTO ${t('hosts')} (job_id, host) SELECT DISTINCT jid, host FROM added ON CONFLICT DO NOTHING
        )
        SELECT coalesce(jsonb_object_agg(s.iord::text, s.c), '{}'), coalesce(sum(s.c), 0) INTO v_per_item, v_admitted
          FROM (SELECT iord, count(*) AS c FROM fresh WHERE rn <= v_room GROUP BY iord) s;
      END IF;
      WITH ${itemsOf}
      SELECT count(*) FILTER (WHERE i.ok), count(*) FILTER (WHERE NOT i.ok),
          (array_agg(i.result->'error' ORDER BY i.ord) FILTER (WHERE NOT i.ok AND i.result->'error' IS NOT NULL))[1]
        INTO v_ok, v_failed, v_first_error FROM items i WHERE i.ord = ANY(v_valid);
      UPDATE ${t('jobs')} SET
        in_progress = in_progress - v_n, succeeded = succeeded + v_ok, failed = failed + v_failed,
        discovered = discovered + v_admitted, queued = queued + v_admitted,
        unsure = unsure - v_unsure_done + v_admit_unsure,
        first_error = coalesce(first_error, v_first_error), ready_at = 0, wait_at = 0,
        event_seq = event_seq + v_n
      WHERE id = jid RETURNING * INTO j;
      -- The page events, each with the counts as they stood after its item.
      WITH ${itemsOf}
      SELECT jsonb_agg(jsonb_build_object('ord', s.ord, 'ev',
          jsonb_build_object('id', (j0.event_seq + s.k)::text, 'jobId', jid,
            'type', CASE WHEN s.ok THEN 'page:done' ELSE 'page:failed' END, 'at', s.now_iso,
            'counts', jsonb_build_object('discovered', j0.discovered + s.adm, 'queued', j0.queued + s.adm,
              'inProgress', j0.in_progress - s.k, 'succeeded', j0.succeeded + s.oks, 'failed', j0.failed + s.fails,
              'skipped', j0.skipped),
            'url', s.url)
          || CASE WHEN NOT s.ok AND s.result->'error' IS NOT NULL THEN jsonb_build_object('error', s.result->'error')
             ELSE '{}'::jsonb END) ORDER BY s.ord)
        INTO v_evs
        FROM (SELECT i.ord, i.ok, i.now_iso, i.result, u.url,
                row_number() OVER w AS k,
                sum(coalesce((v_per_item->>(i.ord::text))::int, 0)) OVER w AS adm,
                count(*) FILTER (WHERE i.ok) OVER w AS oks, count(*) FILTER (WHERE NOT i.ok) OVER w AS fails
              FROM unnest(v_valid, v_vurls) AS u(ord, url) JOIN items i ON i.ord = u.ord
              WINDOW w AS (ORDER BY i.ord)) s;
      INSERT INTO ${t('events')} (job_id, id, event)
        SELECT jid, (e->'ev'->>'id')::bigint, e->'ev' FROM jsonb_array_elements(v_evs) AS e;
      FOR r IN SELECT (e->>'ord')::int AS ord, e->'ev' AS ev FROM jsonb_array_elements(v_evs) AS e LOOP
        out[r.ord] := jsonb_build_object('ok', true, 'admitted', coalesce((v_per_item->>(r.ord::text))::int, 0),
          'events', jsonb_build_array(r.ev));
        v_last := r.ord;
        p_now_iso := r.ev->>'at';
      END LOOP;
      -- The trim append_event would have made at the last cut point among the new ids.
      v_top := j.event_seq - j.event_seq % slack;
      IF v_top > j0.event_seq AND v_top > p_max_events + slack THEN
        v_cut := v_top - p_max_events;
        UPDATE ${t('jobs')} SET trimmed = (SELECT event FROM ${t('events')} WHERE job_id = jid AND id = v_cut) WHERE id = jid;
        DELETE FROM ${t('events')} WHERE job_id = jid AND id <= v_cut;
      END IF;
      PERFORM pg_notify('${n.prefix}events', jid);
      v_events := out[v_last]->'events';
      ${finishJob(n)}
      out[v_last] := jsonb_set(out[v_last], '{events}', v_events);
    END LOOP;
    RETURN to_jsonb(out);
  END $fn$`;
}
