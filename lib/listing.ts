import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Deps } from './deps';
import { BadRequestError, AllStoresUnavailableError, StoreUnavailableError } from './errors';
import { cheapVerdict } from './compare';
import { bareEtag, listPage as listStorePage, type ListedObject, type ObjectHead, type Store } from './stores';
import type { FileEntry, FileState, Listing, StoreEntry } from './types';
import { cursorSecret } from './secrets';

export type { ListedObject };

/** A name and what each store holds under it; `undefined` = the store does not list it. */
export interface MergedName {
  key: string;
  copies: (ListedObject | undefined)[];
}

/**
 * Merges N listings, each sorted in S3's order (UTF-8 byte order), into one sorted sequence of
 * names with every store's copy side by side: rclone's march, generalised from two sides to N.
 * Pulls from each source only as far as needed, so memory is bounded by the sources' pages.
 */
export async function* mergeListings(sources: AsyncIterable<ListedObject>[]): AsyncGenerator<MergedName> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  const heads = await Promise.all(iterators.map((it) => it.next()));
  // The sources the last name came from move on only when the next name is asked for: a page
  // that stops at its last name asks no store for a page it will not use.
  let taken: number[] = [];
  for (;;) {
    await Promise.all(taken.map(async (i) => void (heads[i] = await iterators[i]!.next())));
    let min: string | undefined;
    for (const h of heads) if (!h.done && (min === undefined || compareKeys(h.value.key, min) < 0)) min = h.value.key;
    if (min === undefined) return;
    taken = heads.flatMap((h, i) => (!h.done && h.value.key === min ? [i] : []));
    yield { key: min, copies: heads.map((h) => (!h.done && h.value.key === min ? h.value : undefined)) };
  }
}

/** S3 lists keys in the byte order of their UTF-8 encoding, which is not JS string order. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The state of a name from cheap evidence only: `different` if any two copies provably differ,
 * else `partial` if some answering store lacks it, else `unverified` if the evidence could not
 * decide (multipart ETags), else `same`.
 */
export function stateOf(copies: ListedObject[], storeNames: string[], missing: number): FileState {
  const heads = copies.map((c, i) => listedHead(storeNames[i]!, c));
  let undecided = false;
  for (const h of heads.slice(1)) {
    const v = cheapVerdict(heads[0]!, h);
    if (v && !v.same) return 'different';
    if (!v) undecided = true;
  }
  if (missing > 0) return 'partial';
  return undecided ? 'unverified' : 'same';
}

/** What a listing tells of a copy, as a head for the cheap equality rule. */
export function listedHead(store: string, o: ListedObject): ObjectHead {
  // Our buckets use SSE-S3, where a single-part ETag is the content's MD5.
  return { store, size: o.size, etag: o.etag, mtimeMs: o.lastModifiedMs, lastModifiedMs: o.lastModifiedMs, checksums: {}, etagIsMd5: true, metadata: {} };
}

/**
 * One store's objects under `prefix`, after `after`, page by page. The first page is fetched
 * eagerly so that a store that is down is known before merging starts; with `readAhead` each
 * next page is requested as soon as the previous one arrives.
 */
export async function openListing(
  store: Store,
  prefix: string,
  after: string | undefined,
  pageSize: number,
  opts: { readAhead?: boolean } = {},
) {
  const fetchPage = (token?: string) => listStorePage(store, { prefix, ...(token ? { token } : after ? { after } : {}), max: pageSize });
  const first = await fetchPage();
  async function* objects(): AsyncGenerator<ListedObject> {
    let page = first;
    for (;;) {
      const token = page.next;
      // A full walk (reconcile) asks for the next page while this one is consumed; a paged
      // listing does not, as it usually stops within the first page.
      const ahead = token && opts.readAhead ? fetchPage(token) : undefined;
      ahead?.catch(() => undefined); // awaited below; not unhandled meanwhile
      yield* page.objects;
      if (!token) return;
      page = await (ahead ?? fetchPage(token));
    }
  }
  return objects();
}

export interface ListOptions {
  prefix?: string;
  /** Opaque cursor from a previous page's `next`. */
  after?: string;
  limit?: number;
}

export const MAX_LIST_LIMIT = 1000;

/**
 * One page of the composite listing: names from every store merged in S3 order, each with its
 * per-store details and a state. Stores that fail are named in `unavailable` and left out of
 * every entry's `stores`; throws AllStoresUnavailableError when none answers.
 * A store failing midway through the page fails the page (a retry resumes from the cursor).
 */
export async function listFiles(deps: Deps, opts: ListOptions = {}): Promise<Listing> {
  const prefix = opts.prefix ?? '';
  const limit = opts.limit ?? MAX_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new BadRequestError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  const secret = await cursorSecret(deps);
  const after = opts.after ? openCursor(secret, opts.after, prefix) : undefined;

  const unavailable: string[] = [];
  for (;;) {
    const stores = deps.stores.filter((s) => !unavailable.includes(s.name));
    try {
      return await listPage(stores, prefix, after, limit, secret, unavailable);
    } catch (err) {
      // A store failing midway through the page is unavailable: list the page again without it.
      if (!(err instanceof StoreUnavailableError)) throw err;
      unavailable.push(err.store);
    }
  }
}

async function listPage(
  stores: Store[],
  prefix: string,
  after: string | undefined,
  limit: number,
  secret: string,
  unavailable: string[],
): Promise<Listing> {
  const opened = await Promise.allSettled(stores.map((s) => openListing(s, prefix, after, limit + 1)));
  const live: { store: Store; objects: AsyncGenerator<ListedObject> }[] = [];
  opened.forEach((r, i) => {
    const store = stores[i]!;
    if (r.status === 'fulfilled') live.push({ store, objects: r.value });
    else if (r.reason instanceof StoreUnavailableError) unavailable.push(store.name);
    else throw r.reason;
  });
  if (live.length === 0) throw new AllStoresUnavailableError(unavailable);

  const files: FileEntry[] = [];
  let more = false;
  const names = live.map((l) => l.store.name);
  for await (const merged of mergeListings(live.map((l) => l.objects))) {
    if (files.length === limit) {
      more = true;
      break;
    }
    files.push(toEntry(merged, names));
  }
  const last = files[files.length - 1];
  return { files, next: more && last ? sealCursor(secret, last.name, prefix) : null, unavailable: [...unavailable] };
}

function toEntry(merged: MergedName, names: string[]): FileEntry {
  const stores: Record<string, StoreEntry | null> = {};
  const present: ListedObject[] = [];
  const presentNames: string[] = [];
  merged.copies.forEach((c, i) => {
    stores[names[i]!] = c ? { size: c.size, etag: bareEtag(c.etag), mtime: new Date(c.lastModifiedMs).toISOString() } : null;
    if (c) {
      present.push(c);
      presentNames.push(names[i]!);
    }
  });
  const newest = present.reduce((a, b) => (b.lastModifiedMs > a.lastModifiedMs ? b : a));
  return {
    name: merged.key,
    size: newest.size,
    mtime: new Date(newest.lastModifiedMs).toISOString(),
    state: stateOf(present, presentNames, names.length - present.length),
    stores,
  };
}

/*
 * Cursors are `base64url(json).mac`. The MAC is not a secret guard (any key may be listed);
 * it makes a cursor that was edited, truncated or used with another prefix a clear 400
 * instead of a silently different page.
 */
export function sealCursor(secret: string, lastKey: string, prefix: string): string {
  const payload = Buffer.from(JSON.stringify({ k: lastKey, p: prefix })).toString('base64url');
  return `${payload}.${mac(secret, payload)}`;
}

export function openCursor(secret: string, cursor: string, prefix: string): string {
  const [payload = '', sig = ''] = cursor.split('.');
  const expected = Buffer.from(mac(secret, payload));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new BadRequestError('the "after" cursor is not one this API issued (was it edited or truncated?)');
  }
  let parsed: { k?: unknown; p?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString()) as typeof parsed;
  } catch {
    throw new BadRequestError('the "after" cursor is not one this API issued (its payload is not JSON)');
  }
  if (typeof parsed?.k !== 'string' || typeof parsed.p !== 'string') throw new BadRequestError('the "after" cursor is not one this API issued');
  if (parsed.p !== prefix) throw new BadRequestError('the "after" cursor belongs to a listing with another prefix');
  return parsed.k;
}

function mac(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url').slice(0, 22);
}
