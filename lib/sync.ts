import type { Deps } from './deps';
import { AllStoresUnavailableError, ConflictError, ObjectChangedError, StoreUnavailableError } from './errors';
import { cheapVerdict } from './compare';
import { copyObject, isMultipartEtag, storeNamed, type ListedObject, type ObjectHead, type Store } from './stores';
import { listTombstones, type Tombstone } from './tombstones';
import { compareKeys, listedHead, mergeListings, openListing, stateOf, type MergedName } from './listing';
import { applyKeyPlan, keptNames, observeKey, planKey, type KeyPlan, type KeyView, type Known } from './settle';
import { adoptionOf } from './stamps';
import { appendEvent } from './journal';
import { replayFailures } from './failures';
import { drainExpiredLocks } from './locking';
import { listLocks } from './locks';
import type { PlanEntry, SyncReport } from './types';
import { z } from 'zod';
import { parseBody } from './validate';
import { parseKey } from './keys';

/*
 * Reconcile, the anti-entropy pass: replays the replication events that failed every retry, walks
 * every store's listing and the tombstones side by side in key order, and settles each name the
 * listings cannot prove equal with the same rules as replication (lib/settle.ts), except that
 * stores lacking a live name are always filled: reconcile sees every store at once.
 *
 * Versions written outside dfs whose event never stamped them (the event was lost, or the
 * objects predate the stack) are stamped here from S3's LastModified, which has one-second
 * resolution and, for a multipart upload, dates its start: orphanMadeAt says when that is safe.
 */

export interface SyncOptions {
  dryRun?: boolean;
  /** Longest time spent replaying failed events first (the API has 29 s in all). */
  replayBudgetMs?: number;
  /** Go on with unavailable or empty stores, and past the 50 % delete guard. */
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
  now?: number;
}

/** Share of a store's objects a plan may delete before reconcile refuses without force. */
export const MAX_DELETE_SHARE = 0.5;
/**
 * Names looked at (HEADed) at once while the merge goes on: the walk waits only when this many
 * are in flight, and each one finished lets the next start, rather than merging a batch and
 * waiting for the whole of it. Bounds the requests in flight to about 32 × (stores + 2): more
 * made a loaded s3rver time requests out.
 */
const LOOKS_IN_FLIGHT = 32;

/**
 * When to take an unstamped version as made, or undefined to leave it to its own S3 event:
 * - its event may still come (younger than the event age): wait. The event knows the exact
 *   time, and a delete whose event is late may fall between S3's LastModified (cut to the
 *   second, a multipart upload's start) and the real time;
 * - its event is lost for good, so every delete of its time is known (failed events were
 *   replayed first): LastModified when that is after the latest delete; else a multipart
 *   upload, or a write in the delete's own second, may have been made after it, and losing a
 *   write is worse than keeping a deleted file, so it is kept; a write whose second ended
 *   before the delete is dead.
 */
export function orphanMadeAt(h: Pick<ObjectHead, 'lastModifiedMs' | 'etag'>, t: Pick<Tombstone, 'deletedAt'> | undefined, now: number, eventMaxAgeMs: number): number | undefined {
  const lm = h.lastModifiedMs;
  if (now - lm < eventMaxAgeMs) return undefined;
  if (!t || lm > t.deletedAt) return lm;
  if (isMultipartEtag(h.etag) || lm + 1000 > t.deletedAt) return t.deletedAt + 1;
  return lm;
}

/**
 * `view` with its orphans stamped as orphanMadeAt says, in place when `apply` (a conditional copy
 * onto itself, journalled), or only in the returned view for a dry run. Orphans that must wait
 * stay unstamped, and the plan leaves them alone.
 */
async function adoptOrphans(deps: Deps, view: KeyView, apply: boolean, now: number): Promise<{ view: KeyView; adopted: boolean }> {
  let adopted = false;
  const copies = new Map(view.copies);
  for (const [name, h] of view.copies) {
    if (!h || h.stamp) continue;
    const made = orphanMadeAt(h, view.tombstone, now, deps.eventMaxAgeMs);
    if (made === undefined) continue;
    const a = adoptionOf(h.metadata, made, name);
    if (apply) {
      const store = storeNamed(deps.stores, name);
      try {
        await copyObject(store, store, view.key, h, a.metadata, { ifMatch: h.etag });
      } catch (err) {
        if (err instanceof ObjectChangedError) continue; // replaced meanwhile: the new version's event stamps it
        throw err;
      }
      await appendEvent(deps, { action: 'adopt', key: view.key, who: a.stamp.who, from: name, reason: `no event stamped it: made taken as ${new Date(made).toISOString()} from S3's LastModified` });
      adopted = true;
    }
    copies.set(name, { ...h, metadata: a.metadata, stamp: a.stamp, mtimeMs: a.mtimeMs });
  }
  return { view: { ...view, copies }, adopted };
}

/** The plan of one name, as reconcile reports it. */
function entryOf(plan: KeyPlan, view: KeyView): PlanEntry | undefined {
  const copies = plan.steps.filter((s): s is Extract<typeof s, { op: 'copy' }> => s.op === 'copy');
  const deletes = plan.steps.filter((s): s is Extract<typeof s, { op: 'delete' }> => s.op === 'delete');
  if (copies.length > 0) return { key: plan.key, action: 'copy', from: copies[0]!.from, to: copies.map((s) => s.to), reason: copies.map((s) => s.reason).join('; ') };
  if (deletes.length > 0) {
    return { key: plan.key, action: 'delete', from: deletes.map((s) => s.store), deletedAt: new Date(view.tombstone!.deletedAt).toISOString(), reason: deletes[0]!.reason };
  }
  return undefined;
}

/**
 * Looks at one name on `stores`, stamps its orphans (unless a dry run) and plans it. `known`:
 * what the caller read already (the walk knows which names have no tombstone).
 */
async function planOne(deps: Deps, stores: Store[], key: string, apply: boolean, now: number, known: Known = {}) {
  const observed = await observeKey({ stores, control: deps.control, flavor: deps.flavor }, key, known);
  const { view, adopted } = await adoptOrphans(deps, observed, apply, now);
  // Stamped in place: the copies' ETags may have changed, look again before acting on them.
  const settled = adopted ? await observeKey({ stores, control: deps.control, flavor: deps.flavor }, key) : view;
  return { view: settled, plan: planKey(settled, () => true) };
}

/**
 * Anti-entropy: replays failed events (unless `dryRun`), merges every store's listing, plans
 * each name the listings cannot settle, and unless `dryRun` applies the plan, journalling each
 * step. Throws ConflictError (409) when a guard trips: a store unavailable or empty, or more
 * than half a store deleted — each can be overridden with `force`.
 */
export async function reconcile(deps: Deps, opts: SyncOptions = {}): Promise<SyncReport> {
  const now = opts.now ?? Date.now();
  const replay = !opts.dryRun && deps.failures ? await replayFailures(deps, opts.replayBudgetMs) : undefined;
  // Locks past their expiry hold no longer: their updates are applied before the plan is made.
  const expired = opts.dryRun ? [] : await drainExpiredLocks(deps, now);
  // Read once: a name the listings settle alone is never HEADed, yet its copy into a locked store is held.
  const lockedAt = new Map((await listLocks(deps)).map((l) => [`${l.key}\0${l.store}`, l]));
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

  const counts = { match: 0, differ: 0, missing: Object.fromEntries(names.map((n) => [n, 0])) as Record<string, number> };
  const objects = Object.fromEntries(names.map((n) => [n, 0])) as Record<string, number>;
  const entries: PlanEntry[] = [];
  const waiting: SyncReport['waiting'] = [];
  const held: NonNullable<SyncReport['held']> = [];
  const inFlight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;

  const record = ({ view, plan }: { view: KeyView; plan: KeyPlan }) => {
    for (const s of plan.steps) {
      const store = s.op === 'copy' ? s.to : s.op === 'delete' ? s.store : undefined;
      const lock = store ? view.locks?.get(store) : undefined;
      if (store && lock) held.push({ key: plan.key, store, holder: lock.holder, since: lock.since });
    }
    const e = entryOf(plan, view);
    if (e) entries.push(e);
    const waits = plan.steps.filter((s) => s.op === 'wait').map((s) => (s as { store: string }).store);
    if (waits.length > 0) waiting.push({ key: plan.key, stores: waits, reason: 'written outside dfs; its own S3 event has not stamped it yet' });
    const holders = [...view.copies.values()].filter((h) => h !== null).length;
    if (holders === names.length) e ? counts.differ++ : counts.match++;
  };
  // Starts looking at a name without waiting for it; waits only while LOOKS_IN_FLIGHT are. A name
  // the tombstone listing does not hold has no tombstone to read.
  const look = async (key: string, tombstoned: boolean) => {
    const looked: Promise<void> = planOne(deps, live, key, false, now, tombstoned ? {} : { tombstone: null })
      .then((planned) => {
        // A store whose listing answered but whose HEAD did not: the name cannot be planned.
        if (planned.view.unavailable.length > 0) throw new StoreUnavailableError(planned.view.unavailable[0]!);
        record(planned);
      })
      .catch((err: unknown) => void (failure ??= { err }))
      .finally(() => inFlight.delete(looked));
    inFlight.add(looked);
    while (inFlight.size >= LOOKS_IN_FLIGHT) await Promise.race(inFlight);
    if (failure) throw failure.err;
  };

  const tombstones = peekable(listTombstones(deps));
  // A name no store lists may still have a kept version to bring back (lib/settle.ts).
  const unlisted = await keptNames(deps);
  const planAll = async () => {
    for await (const m of mergeListings(listings)) {
      unlisted.delete(m.key);
      m.copies.forEach((c, i) => (c ? objects[names[i]!]!++ : counts.missing[names[i]!]!++));
      const tombstoned = await tombstones.has(m.key);
      const state = stateOf(
        m.copies.filter((c): c is ListedObject => c !== undefined),
        names.filter((_, i) => m.copies[i]),
        m.copies.filter((c) => !c).length,
      );
      if (state === 'same' && !tombstoned) {
        counts.match++;
        continue;
      }
      const plain = state === 'partial' && !tombstoned ? missingOnly(names, m) : undefined;
      if (plain) {
        entries.push(plain); // settled by the listings: no HEAD needed to plan it
        for (const store of plain.action === 'copy' ? plain.to : []) {
          const lock = lockedAt.get(`${m.key}\0${store}`);
          if (lock) held.push({ key: m.key, store, holder: lock.holder, since: lock.since });
        }
        continue;
      }
      await look(m.key, tombstoned);
    }
    for (const key of unlisted) await look(key, true);
    await Promise.all(inFlight);
    if (failure) throw failure.err;
  };
  try {
    await planAll();
  } catch (err) {
    // A store that stops answering mid-walk: nothing was applied, the next run starts over.
    if (!(err instanceof StoreUnavailableError)) throw err;
    throw new ConflictError(`${err.store} stopped answering during reconcile; nothing was applied, try again`);
  }
  // Batches finish in any order: the report is in key order all the same.
  entries.sort((a, b) => compareKeys(a.key, b.key));
  waiting.sort((a, b) => compareKeys(a.key, b.key));
  held.sort((a, b) => compareKeys(a.key, b.key) || compareKeys(a.store, b.store));
  checkGuards(live, objects, entries, opts.force ?? false);
  const report: SyncReport = {
    dryRun: opts.dryRun ?? false,
    counts: { ...counts, copies: 0, deletes: 0 },
    entries,
    unavailable,
    ...(waiting.length > 0 ? { waiting } : {}),
    ...(held.length > 0 ? { held } : {}),
    ...(expired.length > 0 ? { expiredLocks: expired.map((p) => ({ key: p.key, store: p.store, applied: p.applied })) } : {}),
    ...(replay ? { replayed: replay } : {}),
  };
  for (const e of entries) e.action === 'copy' ? (report.counts.copies += e.to.length) : (report.counts.deletes += e.from.length);
  if (opts.dryRun) return report;
  report.applied = await applyPlan(deps, entries.map((e) => e.key), opts.onProgress, live, now);
  return report;
}

/** An async iterator of sorted keys that answers "is this key in it?" for keys asked in order. */
function peekable(keys: AsyncGenerator<string>) {
  let head: IteratorResult<string> | undefined;
  return {
    async has(key: string): Promise<boolean> {
      for (;;) {
        head ??= await keys.next();
        if (head.done) return false;
        const c = compareKeys(head.value, key);
        if (c === 0) return true;
        if (c > 0) return false;
        head = undefined;
      }
    },
  };
}

/**
 * A name some stores lack, never deleted, whose copies the listings prove equal: copy it to
 * the others. Its mtime cannot matter, so planning it costs no HEAD. Undefined when more must be known.
 */
function missingOnly(names: string[], m: MergedName): PlanEntry | undefined {
  const first = m.copies.find((c) => c !== undefined)!;
  const proven = m.copies.every((c, i) => !c || cheapVerdict(listedHead(names[i]!, first), listedHead(names[i]!, c))?.same === true);
  if (!proven) return undefined;
  const holders = names.filter((_, i) => m.copies[i]);
  const to = names.filter((_, i) => !m.copies[i]);
  return { key: m.key, action: 'copy', from: holders[0]!, to, reason: to.map((s) => `missing on ${s}`).join('; ') };
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

/** Largest batch POST /reconcile/apply takes: small enough to finish well within API Gateway's 29 s. */
export const APPLY_BATCH = 100;

const entrySchema = z.object({ key: z.string() }).passthrough();
const applySchema = z.object({ entries: z.array(entrySchema).min(1).max(APPLY_BATCH) });

/**
 * Applies entries of a plan a client sends back (the CLI applies its dry-run plan in batches to
 * show progress). Only their keys are used: each is looked at and decided anew, so an entry
 * that was edited, forged or overtaken by later writes can do nothing the rules would not.
 */
export async function applyEntries(deps: Deps, body: unknown, opts: { force?: boolean } = {}) {
  const { entries } = parseBody(applySchema, body);
  const keys = entries.map((e) => parseKey(e.key));
  return applyPlan(deps, keys, undefined, deps.stores, Date.now(), opts.force ?? false);
}

/**
 * Settles each key anew (stores that lack a live version are filled). Failures are collected,
 * not thrown: the next reconcile picks them up. With `force` (going on without the stores that
 * do not answer), a key settled on every store that answered is done.
 */
export async function applyPlan(
  deps: Deps,
  keys: string[],
  onProgress?: (done: number, total: number) => void,
  stores: Store[] = deps.stores,
  now = Date.now(),
  force = false,
): Promise<{ done: number; failed: { key: string; error: string }[] }> {
  const failed: { key: string; error: string }[] = [];
  let done = 0;
  for (const key of keys) {
    try {
      const { view, plan } = await planOne(deps, stores, key, true, now);
      const out = await applyKeyPlan(deps, view, plan, 'reconcile');
      if (force) out.failed = out.failed.filter((s) => !view.unavailable.includes(s));
      if (out.failed.length > 0 || out.stale) failed.push({ key, error: `not settled on ${[...out.failed, ...(out.stale ? ['(changed meanwhile)'] : [])].join(', ')}; the next reconcile retries` });
      else done++;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      failed.push({ key, error: `${err.store} is unavailable; the next reconcile retries` });
    }
    onProgress?.(done + failed.length, keys.length);
  }
  return { done, failed };
}
