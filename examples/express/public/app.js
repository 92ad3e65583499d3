import { createCrawlClient } from '/client.js';

const client = createCrawlClient({ baseUrl: '/api/crawl' });
const $ = (id) => document.getElementById(id);
let watching = null;
let current = null;

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = message === '';
}

function render(counts, status) {
  const finished = counts.succeeded + counts.failed + counts.skipped;
  const percent = counts.discovered === 0 ? 0 : Math.round((finished / counts.discovered) * 100);
  $('bar-fill').style.width = `${percent}%`;
  document.querySelector('.bar').setAttribute('aria-valuenow', String(percent));
  $('counts').textContent = `${percent}% · ${finished} of ${counts.discovered} pages · ${counts.succeeded} ok, ${counts.failed} failed, ${counts.skipped} skipped, ${counts.inProgress} in flight`;
  if (status) {
    $('status').textContent = status;
    $('status').className = `status ${status}`;
    $('cancel').disabled = !['queued', 'running'].includes(status);
  }
}

const STATUS = { 'job:created': 'queued', 'job:started': 'running', 'job:completed': 'completed', 'job:cancelled': 'cancelled', 'job:failed': 'failed' };

function addRow(event) {
  const row = document.createElement('tr');
  row.dataset.url = event.url;
  const outcome = event.type === 'page:done' ? 'ok' : `${event.error?.code ?? 'error'}: ${event.error?.message ?? ''}`;
  row.innerHTML = '<td></td><td></td><td></td>';
  row.children[0].textContent = String($('pages').children.length + 1);
  row.children[1].textContent = event.url;
  row.children[2].textContent = outcome;
  row.children[2].className = event.type === 'page:failed' ? 'fail' : event.type === 'page:skipped' ? 'skip' : '';
  $('pages').append(row);
}

async function follow(jobId) {
  watching?.abort();
  watching = new AbortController();
  current = jobId;
  history.replaceState(null, '', `#job=${jobId}`);
  $('job').hidden = false;
  $('job-id').textContent = jobId;
  $('pages').replaceChildren();
  const job = await client.getJob(jobId);
  render(job.counts, job.status);
  // The stream replays the job's history first, so a reload rebuilds the table and goes on.
  await client.watch(jobId, {
    signal: watching.signal,
    onEvent: (event) => {
      if (event.type.startsWith('page:')) addRow(event);
      render(event.counts, STATUS[event.type] ?? (event.type.startsWith('page:') ? 'running' : null));
    },
  });
}

$('start').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError('');
  const form = new FormData(e.target);
  try {
    const job = await client.createJob({ url: form.get('url'), maxPages: Number(form.get('maxPages')), maxDepth: Number(form.get('maxDepth')) });
    void follow(job.id);
  } catch (error) {
    showError(error.errors ? error.errors.map((x) => `${x.path}: ${x.message}`).join('; ') : error.message);
  }
});

$('cancel').addEventListener('click', async () => {
  if (current === null) return;
  try {
    const job = await client.cancelJob(current);
    render(job.counts, job.status);
  } catch (error) {
    showError(error.message);
  }
});

const fromHash = /job=([\w-]+)/.exec(location.hash)?.[1];
if (fromHash) follow(fromHash).catch((error) => showError(error.message));
