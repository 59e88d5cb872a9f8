import type { Deps } from './deps';
import { ObjectChangedError } from './errors';
import { copyObject, deleteObject, headObject, putObject, storeNamed, type ObjectHead, type Store } from './stores';
import { appendEvent } from './journal';
import { locksOf, markDrain, queueEntryKey, removeLock, takeQueueSlot, type StoreLock } from './locks';
import { META } from './stamps';
import { addIntents, closeIntent, updateTombstone } from './tombstones';

/*
 * The FIFO queue of updates held back by a lock (timeline in lib/locks.ts). Each entry is an
 * object in the control bucket, `queue/<h(K)>/<S>/<n>`, holding the update's own bytes and
 * metadata (a snapshot, not a pointer to a copy that may change since), or nothing for a delete;
 * `dfs-queue-op` says which.
 */

const OP = 'dfs-queue-op';

/** The control bucket as a store: queue entries are copied to and from it. */
const controlStore = (deps: Pick<Deps, 'control' | 'flavor'>): Store => ({ name: 'queue', bucket: deps.control.bucket, s3: deps.control.s3, flavor: deps.flavor });

export type HeldUpdate =
  | { kind: 'put'; from: Store; head: ObjectHead; metadata: Record<string, string> }
  | { kind: 'put-bytes'; body: Buffer; metadata: Record<string, string>; contentType?: string }
  | { kind: 'delete'; reason: string };

/**
 * Holds `update` of `key` at `store` in the lock's queue, in arrival order. Returns the entry's
 * number, or undefined when the lock is gone by now (the caller writes through). The same write
 * queued twice in a row (a duplicated event) is one entry.
 */
export async function holdUpdate(deps: Deps, key: string, store: string, update: HeldUpdate, who: string): Promise<number | undefined> {
  const id = update.kind === 'delete' ? null : (update.metadata[META.id] ?? null);
  const slot = await takeQueueSlot(deps, key, store, id);
  if (!slot) return undefined;
  const entry = queueEntryKey(key, store, slot.n);
  const q = controlStore(deps);
  try {
    if (update.kind === 'put') await copyObject(update.from, q, entry, update.head, { ...update.metadata, [OP]: 'put' }, { ifAbsent: true }, key);
    else if (update.kind === 'put-bytes') await putObject(q, entry, update.body, { metadata: { ...update.metadata, [OP]: 'put' }, condition: { ifAbsent: true }, ...(update.contentType ? { contentType: update.contentType } : {}) });
    else await putObject(q, entry, '', { metadata: { [OP]: 'delete' }, condition: { ifAbsent: true } });
  } catch (err) {
    if (!(err instanceof ObjectChangedError)) throw err; // written already by an earlier attempt
  }
  if (slot.fresh) {
    await appendEvent(deps, { action: 'queued', key, who, to: [store], reason: `${update.kind === 'delete' ? `delete (${update.reason})` : 'update'} held as #${slot.n}: ${key} is locked at ${store}` });
  }
  return slot.n;
}

export interface DrainProgress {
  key: string;
  store: string;
  /** Entries applied so far, and how many the queue holds. */
  applied: number;
  total: number;
  /** True once the queue is applied and the lock is gone. */
  done: boolean;
  discarded?: number;
}

/**
 * Unlocks `key` at `store`: applies the held updates into the store in order, then removes the
 * lock, or with `discard` removes it and drops them. Stops after `budgetMs` (done: false), to be
 * called again: it resumes at the first entry not applied. Updates that arrive meanwhile queue
 * after the last and are applied in turn.
 */
export async function drainLock(deps: Deps, key: string, store: string, by: string, opts: { budgetMs?: number; discard?: boolean } = {}): Promise<DrainProgress> {
  const deadline = Date.now() + (opts.budgetMs ?? Infinity);
  let lock = await markDrain(deps, key, store, { draining: { by, since: new Date().toISOString() } });
  if (!lock) return { key, store, applied: 0, total: 0, done: true };
  if (opts.discard) {
    const dropped = lock.next - 1 - lock.applied;
    await removeLock(deps, key, store, true);
    await forgetEntries(deps, key, store, lock.applied + 1, lock.next - 1);
    await appendEvent(deps, { action: 'unlocked', key, who: by, to: [store], reason: `${dropped} held update(s) discarded` });
    return { key, store, applied: lock.applied, total: lock.next - 1, done: true, discarded: dropped };
  }
  const target = storeNamed(deps.stores, store);
  for (;;) {
    while (lock.applied < lock.next - 1) {
      if (Date.now() > deadline) return { key, store, applied: lock.applied, total: lock.next - 1, done: false };
      const n: number = lock.applied + 1;
      await applyEntry(deps, target, key, n, lock, by);
      lock = (await markDrain(deps, key, store, { applied: n })) ?? lock;
      await appendEvent(deps, { action: 'applied', key, who: by, to: [store], reason: `held update ${n}/${lock.next - 1}` });
      await forgetEntries(deps, key, store, n, n);
    }
    try {
      await removeLock(deps, key, store, false);
      break;
    } catch {
      // An update queued since the last look: apply it too.
      const again = (await locksOf(deps, key)).get(store);
      if (!again) break;
      lock = again;
    }
  }
  await appendEvent(deps, { action: 'unlocked', key, who: by, to: [store], reason: `${lock.next - 1} held update(s) applied` });
  return { key, store, applied: lock.next - 1, total: lock.next - 1, done: true };
}

/**
 * Applies queue entry `n` into `target`, once: a put whose write is on the store already (an
 * earlier drain applied it and stopped before counting it) is not written again, nor a delete
 * of a key the store no longer holds.
 */
async function applyEntry(deps: Deps, target: Store, key: string, n: number, _lock: StoreLock, by: string): Promise<void> {
  const q = controlStore(deps);
  const entry = await headObject(q, queueEntryKey(key, target.name, n));
  if (!entry) return; // its writer stopped before writing it: nothing was held
  const current = await headObject(target, key);
  if (entry.metadata[OP] === 'delete') {
    if (!current) return;
    // A delete of the system's: its intent first, so that its echo is not taken for a user's.
    const now = Date.now();
    const ids: (string | undefined)[] = [];
    // Not a new delete (its own was recorded when it happened): only the removal it held back.
    await updateTombstone(deps, key, (t) => {
      const added = addIntents(t ?? { key, deletedAt: 0, who: by, intents: [] }, [{ store: target.name, etag: current.etag, id: `drain-${n}-${now}` }], now);
      ids.splice(0, ids.length, ...added.ids);
      return added.tombstone;
    });
    await deleteObject(target, key, current.etag).catch((err) => {
      if (!(err instanceof ObjectChangedError)) throw err;
    });
    if (ids[0]) await updateTombstone(deps, key, (t) => closeIntent(t!, ids[0]!, Date.now()));
    return;
  }
  const { [OP]: _op, ...metadata } = entry.metadata;
  if (current?.stamp && current.stamp.id === metadata[META.id]) return;
  await copyObject(q, target, key, entry, metadata, undefined, queueEntryKey(key, target.name, n));
}

async function forgetEntries(deps: Deps, key: string, store: string, from: number, to: number): Promise<void> {
  const q = controlStore(deps);
  for (let n = from; n <= to; n++) await deleteObject(q, queueEntryKey(key, store, n));
}
