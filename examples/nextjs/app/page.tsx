'use client';

import type { Job, PageResult, ProgressEvent } from 'crawl-engine';
import { CrawlClientError, createCrawlClient } from 'crawl-engine/client';
import { useCrawlJob } from 'crawl-engine/react';
import { type FormEvent, Fragment, useEffect, useRef, useState } from 'react';

const BASE_URL = '/api/crawl';
const client = createCrawlClient({ baseUrl: BASE_URL });
/** Rows kept in the table (newest first); the whole list is at /api/crawl/jobs/:id/results.jsonl (or .csv). */
const MAX_ROWS = 200;
const number = new Intl.NumberFormat('en');

function describe(error: unknown): string {
  if (error instanceof CrawlClientError && error.errors?.length) return error.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
  return error instanceof Error ? error.message : String(error);
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function pathOf(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname + u.search || '/';
  } catch {
    return url;
  }
}

/** The job in the address (?job=…), so a reload picks it up again. */
function jobIdInAddress(): string | null {
  const id = new URLSearchParams(window.location.search).get('job');
  return id !== null && /^[\w-]{1,64}$/.test(id) ? id : null;
}

function setJobInAddress(id: string | null) {
  const url = new URL(window.location.href);
  if (id === null) url.searchParams.delete('job');
  else url.searchParams.set('job', id);
  window.history.replaceState(window.history.state, '', url);
}

/** An error code, breakable after its underscores (too_many_redirects on a phone). */
function Code({ text }: { text: string }) {
  return (
    <span className="code">
      {text.split('_').map((part, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: the parts of one fixed string
        <Fragment key={i}>
          {i > 0 && (
            <>
              _<wbr />
            </>
          )}
          {part}
        </Fragment>
      ))}
    </span>
  );
}

/**
 * Stored results (titles, HTTP statuses) of a job, read from where the last read ended: at most
 * twice a second while `version` (the number of page events seen) changes, and once when `done`.
 * The cursor kept is the one that started the last, incomplete page, which is read again next time.
 */
function useResults(jobId: string | null, version: number, done: boolean): Map<string, PageResult> {
  const [results, setResults] = useState<Map<string, PageResult>>(() => new Map());
  const reader = useRef({
    jobId: null as string | null,
    cursor: null as string | null,
    loading: false,
    again: false,
    timer: null as ReturnType<typeof setTimeout> | null,
  });

  useEffect(() => {
    reader.current = { jobId, cursor: null, loading: false, again: false, timer: null };
    setResults(new Map());
    return () => {
      const r = reader.current;
      if (r.timer !== null) clearTimeout(r.timer);
      r.jobId = null;
    };
  }, [jobId]);

  useEffect(() => {
    const r = reader.current;
    if (jobId === null || r.jobId !== jobId || version === 0) return;
    const load = async () => {
      if (r.loading) {
        r.again = true;
        return;
      }
      r.loading = true;
      try {
        for (;;) {
          const page = await client.results(jobId, { cursor: r.cursor, limit: 200 });
          if (r.jobId !== jobId) return;
          if (page.items.length > 0) {
            setResults((old) => {
              const next = new Map(old);
              for (const item of page.items) next.set(item.url, item);
              // Markdown is kept for the newest MAX_ROWS results only (the rows shown), so a long
              // crawl does not hold every page's text in the browser.
              let drop = next.size - MAX_ROWS;
              for (const [url, item] of next) {
                if (drop-- <= 0) break;
                if (item.markdown !== undefined) next.set(url, { ...item, markdown: undefined });
              }
              return next;
            });
          }
          if (page.nextCursor === null) break;
          r.cursor = page.nextCursor;
        }
      } catch {
        // Titles are a nicety: the next page event tries again.
      } finally {
        r.loading = false;
      }
      if (r.again && r.jobId === jobId) {
        r.again = false;
        void load();
      }
    };
    if (done) {
      if (r.timer !== null) clearTimeout(r.timer);
      r.timer = null;
      void load();
    } else if (r.timer === null) {
      r.timer = setTimeout(() => {
        r.timer = null;
        void load();
      }, 500);
    }
  }, [jobId, version, done]);

  return results;
}

/** Re-renders every half second while `active`. */
function useTicker(active: boolean) {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setTick((t) => t + 1), 500);
    return () => clearInterval(timer);
  }, [active]);
}

function PageRow({ event, result }: { event: ProgressEvent; result: PageResult | undefined }) {
  const kind = event.type === 'page:done' ? 'ok' : event.type === 'page:failed' ? 'fail' : 'skip';
  const url = event.url ?? '';
  const status = result?.status ?? null;
  const message = event.error?.message;
  return (
    <tr className={`${kind} fresh`} data-url={url} data-kind={kind}>
      <td>
        <Code text={kind === 'ok' ? (status === null ? 'OK' : String(status)) : (event.error?.code ?? 'error')} />
        <span className="http">{kind !== 'ok' && status !== null ? `HTTP ${status}` : ''}</span>
      </td>
      <td>
        <span className="page-title" title={result?.title ?? undefined}>
          {result?.title || pathOf(url)}
        </span>
        <a className="page-url" href={url} target="_blank" rel="noreferrer">
          {url}
        </a>
        {kind !== 'ok' && message && message !== `HTTP ${status}` && (
          <span className="page-error" title={message}>
            {message}
          </span>
        )}
        {result?.markdown ? (
          // The page's main content as markdown (`formats: ['markdown']`), folded away until opened.
          <details className="markdown">
            <summary>Markdown · {number.format(result.markdown.length)} characters</summary>
            <pre>{result.markdown}</pre>
          </details>
        ) : null}
      </td>
    </tr>
  );
}

export default function Home() {
  const [jobId, setJobId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [cancelling, setCancelling] = useState(false);
  const startingRef = useRef(false);
  const { job, status, counts, pages, done, error: jobError } = useCrawlJob(jobId, { baseUrl: BASE_URL, recent: MAX_ROWS });

  // The job's times (started, finished), read again when its status changes.
  const [details, setDetails] = useState<Job | null>(null);
  useEffect(() => {
    if (jobId === null || status === null) return;
    let live = true;
    client
      .getJob(jobId)
      .then((j) => live && setDetails(j))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [jobId, status]);

  // Server time minus this browser's time, as far as the events show (the elapsed time uses it).
  const clockOffset = useRef(0);
  const newest = pages[0];
  useEffect(() => {
    if (newest) clockOffset.current = Math.max(clockOffset.current, Date.parse(newest.at) - Date.now());
  }, [newest]);

  const finished = counts ? counts.succeeded + counts.failed + counts.skipped : 0;
  const results = useResults(jobId, finished, done);
  useTicker(jobId !== null && !done);

  // Resume the job in the address after a reload; keep the address in step with the job shown.
  useEffect(() => {
    setJobId(jobIdInAddress());
  }, []);
  useEffect(() => {
    if (jobId !== null) setJobInAddress(jobId);
  }, [jobId]);
  useEffect(() => {
    if (jobId === null || jobError === null) return;
    setError(
      jobError instanceof CrawlClientError && jobError.status === 404
        ? `Job ${jobId} does not exist (any more): the memory storage forgets jobs when the server restarts.`
        : `Could not load job ${jobId}: ${describe(jobError)}`,
    );
    setJobId(null);
    setJobInAddress(null);
  }, [jobId, jobError]);

  async function start(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    // One job per click: the button is disabled until the server has answered.
    if (startingRef.current) return;
    startingRef.current = true;
    setStarting(true);
    setError(null);
    const form = new FormData(event.currentTarget);
    try {
      const created = await client.createJob({
        url: String(form.get('url')).trim(),
        maxPages: Number(form.get('maxPages')),
        maxDepth: Number(form.get('maxDepth')),
        sitemap: String(form.get('sitemap') ?? 'skip') as 'skip' | 'include' | 'only',
        // Pages rendered in a browser first (the server needs BROWSER_WS_ENDPOINT or CHROMIUM_PATH).
        render: String(form.get('render') ?? 'never') as 'never' | 'auto' | 'always',
        // Each page's main content as markdown, shown under its row.
        formats: form.get('markdown') === null ? ['metadata'] : ['metadata', 'markdown'],
      });
      setJobId(created.id);
    } catch (e) {
      setError(describe(e));
    } finally {
      startingRef.current = false;
      setStarting(false);
    }
  }

  async function cancel() {
    if (jobId === null || cancelling) return;
    setCancelling(true);
    try {
      await client.cancelJob(jobId);
    } catch (e) {
      // 409: it finished meanwhile; its last events are on their way.
      if (!(e instanceof CrawlClientError && e.status === 409)) setError(describe(e));
    } finally {
      setCancelling(false);
    }
  }

  const shown = job !== null && counts !== null && status !== null;
  const info = details !== null && details.id === jobId ? details : job;
  const startedAt = info?.startedAt ? Date.parse(info.startedAt) : null;
  const finishedAt = info?.finishedAt ? Date.parse(info.finishedAt) : done && newest ? Date.parse(newest.at) : null;
  const elapsed = startedAt === null ? null : Math.max(0, (finishedAt ?? Date.now() + clockOffset.current) - startedAt);
  const percent = status === 'completed' ? 100 : counts && counts.discovered > 0 ? Math.floor((finished / counts.discovered) * 100) : 0;

  return (
    <main className="app">
      <header className="app-head">
        <h1>crawl-engine</h1>
        <p>
          Crawl a website as a durable job and watch it live. <span className="muted">Next.js example</span>
        </p>
      </header>

      <form id="start" className="card crawl-form" onSubmit={start}>
        <label className="field field-url">
          Start URL <input name="url" type="url" required placeholder="https://example.com/" autoComplete="url" />
        </label>
        <label className="field">
          Max pages <input name="maxPages" type="number" min={1} max={10000} defaultValue={100} required />
        </label>
        <label className="field">
          Max depth <input name="maxDepth" type="number" min={0} max={20} defaultValue={3} required />
        </label>
        <label className="field">
          Sitemap{' '}
          <select name="sitemap" defaultValue="skip">
            <option value="skip">skip</option>
            <option value="include">include</option>
            <option value="only">only</option>
          </select>
        </label>
        <label className="field">
          Render{' '}
          <select name="render" defaultValue="never" title="Render pages in a browser first (the server needs BROWSER_WS_ENDPOINT or CHROMIUM_PATH)">
            <option value="never">never</option>
            <option value="auto">auto</option>
            <option value="always">always</option>
          </select>
        </label>
        <label className="field field-check">
          <span>Markdown</span>
          <input name="markdown" type="checkbox" defaultChecked />
        </label>
        <button id="crawl" type="submit" className="primary" disabled={starting}>
          {starting ? 'Starting…' : 'Crawl'}
        </button>
      </form>
      {error && (
        <p id="error" className="alert" role="alert">
          {error}
        </p>
      )}

      {shown && (
        <section id="job" className="card job">
          <div className="job-head">
            <div className="job-name">
              <span id="status" className={`status ${status}`}>
                {status}
              </span>
              <a className="job-url" href={job.url} target="_blank" rel="noreferrer" title={job.url}>
                {job.url}
              </a>
            </div>
            <button id="cancel" type="button" className="danger" disabled={done || cancelling} onClick={cancel}>
              {cancelling ? 'Cancelling…' : 'Cancel'}
            </button>
          </div>
          <p className="job-id">
            Job <code id="job-id">{jobId}</code>
          </p>

          <div className={`bar ${status}`} role="progressbar" aria-label="Crawl progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
            <div className="bar-fill" style={{ width: `${percent}%` }} />
          </div>
          <p className="counts">
            {[
              `${percent}%`,
              `${number.format(finished)} of ${number.format(counts.discovered)} found`,
              `max ${number.format(job.options.maxPages)}`,
              counts.inProgress > 0 ? `${counts.inProgress} in flight` : null,
              counts.skipped > 0 ? `${number.format(counts.skipped)} skipped (robots.txt)` : null,
              status === 'failed' && info?.error ? `job failed: ${info.error.message}` : null,
            ]
              .filter(Boolean)
              .join(' · ')}
          </p>

          <dl className="stats">
            <div>
              <dt>Pages</dt>
              <dd id="stat-pages">{number.format(finished)}</dd>
            </div>
            <div>
              <dt>Speed</dt>
              <dd id="stat-rate">{elapsed === null || elapsed < 1000 || finished === 0 ? '–' : `${(finished / (elapsed / 1000)).toFixed(1)} pages/s`}</dd>
            </div>
            <div>
              <dt>Elapsed</dt>
              <dd id="stat-elapsed">{elapsed === null ? '–' : formatDuration(elapsed)}</dd>
            </div>
            <div className={counts.failed > 0 ? 'has-failures' : undefined}>
              <dt>Failed</dt>
              <dd id="stat-failed">{number.format(counts.failed)}</dd>
            </div>
          </dl>

          <table className="pages">
            <colgroup>
              <col className="col-result" />
              <col />
            </colgroup>
            <thead>
              <tr>
                <th scope="col">Result</th>
                <th scope="col">
                  Page <span className="muted">· newest first</span>
                </th>
              </tr>
            </thead>
            <tbody id="pages">
              {pages.length === 0 ? (
                <tr className="empty">
                  <td colSpan={2}>No pages yet: the first ones appear here as they are fetched.</td>
                </tr>
              ) : (
                pages.map((event) => <PageRow key={event.id} event={event} result={results.get(event.url ?? '')} />)
              )}
            </tbody>
          </table>
          {finished > pages.length && (
            <p id="more" className="more">
              Showing the newest {pages.length} of {number.format(finished)} pages · <a href={client.exportUrl(job.id, 'jsonl')}>all results as JSON Lines</a> ·{' '}
              <a href={client.exportUrl(job.id, 'csv')}>CSV</a>
            </p>
          )}
        </section>
      )}
    </main>
  );
}
