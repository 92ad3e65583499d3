/**
 * Schedules: a job with `schedule` (a cron expression, read by croner) is recrawled when the next
 * time it names comes after the job ended. The recrawl is an entry of the storage's outbox (the
 * webhook deliveries' table, event `schedule`), due at that time: claimed with a lease by whichever
 * processor runs then, like a delivery, and "delivered" by creating the recrawl under an id derived
 * from the entry's, so a processor killed between the two starts it once, not twice. No daemon:
 * the runs that crawl (the HTTP process route, Next.js `after()`, a cron hitting it) start them.
 *
 * croner is loaded when a job has a schedule, never on the way of jobs that have none.
 */
import { createHash } from 'node:crypto';
import { type CrawlEngineError, invalid } from './errors.js';

/** The outbox event of a scheduled recrawl (never posted, never listed by `jobs.deliveries`). */
export const SCHEDULE_EVENT = 'schedule';
/** The `url` column of a scheduled recrawl's entry (it is not posted anywhere). */
export const SCHEDULE_TARGET = 'schedule:recrawl';
/** Longest cron expression accepted. */
export const MAX_SCHEDULE_LENGTH = 200;

type CronClass = typeof import('croner').Cron;
let cron: Promise<CronClass> | null = null;
const loadCron = (): Promise<CronClass> => {
  cron ??= import('croner').then((m) => m.Cron);
  return cron;
};

/**
 * The first time after `after` (epoch ms) that `expression` names, in `timezone` (an IANA name;
 * default UTC), or null when it names none. Throws with croner's reason for an expression or
 * time zone it cannot read.
 */
export async function nextScheduledAt(expression: string, timezone: string | undefined, after: number): Promise<number | null> {
  const Cron = await loadCron();
  const next = new Cron(expression, { paused: true, timezone: timezone ?? 'Etc/UTC', mode: '5-or-6-parts' }).nextRun(new Date(after));
  return next === null ? null : next.getTime();
}

/**
 * Checks a job's `schedule` (and `scheduleTimezone`) as given: refused with the reason, naming the
 * field, when croner cannot read it or it names no time after `now`.
 */
export async function checkSchedule(expression: string, timezone: string | undefined, now: number): Promise<void> {
  let next: number | null;
  try {
    next = await nextScheduledAt(expression, timezone, now);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const field = /timezone/i.test(message) ? 'scheduleTimezone' : 'schedule';
    const expected =
      field === 'schedule'
        ? 'expected a cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first), e.g. "0 3 * * *"'
        : 'expected an IANA time zone name, e.g. "Europe/Paris"';
    throw invalidSchedule(field, `${expected}: ${message.replace(/^Cron\w*: /, '').slice(0, 300)}`);
  }
  if (next === null) throw invalidSchedule('schedule', 'expected a cron expression that names a time in the future (this one never comes again)');
}

function invalidSchedule(path: string, message: string): CrawlEngineError {
  return invalid('invalid_input', 'job input', [{ path, message }]);
}

/**
 * The longest wait between two of the next times `expression` names (up to 24 of them, from
 * `now`): a finished job must outlive it to be recrawled. 0 for a time named once.
 */
export async function longestScheduleGapMs(expression: string, timezone: string | undefined, now: number): Promise<number> {
  const Cron = await loadCron();
  const runs = new Cron(expression, { paused: true, timezone: timezone ?? 'Etc/UTC', mode: '5-or-6-parts' }).nextRuns(24, new Date(now));
  let longest = 0;
  for (let i = 1; i < runs.length; i++) longest = Math.max(longest, runs[i]!.getTime() - runs[i - 1]!.getTime());
  return longest;
}

/** The id of the recrawl a schedule entry starts: the same on every try of the entry. */
export function scheduledJobId(entryId: string): string {
  return `job_${createHash('sha256').update(entryId).digest('base64url').slice(0, 22)}`;
}
