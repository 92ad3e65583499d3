'use client';

import { useState, type FormEvent } from 'react';
import { createCrawlClient, CrawlClientError } from 'crawl-engine/client';
import { useCrawlJob } from 'crawl-engine/react';

const client = createCrawlClient({ baseUrl: '/api/crawl' });

export default function Home() {
  const [jobId, setJobId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { status, counts, pages, progress, done } = useCrawlJob(jobId, { baseUrl: '/api/crawl', recent: 100 });

  async function start(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    const form = new FormData(event.currentTarget);
    try {
      const job = await client.createJob({ url: String(form.get('url')), maxPages: Number(form.get('maxPages')), maxDepth: Number(form.get('maxDepth')) });
      setJobId(job.id);
    } catch (e) {
      setError(e instanceof CrawlClientError && e.errors ? e.errors.map((x) => `${x.path}: ${x.message}`).join('; ') : String(e));
    }
  }

  const percent = Math.round(progress * 100);
  return (
    <main>
      <h1>crawl-engine</h1>
      <form onSubmit={start} style={{ display: 'flex', gap: '.75rem', alignItems: 'end', flexWrap: 'wrap' }}>
        <label>Start URL <input name="url" type="url" required placeholder="https://example.com/" /></label>
        <label>Max pages <input name="maxPages" type="number" min={1} defaultValue={50} /></label>
        <label>Max depth <input name="maxDepth" type="number" min={0} defaultValue={2} /></label>
        <button type="submit">Crawl</button>
      </form>
      {error && <p role="alert" style={{ color: '#b00020' }}>{error}</p>}
      {jobId && (
        <section>
          <h2>
            Job <code>{jobId}</code> <span id="status">{status}</span>{' '}
            <button disabled={done} onClick={() => client.cancelJob(jobId).catch((e: unknown) => setError(String(e)))}>Cancel</button>
          </h2>
          <div role="progressbar" aria-valuenow={percent} style={{ height: 14, background: '#e7ebf3', borderRadius: 7 }}>
            <div style={{ width: `${percent}%`, height: '100%', background: '#3a6df0', borderRadius: 7 }} />
          </div>
          {counts && (
            <p>
              {percent}% · {counts.succeeded + counts.failed + counts.skipped} of {counts.discovered} pages · {counts.failed} failed · {counts.skipped} skipped
            </p>
          )}
          <table style={{ width: '100%' }}>
            <tbody>
              {pages.map((p) => (
                <tr key={p.id}>
                  <td>{p.url}</td>
                  <td>{p.type === 'page:done' ? 'ok' : p.error?.code}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </main>
  );
}
