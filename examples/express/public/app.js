// The page of the Express example: starts a crawl, follows it live with crawl-engine's browser
// client (/client.js is the package's own `crawl-engine/client` build, served by server.mjs), and
// picks the job up again after a reload (?job=… in the address).
import { createCrawlClient } from '/client.js';

const client = createCrawlClient({ baseUrl: '/api/crawl' });
/** The element with this id (the page's own markup has each one). @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);

/** Rows kept in the table (newest first); the whole list is at /api/crawl/jobs/:id/results.jsonl (or .csv). */
const MAX_ROWS = 200;
const FINISHED = new Set(['completed', 'cancelled', 'failed']);
const STATUS_OF = {
  'job:created': 'queued',
  'job:started': 'running',
  'page:done': 'running',
  'page:failed': 'running',
  'page:skipped': 'running',
  'job:completed': 'completed',
  'job:cancelled': 'cancelled',
  'job:failed': 'failed',
};

/** The job on screen: { id, job, status, counts, startedAt, finishedAt, rows, results, … }. */
let view = null;
/** Whether a recrawl request is on its way (the button waits for it). */
let recrawling = false;
/** Server time minus this browser's time, as far as the events show (elapsed time uses it). */
let clockOffset = 0;

// ---------------------------------------------------------------- small helpers

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = message === '';
}

function describe(error) {
  if (error?.errors?.length) return error.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
  return error?.message ?? String(error);
}

function jobIdInAddress() {
  const id = new URLSearchParams(location.search).get('job') ?? /job=([\w-]+)/.exec(location.hash)?.[1] ?? null;
  return id !== null && /^[\w-]{1,64}$/.test(id) ? id : null;
}

function setJobInAddress(id) {
  const url = new URL(location.href);
  if (id === null) url.searchParams.delete('job');
  else url.searchParams.set('job', id);
  url.hash = '';
  history.replaceState(null, '', url);
}

function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const number = new Intl.NumberFormat('en');

function elapsedMs(v) {
  if (v.startedAt === null) return 0;
  const end = v.finishedAt ?? Date.now() + clockOffset;
  return Math.max(0, end - v.startedAt);
}

// ---------------------------------------------------------------- rendering

function renderSummary() {
  const v = view;
  const { counts, status } = v;
  const finished = counts.succeeded + counts.failed + counts.skipped;
  const done = FINISHED.has(status);
  const percent = status === 'completed' ? 100 : counts.discovered === 0 ? 0 : Math.floor((finished / counts.discovered) * 100);

  $('status').textContent = status;
  $('status').className = `status ${status}`;
  $('cancel').disabled = done || v.cancelling;
  $('cancel').textContent = v.cancelling ? 'Cancelling…' : 'Cancel';
  $('recrawl').disabled = !done || recrawling;

  const bar = document.querySelector('.bar');
  bar.className = `bar ${status}`;
  bar.setAttribute('aria-valuenow', String(percent));
  $('bar-fill').style.width = `${percent}%`;

  const parts = [`${percent}%`, `${number.format(finished)} of ${number.format(counts.discovered)} found`, `max ${number.format(v.job.options.maxPages)}`];
  if (counts.inProgress > 0) parts.push(`${counts.inProgress} in flight`);
  if (counts.skipped > 0) parts.push(`${number.format(counts.skipped)} skipped (robots.txt)`);
  if (status === 'failed' && v.job.error) parts.push(`job failed: ${v.job.error.message}`);
  $('counts').textContent = parts.join(' · ');

  $('stat-pages').textContent = number.format(finished);
  $('stat-failed').textContent = number.format(counts.failed);
  $('stat-failed-box').classList.toggle('has-failures', counts.failed > 0);
  renderClock();
}

function renderClock() {
  const v = view;
  const ms = elapsedMs(v);
  const finished = v.counts.succeeded + v.counts.failed + v.counts.skipped;
  $('stat-elapsed').textContent = v.startedAt === null ? '–' : formatDuration(ms);
  $('stat-rate').textContent = ms < 1000 || finished === 0 ? '–' : `${(finished / (ms / 1000)).toFixed(1)} pages/s`;
}

function pathOf(url) {
  try {
    const u = new URL(url);
    return u.pathname + u.search || '/';
  } catch {
    return url;
  }
}

/** A table row for a page event; `fillRow` adds the title and HTTP status once results arrive. */
function makeRow(event) {
  const kind = event.type === 'page:done' ? 'ok' : event.type === 'page:failed' ? 'fail' : 'skip';
  const row = document.createElement('tr');
  row.className = `${kind} fresh`;
  row.dataset.url = event.url;
  row.dataset.kind = kind;

  const result = document.createElement('td');
  const code = document.createElement('span');
  code.className = 'code';
  setCode(code, kind === 'ok' ? 'OK' : (event.error?.code ?? 'error'));
  const http = document.createElement('span');
  http.className = 'http';
  result.append(code, http);

  const page = document.createElement('td');
  const title = document.createElement('span');
  title.className = 'page-title';
  title.textContent = pathOf(event.url);
  const link = document.createElement('a');
  link.className = 'page-url';
  link.href = event.url;
  link.target = '_blank';
  link.rel = 'noreferrer';
  link.textContent = event.url;
  page.append(title, link);
  if (kind !== 'ok' && event.error?.message) {
    const message = document.createElement('span');
    message.className = 'page-error';
    message.textContent = event.error.message;
    message.title = event.error.message;
    page.append(message);
  }
  row.append(result, page);
  const stored = view.results.get(event.url);
  if (stored) fillRow(row, stored);
  return row;
}

/** Shows an error code, breakable after its underscores (too_many_redirects on a phone). */
function setCode(element, text) {
  element.replaceChildren();
  text.split('_').forEach((part, i) => {
    if (i > 0) element.append('_', document.createElement('wbr'));
    element.append(part);
  });
}

function fillRow(row, result) {
  const [code, http] = row.firstElementChild.children;
  const title = row.querySelector('.page-title');
  if (result.title) {
    title.textContent = result.title;
    title.title = result.title;
  }
  if (result.status !== null) {
    if (row.dataset.kind === 'ok') code.textContent = String(result.status);
    else http.textContent = `HTTP ${result.status}`;
    // "HTTP 404" once is enough.
    const message = row.querySelector('.page-error');
    if (message && message.textContent === `HTTP ${result.status}`) message.remove();
  }
  if (typeof result.change === 'string' && !row.querySelector('.change')) {
    // A recrawl's result says how the page changed since the job it crawled again.
    const mark = document.createElement('span');
    mark.className = `change change-${result.change}`;
    mark.textContent = result.change;
    row.children[1].prepend(mark);
  }
  if (typeof result.markdown === 'string' && result.markdown !== '' && !row.querySelector('.markdown')) {
    // The page's main content as markdown (`formats: ['markdown']`), folded away until opened.
    const details = document.createElement('details');
    details.className = 'markdown';
    const summary = document.createElement('summary');
    summary.textContent = `Markdown · ${number.format(result.markdown.length)} characters`;
    const pre = document.createElement('pre');
    pre.textContent = result.markdown;
    details.append(summary, pre);
    row.children[1].append(details);
  }
}

function renderEmpty() {
  if ($('pages').children.length > 0) return;
  const row = document.createElement('tr');
  row.className = 'empty';
  row.innerHTML = '<td colspan="2">No pages yet: the first ones appear here as they are fetched.</td>';
  $('pages').append(row);
}

/** Adds page events (oldest first) at the top of the table, keeping the newest MAX_ROWS. */
function addRows(events) {
  const v = view;
  const body = $('pages');
  body.querySelector('tr.empty')?.remove();
  const fresh = document.createDocumentFragment();
  for (const event of events.slice(-MAX_ROWS)) {
    const row = makeRow(event);
    v.rows.set(event.url, row);
    fresh.prepend(row);
  }
  body.prepend(fresh);
  while (body.children.length > MAX_ROWS) {
    const last = body.lastElementChild;
    v.rows.delete(last.dataset.url);
    last.remove();
  }
  v.pageEvents += events.length;
  $('more').hidden = v.pageEvents <= MAX_ROWS;
  $('more').innerHTML = '';
  if (v.pageEvents > MAX_ROWS) {
    // Every result as one streamed file (GET …/results.jsonl and …/results.csv).
    const jsonl = document.createElement('a');
    jsonl.href = client.exportUrl(v.id, 'jsonl');
    jsonl.textContent = 'all results as JSON Lines';
    const csv = document.createElement('a');
    csv.href = client.exportUrl(v.id, 'csv');
    csv.textContent = 'CSV';
    $('more').append(`Showing the newest ${MAX_ROWS} of ${number.format(v.pageEvents)} pages · `, jsonl, ' · ', csv);
  }
}

// ---------------------------------------------------------------- results (titles, HTTP status)

/**
 * Reads stored results from where the last read ended, to show titles and HTTP statuses. The
 * cursor kept is the one that started the last, incomplete page, which is read again next time.
 */
async function loadResults(v) {
  if (v.loading) {
    v.loadAgain = true;
    return;
  }
  v.loading = true;
  try {
    for (;;) {
      const page = await client.results(v.id, { cursor: v.cursor, limit: 200 });
      if (view !== v) return;
      for (const result of page.items) {
        const row = v.rows.get(result.url);
        if (row) fillRow(row, result);
        // The markdown is shown once, in the row; the kept result leaves it out, so a long crawl
        // does not hold every page's text in the browser.
        v.results.set(result.url, { ...result, markdown: undefined });
      }
      if (page.nextCursor === null) break;
      v.cursor = page.nextCursor;
    }
  } catch {
    // Titles are a nicety: the next event tries again.
  } finally {
    v.loading = false;
  }
  if (v.loadAgain && view === v) {
    v.loadAgain = false;
    void loadResults(v);
  }
}

/** At most two results reads a second while pages arrive, and one at the end. */
function scheduleResults(v, now = false) {
  if (now) {
    clearTimeout(v.resultsTimer);
    v.resultsTimer = null;
    void loadResults(v);
    return;
  }
  if (v.resultsTimer) return;
  v.resultsTimer = setTimeout(() => {
    v.resultsTimer = null;
    if (view === v) void loadResults(v);
  }, 500);
}

// ---------------------------------------------------------------- following a job

function applyEvents(v, events) {
  const pages = [];
  for (const event of events) {
    const at = Date.parse(event.at);
    if (event.type !== 'progress') clockOffset = Math.max(clockOffset, at - Date.now());
    v.counts = event.counts;
    v.status = STATUS_OF[event.type] ?? v.status;
    if (event.type === 'job:started') v.startedAt = at;
    if (event.type.startsWith('page:')) {
      v.startedAt ??= at;
      pages.push(event);
    }
    if (['job:completed', 'job:cancelled', 'job:failed'].includes(event.type)) {
      v.finishedAt = at;
      if (event.error) v.job.error = event.error;
    }
  }
  if (pages.length > 0) addRows(pages);
  renderSummary();
  if (FINISHED.has(v.status)) {
    clearInterval(v.ticker);
    scheduleResults(v, true);
  } else if (pages.length > 0) {
    scheduleResults(v);
  }
}

async function follow(jobId) {
  if (view !== null) {
    view.controller.abort();
    clearInterval(view.ticker);
    clearTimeout(view.resultsTimer);
  }
  const v = {
    id: jobId,
    controller: new AbortController(),
    job: null,
    status: 'queued',
    counts: null,
    startedAt: null,
    finishedAt: null,
    rows: new Map(),
    results: new Map(),
    pageEvents: 0,
    cursor: null,
    loading: false,
    loadAgain: false,
    resultsTimer: null,
    ticker: null,
    cancelling: false,
    queue: [],
    flushing: false,
  };
  view = v;
  setJobInAddress(jobId);

  let job;
  try {
    job = await client.getJob(jobId);
  } catch (error) {
    if (view !== v) return;
    view = null;
    $('job').hidden = true;
    setJobInAddress(null);
    showError(
      error.status === 404
        ? `Job ${jobId} does not exist (any more): the memory storage forgets jobs when the server restarts.`
        : `Could not load job ${jobId}: ${describe(error)}`,
    );
    return;
  }
  if (view !== v) return;
  v.job = job;
  v.status = job.status;
  v.counts = job.counts;
  v.startedAt = job.startedAt ? Date.parse(job.startedAt) : null;
  v.finishedAt = job.finishedAt ? Date.parse(job.finishedAt) : null;

  $('job').hidden = false;
  $('job-id').textContent = jobId;
  $('job-url').textContent = job.url;
  $('job-url').href = job.url;
  $('job-url').title = job.url;
  $('connection').textContent = '';
  $('pages').replaceChildren();
  $('more').hidden = true;
  renderEmpty();
  renderSummary();
  if (!FINISHED.has(job.status)) v.ticker = setInterval(() => view === v && renderClock(), 500);

  // The stream replays the job's history first, so a reload rebuilds the table and goes on live.
  // Events are applied once per animation frame, so a replay of thousands costs one render.
  await client.watch(jobId, {
    signal: v.controller.signal,
    onEvent: (event) => {
      $('connection').textContent = '';
      v.queue.push(event);
      if (v.flushing) return;
      v.flushing = true;
      requestAnimationFrame(() => {
        v.flushing = false;
        const events = v.queue.splice(0);
        if (view === v) applyEvents(v, events);
      });
    },
    onError: () => {
      if (view === v && !FINISHED.has(v.status)) $('connection').textContent = '· connection lost, reconnecting…';
    },
  });
}

// ---------------------------------------------------------------- the controls

let starting = false;
$('start').addEventListener('submit', async (e) => {
  e.preventDefault();
  // One job per click: the button is disabled until the server has answered.
  if (starting) return;
  starting = true;
  $('crawl').disabled = true;
  $('crawl').textContent = 'Starting…';
  showError('');
  const form = new FormData(/** @type {HTMLFormElement} */ (e.target));
  try {
    const job = await client.createJob({
      url: String(form.get('url')).trim(),
      maxPages: Number(form.get('maxPages')),
      maxDepth: Number(form.get('maxDepth')),
      sitemap: /** @type {'skip' | 'include' | 'only'} */ (String(form.get('sitemap') ?? 'skip')),
      // Pages that need JavaScript: rendered in Chromium first (`auto`: only client-rendered shells).
      render: /** @type {'never' | 'auto' | 'always'} */ (String(form.get('render') ?? 'never')),
      // Each page's main content as markdown, shown under its row.
      formats: form.get('markdown') === null ? ['metadata'] : ['metadata', 'markdown'],
    });
    void follow(job.id).catch((error) => showError(describe(error)));
  } catch (error) {
    showError(describe(error));
  } finally {
    starting = false;
    $('crawl').disabled = false;
    $('crawl').textContent = 'Crawl';
  }
});

$('cancel').addEventListener('click', async () => {
  const v = view;
  if (v === null || v.cancelling) return;
  v.cancelling = true;
  renderSummary();
  try {
    const job = await client.cancelJob(v.id);
    if (view === v && !FINISHED.has(v.status)) {
      v.status = job.status;
      v.counts = job.counts;
    }
  } catch (error) {
    // 409: it finished meanwhile; its last events are on their way.
    if (error.status !== 409) showError(describe(error));
  } finally {
    v.cancelling = false;
    if (view === v) renderSummary();
  }
});

// Recrawl: the same site again as a new job (conditional requests: a 304 costs no body), whose
// pages are marked new, changed, unchanged or gone.
$('recrawl').addEventListener('click', async () => {
  const v = view;
  if (v === null || recrawling) return;
  recrawling = true;
  renderSummary();
  try {
    const job = await client.recrawlJob(v.id);
    void follow(job.id).catch((error) => showError(describe(error)));
  } catch (error) {
    showError(describe(error));
  } finally {
    recrawling = false;
    if (view === v) renderSummary();
  }
});

const resumeId = jobIdInAddress();
if (resumeId !== null) follow(resumeId).catch((error) => showError(describe(error)));
