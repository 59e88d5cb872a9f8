import type { LockInfo } from './types';
import { createHash } from 'node:crypto';
import type { Deps } from './deps';
import { BadRequestError, ConflictError, DfsError, ForbiddenError, NotFoundError } from './errors';
import { deleteRecord, listRecords, readRecord, updateRecord, UNCHANGED } from './control';
import type { Identity } from './tokens';

/*
 * Locks with a FIFO queue of held updates (the lab's lock / unlock), for any store:
 *
 *   lock K at S      locks/<h(K)> gets {S: {holder, since, expires, next: 1, applied: 0}},
 *                    created with If-None-Match: * or merged with If-Match: two lockers never
 *                    both win; a second one gets 409 LockHeld with the holder
 *   write into S/K   by the holder: goes through. By anyone else (replication, reconcile,
 *                    another user): not written; its bytes are kept as queue/<h(K)>/<S>/<n>,
 *                    n = the lock's `next`, taken by a conditional update (arrival order)
 *   unlock           the queue is applied into S in order, `applied` raised after each entry, so
 *                    a drain that stops resumes at the first entry not applied and applies none
 *                    twice; writes arriving meanwhile queue after the last; then the lock goes
 *                    and S settles like any store
 *
 * Records are keyed by the key's hash: a key may be a prefix of another (`a` and `a/b`), and
 * listing one key's queue must not list the other's. A lock expires (`expires`, renewable); an
 * expired lock still holds until its queue is drained, by the next reconcile if not before.
 */

/** A lock as the API shows it (lib/types.ts LockInfo), and what the queue keeps with it. */
export interface StoreLock extends LockInfo {
  /** Write id of the last queued update: the same write is not queued twice. */
  lastQueued?: string;
}

interface LockRecord {
  key: string;
  locks: Record<string, StoreLock>;
}

export class LockHeldError extends DfsError {
  readonly status = 409;
  readonly code = 'LockHeld';
  constructor(readonly holder: string, readonly since: string, message: string) {
    super(message);
  }
}

export const DEFAULT_TTL_MS = 3600_000;
export const MAX_TTL_MS = 7 * 86_400_000;
const MIN_TTL_MS = 60_000;

const hashOf = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 40);
export const lockRecordKey = (key: string) => `locks/${hashOf(key)}`;
export const queuePrefix = (key: string, store: string) => `queue/${hashOf(key)}/${store}/`;
export const queueEntryKey = (key: string, store: string, n: number) => `${queuePrefix(key, store)}${String(n).padStart(8, '0')}`;

/** The locks on `key`, by store (none: an empty map). */
export async function locksOf(deps: Pick<Deps, 'control'>, key: string): Promise<Map<string, StoreLock>> {
  const rec = await readRecord<LockRecord>(deps.control, lockRecordKey(key));
  return new Map(Object.entries(rec?.value.locks ?? {}));
}

/** Read-modify-write of `key`'s lock record; an empty one is deleted. */
async function updateLocks(deps: Pick<Deps, 'control'>, key: string, change: (locks: Record<string, StoreLock>) => Record<string, StoreLock> | typeof UNCHANGED): Promise<Record<string, StoreLock>> {
  const stored = await updateRecord<LockRecord>(deps.control, lockRecordKey(key), (cur) => {
    const next = change({ ...(cur?.locks ?? {}) });
    return next === UNCHANGED ? UNCHANGED : { key, locks: next };
  });
  const locks = stored?.locks ?? {};
  if (stored && Object.keys(locks).length === 0) await deleteRecord(deps.control, lockRecordKey(key));
  return locks;
}

/** A ttl from the request: whole seconds from 60 s to 7 days. */
export function parseTtl(raw: unknown): number {
  if (raw === undefined) return DEFAULT_TTL_MS;
  const s = typeof raw === 'string' && /^\d{1,7}$/.test(raw) ? Number(raw) : raw;
  if (typeof s !== 'number' || !Number.isInteger(s) || s * 1000 < MIN_TTL_MS || s * 1000 > MAX_TTL_MS) {
    throw new BadRequestError(`ttl is whole seconds from ${MIN_TTL_MS / 1000} to ${MAX_TTL_MS / 1000} (7 days)`);
  }
  return s * 1000;
}

/**
 * Locks `key` at `store` for `who` (or renews `who`'s own lock). Throws LockHeldError (409) when
 * someone else holds it, and when an expired lock still has updates to drain (its holder or the
 * next reconcile drains it first).
 */
export async function acquireLock(
  deps: Pick<Deps, 'control'>,
  key: string,
  store: string,
  who: Identity,
  opts: { ttlMs?: number; reason?: string } = {},
  now = Date.now(),
): Promise<StoreLock> {
  const ttl = opts.ttlMs ?? DEFAULT_TTL_MS;
  let result: StoreLock | undefined;
  await updateLocks(deps, key, (locks) => {
    const held = locks[store];
    if (held && held.holder !== who.name) {
      const open = held.next - 1 - held.applied;
      if (held.expires > now || open > 0 || held.draining) {
        throw new LockHeldError(held.holder, held.since, `${key} is locked at ${store} by ${held.holder} since ${held.since}${held.expires <= now ? ` (expired, ${open} update(s) to apply first)` : ''}`);
      }
    }
    const mine = held && held.holder === who.name ? held : undefined;
    if (mine?.draining) throw new LockHeldError(mine.holder, mine.since, `${key} at ${store} is being unlocked`);
    result = {
      ...(mine ?? { key, store, holder: who.name, since: new Date(now).toISOString(), next: 1, applied: 0 }),
      expires: now + ttl,
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    };
    return { ...locks, [store]: result };
  });
  return result!;
}

/** The lock on `key` at `store` that `who` may release: their own, or anyone's with `force`. */
export async function lockToRelease(deps: Pick<Deps, 'control'>, key: string, store: string, who: Identity, force: boolean): Promise<StoreLock> {
  const lock = (await locksOf(deps, key)).get(store);
  if (!lock) throw new NotFoundError(`${key} is not locked at ${store}`);
  if (lock.holder !== who.name && !force) {
    throw new ForbiddenError(`${key} at ${store} is locked by ${lock.holder} since ${lock.since}; unlock with force to take it over`);
  }
  return lock;
}

/**
 * Which lock an update was held under: queue numbers start at 1 for every lock, so an entry an
 * earlier lock of the key left behind (its drain stopped before forgetting it) is told apart.
 */
export const lockGeneration = (lock: Pick<StoreLock, 'holder' | 'since'>) => `${lock.holder} ${lock.since}`;

/**
 * Takes the next queue number of `key`'s lock at `store` for an update with write id `id`
 * (`null` for a delete). Returns undefined when there is no lock there any more (write
 * through), and the existing number when that write is the last one queued already (unless
 * `fresh`: a new number however it was queued before), with the lock's generation.
 */
export async function takeQueueSlot(
  deps: Pick<Deps, 'control'>,
  key: string,
  store: string,
  id: string | null,
  opts: { fresh?: boolean } = {},
): Promise<{ n: number; fresh: boolean; gen: string } | undefined> {
  let slot: { n: number; fresh: boolean; gen: string } | undefined;
  await updateLocks(deps, key, (locks) => {
    const lock = locks[store];
    slot = undefined;
    if (!lock) return UNCHANGED;
    if (id !== null && lock.lastQueued === id && !opts.fresh) {
      slot = { n: lock.next - 1, fresh: false, gen: lockGeneration(lock) };
      return UNCHANGED;
    }
    slot = { n: lock.next, fresh: true, gen: lockGeneration(lock) };
    return { ...locks, [store]: { ...lock, next: lock.next + 1, ...(id !== null ? { lastQueued: id } : { lastQueued: undefined }) } };
  });
  return slot;
}

/** Marks `key`'s lock at `store` as draining (by `who`), or raises its `applied` count. */
export async function markDrain(deps: Pick<Deps, 'control'>, key: string, store: string, change: { draining?: { by: string; since: string }; applied?: number }): Promise<StoreLock | undefined> {
  const locks = await updateLocks(deps, key, (ls) => {
    const lock = ls[store];
    if (!lock) return UNCHANGED;
    return { ...ls, [store]: { ...lock, ...change, applied: Math.max(lock.applied, change.applied ?? lock.applied) } };
  });
  return locks[store];
}

/** Removes `key`'s lock at `store`: only once its queue is drained, unless `discard`. */
export async function removeLock(deps: Pick<Deps, 'control'>, key: string, store: string, discard: boolean): Promise<void> {
  await updateLocks(deps, key, (ls) => {
    const lock = ls[store];
    if (!lock) return UNCHANGED;
    if (!discard && lock.applied < lock.next - 1) throw new ConflictError(`${key} at ${store} still has ${lock.next - 1 - lock.applied} update(s) to apply`);
    const { [store]: _gone, ...rest } = ls;
    return rest;
  });
}

/** Every lock of the stack, sorted by key then store. */
export async function listLocks(deps: Pick<Deps, 'control'>): Promise<StoreLock[]> {
  const out: StoreLock[] = [];
  for await (const r of listRecords(deps.control, 'locks/')) {
    const rec = (await readRecord<LockRecord>(deps.control, r.key))?.value;
    for (const lock of Object.values(rec?.locks ?? {})) out.push(lock);
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.store < b.store ? -1 : 1));
}

/** True while the lock holds: until it is gone, expired or not (an expired one holds until drained). */
export const isHeldBy = (lock: StoreLock | undefined, who: string) => lock !== undefined && lock.holder === who;
