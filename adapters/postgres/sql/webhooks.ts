/**
 * The webhook outbox, all of version 9: the registrations and deliveries tables, their indexes, the
 * compare-and-set enqueue, the claim, and `delete_job` replaced to remove a job's outbox rows too.
 * Frozen like every builder a migration runs: a change is a new builder for a new migration.
 */
import { type Names, namer } from './names.js';
import { deleteJobV6V9 } from './retention.js';

/**
 * Version 9. One row per job registered for webhooks (before its job row exists: no foreign key).
 * `state` is the engine's pump state as given, `seq` its `seq` as a column for the compare-and-set
 * (null until the first enqueue). A state with `done` deletes the row. `ordinal` breaks ties of
 * `registered_at` in registration order.
 */
export function webhookJobsTableV9(n: Names): string {
  return `CREATE TABLE ${namer(n)('webhook_jobs')} (
    job_id text PRIMARY KEY,
    ordinal bigint GENERATED ALWAYS AS IDENTITY,
    registered_at bigint NOT NULL,
    seq bigint,
    state jsonb
  )`;
}

/** Version 9: registrations in order, from a cursor (`listWebhookJobs`). */
export function webhookJobsOrderIndexV9(n: Names): string {
  return `CREATE UNIQUE INDEX "${n.prefix}webhook_jobs_order" ON ${namer(n)('webhook_jobs')} (ordinal)`;
}

/**
 * Version 9. One row per delivery; `seq` is enqueue order. `state`: `pending`, `delivered` or
 * `failed`. A pending row is leased while `token` is set and `lease_until` (ms) is ahead of the
 * claim's clock; a settle clears both. `payload` is text, stored and returned byte for byte (it is
 * signed). No foreign key to jobs: `delete_job` removes a job's rows.
 */
export function webhookDeliveriesTableV9(n: Names): string {
  return `CREATE TABLE ${namer(n)('webhook_deliveries')} (
    id text PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    job_id text NOT NULL,
    event text NOT NULL,
    url text NOT NULL,
    payload text NOT NULL,
    created_at bigint NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    delivered_at bigint,
    last_error jsonb,
    token text,
    lease_until bigint NOT NULL DEFAULT 0
  )`;
}

/** Version 9: claims take pending deliveries by `next_attempt_at` (enqueue order breaking ties). */
export function webhookDeliveriesDueIndexV9(n: Names): string {
  return `CREATE INDEX "${n.prefix}webhook_deliveries_due" ON ${namer(n)('webhook_deliveries')} (next_attempt_at, seq) WHERE state = 'pending'`;
}

/** Version 9: a job's deliveries in enqueue order (`listWebhookDeliveries`, `delete_job`). */
export function webhookDeliveriesJobIndexV9(n: Names): string {
  return `CREATE INDEX "${n.prefix}webhook_deliveries_job" ON ${namer(n)('webhook_deliveries')} (job_id, seq)`;
}

/**
 * `enqueue_webhooks(job, expected_seq, next, deliveries) → boolean`. Under the registration's row
 * lock: false when there is none or its `seq` is not `expected_seq` (null: no state yet); else the
 * deliveries are inserted in the order given (`pending`, due at their `createdAt`; an id that
 * exists is left alone) and `next` stored, or the registration deleted when `next.done`. A racing
 * enqueue waits for the lock and then sees the new `seq` (or no row), so exactly one of two wins.
 */
export function enqueueWebhooksFunctionV9(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('enqueue_webhooks')}(p_job text, p_expected bigint, p_next jsonb, p_deliveries jsonb)
  RETURNS boolean LANGUAGE plpgsql AS $fn$
  DECLARE w ${t('webhook_jobs')};
  BEGIN
    SELECT * INTO w FROM ${t('webhook_jobs')} WHERE job_id = p_job FOR UPDATE;
    IF NOT FOUND OR w.seq IS DISTINCT FROM p_expected THEN RETURN false; END IF;
    INSERT INTO ${t('webhook_deliveries')} (id, job_id, event, url, payload, created_at, next_attempt_at)
      SELECT d.id, d."jobId", d.event, d.url, d.payload, d."createdAt", d."createdAt"
      FROM ROWS FROM (jsonb_to_recordset(p_deliveries) AS (id text, "jobId" text, event text, url text, payload text, "createdAt" bigint))
        WITH ORDINALITY AS d(id, "jobId", event, url, payload, "createdAt", i)
      ORDER BY d.i
      ON CONFLICT (id) DO NOTHING;
    IF coalesce((p_next->>'done')::boolean, false) THEN
      DELETE FROM ${t('webhook_jobs')} WHERE job_id = p_job;
    ELSE
      UPDATE ${t('webhook_jobs')} SET seq = (p_next->>'seq')::bigint, state = p_next WHERE job_id = p_job;
    END IF;
    RETURN true;
  END $fn$`;
}

/**
 * `claim_webhooks(limit, lease_ms, now) → setof delivery rows`. Pending deliveries due by `now`
 * whose lease (if any) has run out, earliest `next_attempt_at` first, taken `FOR UPDATE SKIP
 * LOCKED` (a racing claim skips them, and one that reaches a row after this one committed finds its
 * lease live), each with a new token and one more attempt.
 */
export function claimWebhooksFunctionV9(n: Names): string {
  const t = namer(n);
  return `CREATE FUNCTION ${t('claim_webhooks')}(p_limit int, p_lease_ms bigint, p_now bigint)
  RETURNS SETOF ${t('webhook_deliveries')} LANGUAGE sql AS $fn$
    WITH due AS (
      SELECT id FROM ${t('webhook_deliveries')}
      WHERE state = 'pending' AND next_attempt_at <= p_now AND lease_until <= p_now
      ORDER BY next_attempt_at, seq LIMIT p_limit FOR UPDATE SKIP LOCKED
    )
    UPDATE ${t('webhook_deliveries')} d
      SET token = gen_random_uuid()::text, attempts = d.attempts + 1, lease_until = p_now + p_lease_ms
      FROM due WHERE d.id = due.id
      RETURNING d.*
  $fn$`;
}

/**
 * `delete_job`, version 9: version 6, replaced, that also removes the job's webhook registration
 * and deliveries, the registration first: its row lock waits for an enqueue in flight, and the
 * deliveries are deleted after it committed (an enqueue that comes later finds no registration).
 */
export function deleteJobFunctionV9(n: Names): string {
  const t = namer(n);
  return deleteJobV6V9(
    n,
    `DELETE FROM ${t('webhook_jobs')} WHERE job_id = p_job;
    DELETE FROM ${t('webhook_deliveries')} WHERE job_id = p_job;
    `,
  );
}
