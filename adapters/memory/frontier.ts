/**
 * Adding URLs to a `memoryStorage()` job: admitted ones (charged against `maxPages`), spares kept
 * past `maxPages` to stand in for admitted URLs that get refunded, and skipped ones recorded for
 * dedup only. complete.ts decides which a link becomes.
 */
import type { FrontierLink } from '../../src/storage/index.js';
import { type Entry, type EntryState, type HostState, hostOf, type JobState } from './state.js';

function entryOf(link: FrontierLink, host: HostState, state: EntryState, unsure: boolean): Entry {
  return { url: link.url, key: link.key, depth: link.depth, host, state, token: null, attempts: 0, expiresAt: 0, notBefore: 0, unsure, lastmod: link.lastmod };
}

/** A host not registered with the job (claims never see it): for entries that are not claimable. */
const detachedHost = (name: string): HostState => ({ name, queue: [], head: 0, front: [], inFlight: 0, nextAt: 0, crawlDelayMs: 0 });

/** Queues an admitted link on its host; the caller counts it. */
export function addEntry(js: JobState, link: FrontierLink): Entry {
  const host = hostOf(js, link.host);
  const entry = entryOf(link, host, 'pending', link.robots !== 'allowed');
  js.entries.set(link.key, entry);
  host.queue.push(entry);
  if (entry.unsure) js.unsure++;
  return entry;
}

/** Kept for dedup and as a stand-in; its host is registered only when it is admitted. */
export function addSpare(js: JobState, link: FrontierLink): void {
  const entry = entryOf(link, detachedHost(link.host), 'spare', link.robots !== 'allowed');
  js.entries.set(link.key, entry);
  js.spares.push(entry);
}

/** Admits the oldest spare in place of a refunded URL; false when there is none. */
export function admitSpare(js: JobState): boolean {
  const entry = js.spares[js.spareHead];
  if (entry === undefined) return false;
  js.spares[js.spareHead++] = undefined as unknown as Entry;
  if (js.spareHead > 1024 && js.spareHead * 2 > js.spares.length) {
    js.spares = js.spares.slice(js.spareHead);
    js.spareHead = 0;
  }
  const host = hostOf(js, entry.host.name);
  entry.host = host;
  entry.state = 'pending';
  host.queue.push(entry);
  if (entry.unsure) js.unsure++;
  js.job.counts.discovered++;
  js.job.counts.queued++;
  return true;
}

/** Records a link robots.txt disallows as skipped, without a lease and without a charge. */
export function addSkipped(js: JobState, link: FrontierLink): void {
  js.entries.set(link.key, entryOf(link, detachedHost(link.host), 'failed', false));
}
