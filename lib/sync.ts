import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from './deps';
import { AllStoresUnavailableError, ConflictError, StoreUnavailableError } from './errors';
import { cheapVerdict, groupByContent } from './compare';
import { headObject, onStore, storeNamed, type ObjectHead, type Store } from './stores';
import { listTombstones, readTombstone } from './tombstones';
import { compareKeys, listedHead, mergeListings, openListing, stateOf, type ListedObject } from './listing';
import { copyObject, decideCopy, isNewer } from './replicate';
import { appendEvent } from './journal';
import type { PlanEntry, SyncReport } from './types';
import { z } from 'zod';
import { parseBody } from './validate';
import { parseKey } from './keys';

/** A name whose copies are not all equal, as reconcile observed it. */
export interface Observed {
  key: string;
  /** Copy per store name; absent = the store does not hold it. `group` numbers equal contents. */
  copies: Record<string, Pick<ObjectHead, 'size' | 'etag' | 'mtimeMs' | 'writtenMs'> & { group: number }>;
  /** When the name was last deleted through the system, ms. */
  tombstone?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Decides what reconcile does with one name, and why. Pure.
 * - a tombstone later than every surviving copy's write → delete those copies;
 * - otherwise the newest copy (logical mtime, then ETag) goes to every store that lacks it
 *   or holds other content.
 */
export function planName(stores: string[], o: Observed): PlanEntry | undefined {
  const holders = stores.filter((s) => o.copies[s]);
  if (holders.length === 0) return undefined;
  const lastWrite = Math.max(...holders.map((s) => o.copies[s]!.writtenMs));
  const missing = stores.filter((s) => !o.copies[s]);
  if (missing.length > 0 && o.tombstone !== undefined && o.tombstone > lastWrite) {
    return {
      key: o.key,
      action: 'delete',
      from: holders,
      deletedAt: iso(o.tombstone),
      reason: `deleted at ${iso(o.tombstone)}, after the last write (${iso(lastWrite)})`,
    };
  }
  const newest = holders.reduce((a, b) => (isNewer(o.copies[b]!, o.copies[a]!) ? b : a));
  const src = o.copies[newest]!;
  const to = stores.filter((s) => !o.copies[s] || o.copies[s]!.group !== src.group);
  if (to.length === 0) return undefined;
  const reasons = to.map((s) => {
    const c = o.copies[s];
    if (!c) return `missing on ${s}`;
    if (c.size !== src.size) return `Sizes differ (${newest} ${src.size} vs ${s} ${c.size}), ${newest} newer`;
    return `${newest} newer (${iso(src.mtimeMs)} vs ${s} ${iso(c.mtimeMs)})`;
  });
  return { key: o.key, action: 'copy', from: newest, to, reason: reasons.join('; ') };
}


export interface SyncOptions {
  dryRun?: boolean;
  /** Go on with unavailable or empty stores, and past the 50 % delete guard. */
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** Share of a store's objects a plan may delete before reconcile refuses without force. */
export const MAX_DELETE_SHARE = 0.5;
const HEAD_BATCH = 32;

/**
 * Anti-entropy: merges every store's listing, decides per name (planName), and unless
 * `dryRun` applies the plan, journalling each step. Cheap evidence settles equal names from
 * the listings alone; only the others get HEADs (logical mtime) and, when needed, a byte compare.
 * Throws ConflictError (409) when a guard trips: a store unavailable or empty, or more than
 * half a store deleted — each can be overridden with `force`.
 */
export async function reconcile(deps: Deps, opts: SyncOptions = {}): Promise<SyncReport> {
  const opened = await Promise.allSettled(deps.stores.map((s) => openListing(s, '', undefined, 1000, { readAhead: true })));
  const unavailable = deps.stores.filter((_, i) => opened[i]!.status === 'rejected').map((s) => s.name);
  for (const r of opened) if (r.status === 'rejected' && !(r.reason instanceof StoreUnavailableError)) throw r.reason;
  if (unavailable.length === deps.stores.length) throw new AllStoresUnavailableError(unavailable);
  if (unavailable.length > 0 && !opts.force) {
    throw new ConflictError(`${unavailable.join(', ')} unavailable: reconciling without it could undo its changes (use force to go on with the others)`);
  }
  const live = deps.stores.filter((s) => !unavailable.includes(s.name));
  const names = live.map((s) => s.name);
  const listings = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));

  const tombstones = new Map<string, number>();
  for await (const t of listTombstones(deps)) tombstones.set(t.key, t.time);

  const counts = { match: 0, differ: 0, missing: Object.fromEntries(names.map((n) => [n, 0])) as Record<string, number> };
  const objects = Object.fromEntries(names.map((n) => [n, 0])) as Record<string, number>;
  const entries: PlanEntry[] = [];
  let batch: { key: string; listed: (ListedObject | undefined)[] }[] = [];

  const flush = async () => {
    const observed = await Promise.all(batch.map((b) => observe(deps, live, b.key, b.listed, tombstones.get(b.key))));
    for (const o of observed) {
      if (!o) continue;
      const e = planName(names, o);
      if (e) entries.push(e);
      if (Object.keys(o.copies).length === names.length) e ? counts.differ++ : counts.match++;
    }
    batch = [];
  };

  const planAll = async () => {
    for await (const m of mergeListings(listings)) {
      const present = m.copies.filter((c): c is ListedObject => c !== undefined);
      m.copies.forEach((c, i) => {
        if (c) objects[names[i]!]!++;
        else counts.missing[names[i]!]!++;
      });
      const state = stateOf(present, names.filter((_, i) => m.copies[i]), m.copies.length - present.length);
      if (state === 'same') {
        counts.match++;
        continue;
      }
      const plain = state === 'partial' && !tombstones.has(m.key) ? missingOnly(names, m.key, m.copies) : undefined;
      if (plain) {
        entries.push(plain); // settled by the listings: no HEAD, no mtime needed
        continue;
      }
      batch.push({ key: m.key, listed: m.copies });
      if (batch.length >= HEAD_BATCH) await flush();
    }
    await flush();
  };
  try {
    await planAll();
  } catch (err) {
    // A store that stops answering mid-walk: nothing was applied, the next run starts over.
    if (!(err instanceof StoreUnavailableError)) throw err;
    throw new ConflictError(`${err.store} stopped answering during reconcile; nothing was applied, try again`);
  }
  entries.sort((a, b) => compareKeys(a.key, b.key));
  checkGuards(live, objects, entries, opts.force ?? false);
  const report: SyncReport = { dryRun: opts.dryRun ?? false, counts: { ...counts, copies: 0, deletes: 0 }, entries, unavailable };
  for (const e of entries) e.action === 'copy' ? (report.counts.copies += e.to.length) : (report.counts.deletes += e.from.length);
  if (opts.dryRun) return report;
  report.applied = await applyPlan(deps, entries, opts.onProgress);
  return report;
}

/**
 * A name some stores lack, never deleted, whose copies the listings prove equal: copy it to
 * the others. Its mtime cannot matter, so it costs no HEAD. Undefined when more must be known.
 */
function missingOnly(names: string[], key: string, listed: (ListedObject | undefined)[]): PlanEntry | undefined {
  const holders = names.filter((_, i) => listed[i]);
  const first = listed.find((c) => c !== undefined)!;
  const proven = listed.every((c, i) => !c || cheapVerdict(listedHead(names[i]!, first), listedHead(names[i]!, c))?.same === true);
  if (!proven) return undefined;
  const to = names.filter((_, i) => !listed[i]);
  return { key, action: 'copy', from: holders[0]!, to, reason: to.map((s) => `missing on ${s}`).join('; ') };
}


function checkGuards(stores: Store[], objects: Record<string, number>, entries: PlanEntry[], force: boolean) {
  if (force) return;
  const total = Object.values(objects).reduce((a, b) => a + b, 0);
  for (const s of stores) {
    if (objects[s.name] === 0 && total > 0) {
      throw new ConflictError(`${s.name} is completely empty while other stores are not: refusing (a wrong bucket?); use force to fill it`);
    }
    const deletes = entries.filter((e) => e.action === 'delete' && e.from.includes(s.name)).length;
    if (deletes > 0 && deletes > MAX_DELETE_SHARE * objects[s.name]!) {
      throw new ConflictError(`the plan deletes ${deletes} of ${objects[s.name]} objects on ${s.name} (over ${MAX_DELETE_SHARE * 100} %): refusing; use force`);
    }
  }
}

/** HEADs the copies of one name (for logical mtimes) and groups them by content. */
async function observe(
  deps: Deps,
  stores: Store[],
  key: string,
  listed: (ListedObject | undefined)[],
  tombstone: number | undefined,
): Promise<Observed | undefined> {
  const heads = (await Promise.all(stores.map((s, i) => (listed[i] ? headObject(s, key) : null)))).filter(
    (h): h is ObjectHead => h !== null,
  );
  if (heads.length === 0) return undefined; // deleted since the listing
  const groups = await groupByContent(deps, key, heads);
  const copies: Observed['copies'] = {};
  groups.forEach((g, n) => {
    for (const h of g.heads) copies[h.store] = { size: h.size, etag: h.etag, mtimeMs: h.mtimeMs, writtenMs: h.writtenMs, group: n };
  });
  const deletedAt = tombstone === undefined ? undefined : await deletionTime(deps, key, tombstone);
  return { key, copies, ...(deletedAt !== undefined ? { tombstone: deletedAt } : {}) };
}

/**
 * When `key` was deleted. The listing dates a tombstone by when it was written, but
 * replication writes it when it handles the delete's event, possibly long after the delete,
 * and a write made in between would then look older than the delete and be deleted (while
 * replication kept it). The tombstone records the delete's own time: read it for the few
 * names where a tombstone decides something. Falls back to the listing's date.
 */
async function deletionTime(deps: Deps, key: string, listed: number): Promise<number | undefined> {
  const t = await readTombstone(deps, key);
  if (!t) return undefined; // removed since the listing
  return Number.isFinite(t.time) ? Math.min(t.time, listed) : listed;
}

/** Largest batch POST /reconcile/apply takes: small enough to finish well within API Gateway's 29 s. */
export const APPLY_BATCH = 100;

const entrySchema = z.discriminatedUnion('action', [
  z.object({ key: z.string(), action: z.literal('copy'), from: z.string(), to: z.array(z.string()).min(1), reason: z.string() }),
  z.object({ key: z.string(), action: z.literal('delete'), from: z.array(z.string()).min(1), deletedAt: z.string().datetime(), reason: z.string() }),
]);
const applySchema = z.object({ entries: z.array(entrySchema).min(1).max(APPLY_BATCH) });

/**
 * Applies entries of a plan sent back by a client (the CLI applies its dry-run plan in batches
 * to show progress). Safe to trust: every step re-reads and re-decides before it writes.
 */
export async function applyEntries(deps: Deps, body: unknown) {
  const { entries } = parseBody(applySchema, body);
  for (const e of entries) {
    parseKey(e.key);
    for (const name of e.action === 'copy' ? [e.from, ...e.to] : e.from) storeNamed(deps.stores, name);
  }
  return applyPlan(deps, entries);
}

/**
 * Carries out a plan. Each step re-reads the copies it touches and re-decides, so a write
 * that landed since planning is never overwritten by an older copy. Failures are collected,
 * not thrown: the next reconcile picks them up.
 */
export async function applyPlan(
  deps: Deps,
  entries: PlanEntry[],
  onProgress?: (done: number, total: number) => void,
): Promise<{ done: number; failed: { key: string; error: string }[] }> {
  const failed: { key: string; error: string }[] = [];
  let done = 0;
  for (const e of entries) {
    try {
      if (e.action === 'copy') await applyCopy(deps, e);
      else await applyDelete(deps, e);
      done++;
    } catch (err) {
      failed.push({ key: e.key, error: (err as Error).message });
    }
    onProgress?.(done + failed.length, entries.length);
  }
  return { done, failed };
}

async function applyCopy(deps: Deps, e: Extract<PlanEntry, { action: 'copy' }>) {
  const from = storeNamed(deps.stores, e.from);
  const src = await headObject(from, e.key);
  if (!src) return;
  for (const name of e.to) {
    const to = storeNamed(deps.stores, name);
    const dst = await headObject(to, e.key);
    const d = await decideCopy(deps, e.key, src, dst, name);
    if (!d.copy) continue;
    await copyObject(deps, from, to, e.key, src, dst ? dst.etag : null);
    await appendEvent(deps, { action: 'reconcile', key: e.key, from: e.from, to: [name], reason: e.reason });
  }
}

async function applyDelete(deps: Deps, e: Extract<PlanEntry, { action: 'delete' }>) {
  for (const name of e.from) {
    const store = storeNamed(deps.stores, name);
    const h = await headObject(store, e.key);
    if (!h || h.writtenMs > Date.parse(e.deletedAt)) continue; // gone, or written again since
    await onStore(store, () => store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: e.key, IfMatch: h.etag })));
    await appendEvent(deps, { action: 'reconcile', key: e.key, to: [name], reason: e.reason });
  }
}
