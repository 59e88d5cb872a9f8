import type { Deps } from './deps';
import { ObjectChangedError } from './errors';
import { copyObject, deleteObject, headObject, putObject, storeNamed, type ObjectHead, type Store, type WriteCondition } from './stores';
import { appendEvent } from './journal';
import { lockGeneration, locksOf, markDrain, queueEntryKey, removeLock, takeQueueSlot, type StoreLock } from './locks';
import { META } from './stamps';
import { addIntents, closeIntent, failIntent, isDeadUnder, readTombstone, recordCallsEnded, updateTombstone } from './tombstones';
import { isNewer, keepVersion } from './settle';

/*
 * The FIFO queue of updates held back by a lock (timeline in lib/locks.ts). Each entry is an
 * object in the control bucket, `queue/<h(K)>/<S>/<n>`, holding the update's own bytes and
 * metadata (a snapshot, not a pointer to a copy that may change since), or nothing for a delete;
 * `dfs-queue-op` says which, and `dfs-queue-lock` which lock held it.
 *
 * A number is taken (lib/locks.ts) before its entry is written, so a drain may reach a number
 * whose entry is not there: its writer stopped, or is slow. Both sides write the entry only if
 * absent, so exactly one wins:
 *
 *   writer   take n ──────────────── put entry n (if absent) ─ ok: held as n
 *   drain              head n: none ─ put "skipped" at n (if absent) ─ ok: n counted, nothing applied
 *                                     └ refused: the writer's entry is there, apply it
 *   writer   put refused, n is "skipped" → take a new number (or write through, unlocked by now)
 *
 * "Skipped" markers stay (a late writer must still find one); applied entries are forgotten.
 * An entry of another lock at n (an earlier lock of the key left it) counts as none.
 */

const OP = 'dfs-queue-op';
/** The lock an entry was held under (lockGeneration). */
const GEN = 'dfs-queue-lock';
const SKIPPED = 'skipped';

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
  for (let fresh = false; ; fresh = true) {
    const slot = await takeQueueSlot(deps, key, store, id, { fresh });
    if (!slot) return undefined;
    // A drain passed this number before the entry was written: take another.
    if ((await placeEntry(deps, key, store, slot.n, slot.gen, update)) === 'passed') continue;
    if (slot.fresh) {
      await appendEvent(deps, { action: 'queued', key, who, to: [store], reason: `${update.kind === 'delete' ? `delete (${update.reason})` : 'update'} held as #${slot.n}: ${key} is locked at ${store}` });
    }
    return slot.n;
  }
}

/**
 * Writes `update` as entry `n` of lock `gen`, unless a drain has claimed the number ("passed").
 * An entry there already is an earlier attempt's (placed), a drain's marker (passed), or an
 * earlier lock's leftover, replaced while this lock still holds.
 */
async function placeEntry(deps: Deps, key: string, store: string, n: number, gen: string, update: HeldUpdate): Promise<'placed' | 'passed'> {
  const q = controlStore(deps);
  const entry = queueEntryKey(key, store, n);
  let condition: WriteCondition = { ifAbsent: true };
  for (;;) {
    const metadata = { [GEN]: gen };
    try {
      if (update.kind === 'put') await copyObject(update.from, q, entry, update.head, { ...update.metadata, ...metadata, [OP]: 'put' }, condition, key);
      else if (update.kind === 'put-bytes') await putObject(q, entry, update.body, { metadata: { ...update.metadata, ...metadata, [OP]: 'put' }, condition, ...(update.contentType ? { contentType: update.contentType } : {}) });
      else await putObject(q, entry, '', { metadata: { ...metadata, [OP]: 'delete' }, condition });
      return 'placed';
    } catch (err) {
      if (!(err instanceof ObjectChangedError)) throw err;
    }
    const there = await headObject(q, entry);
    // Gone again: it was this update's own, written by an earlier attempt, applied and forgotten.
    if (!there) return 'placed';
    if (!isForeign(there, gen)) return there.metadata[OP] === SKIPPED ? 'passed' : 'placed';
    const now = (await locksOf(deps, key)).get(store);
    if (!now || lockGeneration(now) !== gen) return 'passed'; // this lock is over: the number with it
    condition = { ifMatch: there.etag };
  }
}

/** An entry held under another lock than `gen` (entries without a lock are taken as this one's). */
const isForeign = (entry: ObjectHead, gen: string) => entry.metadata[GEN] !== undefined && entry.metadata[GEN] !== gen;

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
      const held = await applyEntry(deps, target, key, n, lock, by);
      lock = (await markDrain(deps, key, store, { applied: n })) ?? lock;
      await appendEvent(deps, { action: 'applied', key, who: by, to: [store], reason: `held update ${n}/${lock.next - 1}` });
      if (held) await forgetEntries(deps, key, store, n, n);
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
 * earlier drain applied it and stopped before counting it) is not written again. A delete
 * removes only a version made before it (a write made after a delete survives it, also one
 * held behind it). Returns false when nothing was held at `n` (see the timeline above).
 */
async function applyEntry(deps: Deps, target: Store, key: string, n: number, lock: StoreLock, by: string): Promise<boolean> {
  const q = controlStore(deps);
  const name = queueEntryKey(key, target.name, n);
  const gen = lockGeneration(lock);
  let entry = await headObject(q, name);
  while (!entry || isForeign(entry, gen)) {
    // Its writer stopped before writing it, or has yet to: claimed, so a late writer takes another.
    try {
      await putObject(q, name, '', { metadata: { [GEN]: gen, [OP]: SKIPPED }, condition: entry ? { ifMatch: entry.etag } : { ifAbsent: true } });
      return false;
    } catch (err) {
      if (!(err instanceof ObjectChangedError)) throw err;
    }
    entry = await headObject(q, name);
  }
  if (entry.metadata[OP] === SKIPPED) return false;
  if (entry.metadata[OP] !== 'delete') {
    await applyPut(deps, target, key, entry, name);
    return true;
  }
  const current = await headObject(target, key);
  if (!current) return true;
  const tombstone = await readTombstone(deps, key);
  // Not made before the delete (or not stamped yet): the settle after the unlock decides.
  if (!current.stamp || !isDeadUnder(tombstone, current.stamp.madeMs)) return true;
  // A delete of the system's: its intent first, so that its echo is not taken for a user's.
  const now = Date.now();
  const ids: (string | undefined)[] = [];
  // Not a new delete (its own was recorded when it happened): only the removal it held back.
  await updateTombstone(deps, key, (t) => {
    const added = addIntents(t ?? { key, deletedAt: 0, who: by, intents: [] }, [{ store: target.name, etag: current.etag, id: `drain-${n}-${now}` }], now);
    ids.splice(0, ids.length, ...added.ids);
    return added.tombstone;
  });
  const id = ids[0];
  // Another delete of ours there awaits its echo: a delete now would have no intent, and its event
  // would be taken for a user's delete of everything made before it. The copy stays, dead: the
  // settle after the unlock (or reconcile) removes it.
  if (id === undefined) return true;
  try {
    await deleteObject(target, key, current.etag);
  } catch (err) {
    // Refused (changed since): nothing was deleted, no echo comes. Otherwise unknown: any echo came before now.
    await recordCallsEnded(deps, key, (t) => (err instanceof ObjectChangedError ? failIntent(t, id, target.name).tombstone : closeIntent(t, id, Date.now())));
    if (err instanceof ObjectChangedError) return true;
    throw err;
  }
  await recordCallsEnded(deps, key, (t) => closeIntent(t, id, Date.now()));
  return true;
}

/**
 * Applies a held put in its turn. A user's write (held as its bytes) replaces the copy as it
 * would have without the lock. A copy that replication or reconcile held follows their rule
 * (lib/settle.ts): it never replaces a newer live version, such as one the store took meanwhile
 * straight into its bucket or from the holder. A live version made after the one that replaces
 * it is kept first, so that a delete between the two, now or later, brings it back. Each write is
 * conditional on the copy it was decided against.
 *
 * Two cases land nothing (soak seed 10015): a held write made before a delete that has happened
 * since is dead, and would only be deleted again; and a version written straight into the locked
 * store whose event has not dated it yet cannot be ordered against the held one, so it is not
 * replaced: a user's held write is kept where kept versions compete (lib/settle.ts) and wins
 * there if the rules say so, a held copy is left to the settle after the unlock.
 */
async function applyPut(deps: Deps, target: Store, key: string, entry: ObjectHead, name: string): Promise<void> {
  const { [OP]: _op, [GEN]: _gen, ...metadata } = entry.metadata;
  const replica = metadata[META.replicaOf] !== undefined;
  const tombstone = await readTombstone(deps, key);
  const live = (h: ObjectHead) => !h.stamp || !isDeadUnder(tombstone, h.stamp.madeMs);
  if (!live(entry)) return;
  for (let round = 1; ; round++) {
    const current = await headObject(target, key);
    if (current?.stamp && current.stamp.id === metadata[META.id]) return; // applied by an earlier drain
    if (current && !current.stamp) {
      if (!replica) await keepVersion(deps, controlStore(deps), key, { ...entry, metadata }, { fromKey: name, reason: `held for ${target.name}, where a write not yet dated by its event came first: kept to compete with it` });
      return;
    }
    if (replica && current && live(current) && isNewer(current, entry)) return;
    try {
      if (current?.stamp && entry.stamp && current.stamp.madeMs > entry.stamp.madeMs && live(current)) await keepVersion(deps, target, key, current);
      await copyObject(controlStore(deps), target, key, entry, metadata, current ? { ifMatch: current.etag } : { ifAbsent: true }, name);
      return;
    } catch (err) {
      if (!(err instanceof ObjectChangedError) || round === 4) throw err;
    }
  }
}

async function forgetEntries(deps: Deps, key: string, store: string, from: number, to: number): Promise<void> {
  const q = controlStore(deps);
  for (let n = from; n <= to; n++) await deleteObject(q, queueEntryKey(key, store, n));
}
