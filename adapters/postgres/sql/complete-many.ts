/** `complete_many`, version 4: group commit, several pages' `complete` in one statement. Frozen. */
import { type Names, namer } from './names.js';

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
