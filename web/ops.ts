/**
 * What the page's buttons do, over client/ (the operations, the answer guards and the multipart
 * client `dfs` uses too). No view code here: each function returns what happened or throws
 * what client/answers.ts throws, and the views put it in words (words.ts).
 */
import {
  appliedOf, drainAnswerOf, eventPageOf, listingOf, lockAnswerOf, locksOf, readAnswerOf, syncReportOf, writeAnswerOf,
  type AppliedBatch, type Content, type EventPage, type FileEntry, type LockInfo, type PlanEntry, type ReadAnswer, type StoreOutcome, type SyncReport,
} from '../client/answers';
import { INLINE_LIMIT, uploadMultipart } from '../client/multipart';
import { pause } from '../client/pause';
import type { ApiOp, ApiSender } from '../client/routes';
import { fileSource, sendPart } from './api';

type Api = ApiSender<ApiOp>;
/** The API's largest listing page (lib/listing.ts MAX_LIST_LIMIT) and apply batch (lib/sync.ts APPLY_BATCH). */
const LIST_PAGE = 1000;
export const APPLY_BATCH = 100;

export interface Loaded {
  files: FileEntry[];
  unavailable: string[];
  locks: LockInfo[];
}

/** The whole listing, page after page; `onPage` sees it grow, so the first rows show while the rest come. */
export async function loadListing(api: Api, onPage: (sofar: Loaded) => void, signal: AbortSignal): Promise<Loaded> {
  const locks = api.send({ op: 'locks' }, { signal }).then(locksOf);
  locks.catch(() => undefined); // awaited below; a listing that fails first must not leave it unhandled
  const files: FileEntry[] = [];
  const unavailable = new Set<string>();
  let after: string | undefined;
  do {
    const page = listingOf(await api.send({ op: 'list', limit: LIST_PAGE, ...(after ? { after } : {}) }, { signal }));
    files.push(...page.files);
    for (const s of page.unavailable) unavailable.add(s);
    after = page.next ?? undefined;
    if (after) onPage({ files: [...files], unavailable: [...unavailable], locks: [] });
  } while (after && !signal.aborted);
  return { files, unavailable: [...unavailable], locks: await locks };
}

export const readFile = async (api: Api, key: string): Promise<ReadAnswer> => readAnswerOf(await api.send({ op: 'get', key }));

/** A version's bytes: inline, or fetched from its presigned URL (the bucket's CORS allows this origin to GET). */
export async function bytesOf(content: Content | undefined): Promise<Blob> {
  if (!content) throw new Error('the answer carries no content');
  if ('base64' in content) return new Blob([Uint8Array.from(atob(content.base64), (c) => c.charCodeAt(0))]);
  const res = await fetch(content.url);
  if (!res.ok) throw new Error(`the store answered ${res.status} to the download link`);
  return res.blob();
}

/** Uploads `file` as `key`: one PUT when small, else the presigned multipart flow; `progress` gets a fraction. */
export async function uploadFile(api: Api, file: File, key: string, to: string, progress: (fraction: number) => void, signal: AbortSignal): Promise<StoreOutcome[]> {
  const mtime = file.lastModified || Date.now();
  if (file.size <= INLINE_LIMIT) {
    const body = new Uint8Array(await file.arrayBuffer());
    const answer = writeAnswerOf(await api.send({ op: 'put', key, to, mtime, body }, { signal }), 'nothing was stored');
    progress(1);
    return answer.results;
  }
  const result = await uploadMultipart(api, fileSource(file), { key, to, mtime }, {
    sendPart,
    signal,
    progress: (total) => ({ update: (sent) => progress(total ? sent / total : 1), stop: () => undefined }),
  });
  return result.results;
}

export const deleteFile = async (api: Api, key: string): Promise<StoreOutcome[]> =>
  writeAnswerOf(await api.send({ op: 'delete', key }), 'nothing was deleted').results;

export const lockFile = async (api: Api, key: string, store: string, reason?: string): Promise<LockInfo> =>
  lockAnswerOf(await api.send({ op: 'lock', key, store, ...(reason ? { reason } : {}) }));

/** Unlocks and, when the drain goes on by itself (202), waits until the lock is gone. */
export async function unlockFile(api: Api, key: string, store: string, force: boolean, signal: AbortSignal): Promise<void> {
  const drain = drainAnswerOf(await api.send({ op: 'unlock', key, store, ...(force ? { force: true } : {}) }), key, store);
  while (!drain.done && !signal.aborted) {
    await pause(1000, signal);
    const locks = locksOf(await api.send({ op: 'locks' }));
    if (!locks.some((l) => l.key === key && l.store === store)) return;
  }
}

/** Copies the newest version over the others: the server decides anew (newest mtime wins), so a stale page cannot overrule a newer write. */
export async function keepNewest(api: Api, answer: Extract<ReadAnswer, { status: 'DIFFERENT' }>): Promise<AppliedBatch> {
  const newest = answer.versions.find((v) => v.newest) ?? answer.versions[0]!;
  const to = answer.versions.filter((v) => v !== newest).flatMap((v) => v.stores);
  const entries: PlanEntry[] = [{ key: answer.key, action: 'copy', from: newest.stores[0]!, to, reason: 'keep the newest everywhere (web page)' }];
  return appliedOf(await api.send({ op: 'applyPlan', entries }), entries);
}

export const previewSync = async (api: Api): Promise<SyncReport> => syncReportOf(await api.send({ op: 'reconcile', dryRun: true, force: false }));

/** Applies a dry run's plan in batches, as `dfs sync` does; `progress` gets the steps done so far. */
export async function applySync(api: Api, entries: PlanEntry[], progress: (done: number) => void): Promise<AppliedBatch> {
  const total: AppliedBatch = { done: 0, failed: [] };
  for (let start = 0; start < entries.length; start += APPLY_BATCH) {
    const batch = entries.slice(start, start + APPLY_BATCH);
    const out = appliedOf(await api.send({ op: 'applyPlan', entries: batch }), batch);
    total.done += out.done;
    total.failed.push(...out.failed);
    progress(start + batch.length);
  }
  return total;
}

export const readEvents = async (api: Api, after: string | undefined, signal: AbortSignal): Promise<EventPage> =>
  eventPageOf(await api.send({ op: 'events', ...(after ? { after } : {}) }, { signal }));
