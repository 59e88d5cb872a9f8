import type { Deps } from './deps';
import { ObjectChangedError, StoreUnavailableError } from './errors';
import { cheapVerdict } from './compare';
import {
  askEvery,
  bareEtag,
  certainlyNotDone,
  copyObject,
  deleteObject,
  headObject,
  storeNamed,
  type ObjectHead,
  type Store,
} from './stores';
import { META, newWriteId } from './stamps';
import { addIntents, closeIntent, failIntent, isDeadUnder, readTombstone, recordCallsEnded, updateTombstone, type Tombstone } from './tombstones';
import { listRecords } from './control';
import { locksOf, type StoreLock } from './locks';
import { holdUpdate } from './queue';
import { appendEvent } from './journal';

/*
 * Settling a key: look at every store's copy and the key's tombstone, decide from the rules,
 * act with conditional writes. Replication (each event), the API's delete and reconcile all end
 * here, so every path decides the same way:
 *
 *   1. a copy made (dfs-made) at or before the tombstone's deletedAt is dead: it is replaced by
 *      the live winner if there is one, else deleted (an intent first: lib/tombstones.ts);
 *   2. among live versions the newest mtime wins, ties broken by ETag, so all agree;
 *   3. a store holding an older live version gets the winner's copy; a store lacking the key
 *      gets it only when `fill` allows (a replica's event never fills a gap: the store may have
 *      lost it to a delete whose event is on its way);
 *   4. a copy without a stamp (a direct bucket write its event has not stamped yet) is left
 *      alone, and never copied: only its own event knows when it was made.
 * Every copy carries the stamp and mtime of the write it copies, so one write makes at most
 * one copy per other store, and a copy's event finds every store equal.
 *
 * Kept versions. Newest-wins may replace a live version W with a newer-mtime V made *before*
 * W. If a delete between the two surfaces later (its event was late), V is dead and W should
 * have won: a write made after a delete survives it. So before V replaces such a W, W is kept
 * in the control bucket (`superseded/<key>/<id>`), and when the key has a tombstone, kept
 * versions made after it compete with the copies and are copied back if they win. A kept
 * version is forgotten once a delete made it dead, else it expires with the bucket's lifecycle
 * rule (infra/stores.js), once no late delete can come; reconcile looks at the names of kept
 * versions too, so one whose every copy a late delete took is brought back.
 *
 *   t1 V made (mtime 100) on s1   t2 a user deletes on s3 (event late)   t3 W made (mtime 50) on s2
 *   W's event: V newer → keep W, copy V over it     the delete's event: V dead, W kept and live → W back
 */

/** Where superseded versions are kept, as a store of its own in the control bucket. */
export const ARCHIVE = 'superseded';
const archiveKey = (key: string, id: string) => `${ARCHIVE}/${key}/${id}`;

/**
 * The names that have kept versions. Few (kept versions are rare and expire), so a set: the
 * archive's key order (`<key>/<id>`) is not the listings' order of names.
 */
export async function keptNames(deps: Pick<Deps, 'control'>): Promise<Set<string>> {
  const names = new Set<string>();
  for await (const r of listRecords(deps.control, `${ARCHIVE}/`)) names.add(r.key.slice(ARCHIVE.length + 1, r.key.lastIndexOf('/')));
  return names;
}

/** What every store holds under a key, its tombstone, and the versions kept for it. */
export interface KeyView {
  key: string;
  /** Per answering store: its copy, or null. Stores that did not answer are absent. */
  copies: Map<string, ObjectHead | null>;
  unavailable: string[];
  tombstone?: Tombstone;
  /** Versions replaced while live (see above), read only when the key has a tombstone. */
  kept?: { objectKey: string; head: ObjectHead }[];
  /** Locks on the key, by store (lib/locks.ts): writes into those stores are held. */
  locks?: Map<string, StoreLock>;
}

export type Step =
  | { op: 'copy'; from: string; fromKey?: string; to: string; over: string | null; reason: string }
  | { op: 'delete'; store: string; etag: string; reason: string }
  | { op: 'forget'; objectKey: string; reason: string }
  | { op: 'wait'; store: string; reason: string };

export interface KeyPlan {
  key: string;
  steps: Step[];
  winner?: ObjectHead;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Total order on versions: later mtime wins, ties broken by ETag so that all agree. */
export function isNewer(a: Pick<ObjectHead, 'mtimeMs' | 'etag'>, b: Pick<ObjectHead, 'mtimeMs' | 'etag'>): boolean {
  return a.mtimeMs !== b.mtimeMs ? a.mtimeMs > b.mtimeMs : bareEtag(a.etag) > bareEtag(b.etag);
}

/** True when the two copies are known to hold the same bytes without reading them. */
export function knownSame(a: ObjectHead, b: ObjectHead): boolean {
  if (a.stamp && b.stamp && a.stamp.id === b.stamp.id && a.size === b.size) return true;
  return cheapVerdict(a, b)?.same === true;
}

export const isReplica = (h: ObjectHead) => h.metadata[META.replicaOf] !== undefined;

/**
 * Decides what settling `view` takes (see the rules above). `fill(winner)` says whether stores
 * lacking the key get the winner. Pure: the same view always gives the same plan.
 */
export function planKey(view: KeyView, fill: (winner: ObjectHead) => boolean): KeyPlan {
  const { key, tombstone } = view;
  const dead = (h: ObjectHead) => h.stamp !== undefined && isDeadUnder(tombstone, h.stamp.madeMs);
  const present = [...view.copies.values()].filter((h): h is ObjectHead => h !== null);
  const kept = view.kept ?? [];
  const candidates = [...present, ...kept.map((k) => k.head)].filter((h) => h.stamp !== undefined && !dead(h));
  const best = candidates.length > 0 ? candidates.reduce((a, b) => (isNewer(b, a) ? b : a)) : undefined;
  // Copy from a store holding the winning write when one does, else from where it is kept.
  const winner = best && (present.find((h) => h.stamp && h.stamp.id === best.stamp!.id && !dead(h)) ?? best);
  const source = winner && (winner.store === ARCHIVE ? { from: ARCHIVE, fromKey: kept.find((k) => k.head === winner)!.objectKey } : { from: winner.store });
  const steps: Step[] = [];
  for (const [store, h] of view.copies) {
    if (h && !h.stamp) {
      steps.push({ op: 'wait', store, reason: `${store} holds a version written outside dfs that its own event has not stamped yet` });
      continue;
    }
    if (!winner) {
      if (h) steps.push({ op: 'delete', store, etag: h.etag, reason: deadReason(h, tombstone!) });
      continue;
    }
    if (h === null) {
      if (winner.store === ARCHIVE || fill(winner)) steps.push({ op: 'copy', ...source!, to: store, over: null, reason: `missing on ${store}` });
    } else if (dead(h)) {
      steps.push({ op: 'copy', ...source!, to: store, over: h.etag, reason: `${deadReason(h, tombstone!)}; a write made after it wins` });
    } else if (h !== winner && !knownSame(h, winner)) {
      steps.push({ op: 'copy', ...source!, to: store, over: h.etag, reason: newerReason(winner, h) });
    }
  }
  // Only a delete ends a kept version's turn, for good (a delete's time only rises). Being back
  // on the stores does not: the view may be old, and a settle that saw a newer-mtime version
  // live may have put it back over the stores' copy since. Lifecycle expires the rest.
  for (const k of kept) if (dead(k.head)) steps.push({ op: 'forget', objectKey: k.objectKey, reason: 'kept version made before the delete' });
  return { key, steps, ...(winner ? { winner } : {}) };
}

function deadReason(h: ObjectHead, t: Tombstone): string {
  return `${h.store}'s version was made ${iso(h.stamp!.madeMs)}, before the delete at ${iso(t.deletedAt)}`;
}

function newerReason(w: ObjectHead, h: ObjectHead): string {
  if (w.size !== h.size) return `Sizes differ (${w.store} ${w.size} vs ${h.store} ${h.size}), ${w.store} newer (${iso(w.mtimeMs)} vs ${iso(h.mtimeMs)})`;
  return `${w.store} newer (${iso(w.mtimeMs)} vs ${h.store} ${iso(h.mtimeMs)})`;
}

/** The control bucket as the store kept versions are copied to and from. */
function archiveOf(deps: Pick<Deps, 'control' | 'flavor'>): Store {
  return { name: ARCHIVE, bucket: deps.control.bucket, s3: deps.control.s3, flavor: deps.flavor };
}

/** What the caller has just read itself, so that observeKey need not read it again. */
export interface Known {
  /** The tombstone as read (null: none). */
  tombstone?: Tombstone | null;
  /** A store's copy as just HEADed. */
  head?: ObjectHead;
}

/**
 * Looks at `key` on every store and reads its tombstone (and, when the tombstone says versions
 * were kept, those).
 */
export async function observeKey(deps: Pick<Deps, 'stores' | 'control' | 'flavor'>, key: string, known: Known = {}): Promise<KeyView> {
  const [asked, tombstone, locks] = await Promise.all([
    askEvery(deps.stores, (s) => (known.head?.store === s.name ? Promise.resolve(known.head) : headObject(s, key))),
    known.tombstone !== undefined ? known.tombstone ?? undefined : readTombstone(deps, key),
    locksOf(deps, key),
  ]);
  const view: KeyView = { key, copies: asked.answers, unavailable: asked.unavailable, ...(tombstone ? { tombstone } : {}), ...(locks.size > 0 ? { locks } : {}) };
  if (!tombstone?.kept) return view;
  const archive = archiveOf(deps);
  const kept: KeyView['kept'] = [];
  for await (const r of listRecords(deps.control, `${ARCHIVE}/${key}/`)) {
    if (r.key.slice(ARCHIVE.length + key.length + 2).includes('/')) continue; // a longer key's
    const head = await headObject(archive, r.key);
    if (head) kept.push({ objectKey: r.key, head });
  }
  return { ...view, kept };
}

/** Who settles: names the journal entries (replication copies are `replicate`, reconcile's `reconcile`). */
export type Settler = 'replicate' | 'reconcile' | 'api';

export interface SettleOutcome {
  copied: string[];
  deleted: string[];
  /** Stores whose copy or delete was held in a lock's queue instead (lib/queue.ts). */
  held: string[];
  waiting: string[];
  /** Stores that did not answer, or failed a step: the caller retries. */
  failed: string[];
  /** True when a conditional step found the key changed: the plan is stale, look again. */
  stale: boolean;
}

/**
 * Carries out `plan`, each step conditional on what `view` saw. Deletes record their intents
 * first (one tombstone write for all), so their own events are known as echoes. A store that
 * fails lands in `failed`; a step that finds the key changed marks the outcome `stale`.
 */
export async function applyKeyPlan(deps: Deps, view: KeyView, plan: KeyPlan, by: Settler, actor?: string): Promise<SettleOutcome & { heldAs: Record<string, number> }> {
  const out: SettleOutcome = { copied: [], deleted: [], held: [], waiting: [], failed: [...view.unavailable], stale: false };
  // The queue number each held update took, for an API caller's answer.
  const heldAs: Record<string, number> = {};
  // Who writes, for the locks: a user through the API, else the system (never a lock's holder).
  const writer = by === 'api' && actor ? actor : by === 'reconcile' ? 'reconcile' : 'replication';
  const heldBack = (store: string) => {
    const lock = view.locks?.get(store);
    return lock !== undefined && lock.holder !== writer;
  };
  const key = plan.key;
  const archive = archiveOf(deps);
  const storeOf = (name: string) => (name === ARCHIVE ? archive : storeNamed(deps.stores, name));
  const deletes = plan.steps.filter((s): s is Extract<Step, { op: 'delete' }> => s.op === 'delete');
  const copies = plan.steps.filter((s): s is Extract<Step, { op: 'copy' }> => s.op === 'copy');
  out.waiting = plan.steps.filter((s) => s.op === 'wait').map((s) => (s as { store: string }).store);

  const onError = (store: string, err: unknown) => {
    if (err instanceof ObjectChangedError) out.stale = true;
    else if (err instanceof StoreUnavailableError) out.failed.push(store);
    else throw err;
  };

  await Promise.all(
    copies.map(async (s) => {
      const winner = plan.winner!;
      const replaced = s.over ? view.copies.get(s.to) : null;
      try {
        if (heldBack(s.to)) {
          const n = await holdUpdate(deps, key, s.to, { kind: 'put', from: storeOf(s.from), head: winner, metadata: { ...winner.metadata, [META.replicaOf]: s.from } }, actor ?? winner.stamp?.who ?? writer);
          if (n !== undefined) {
            heldAs[s.to] = n;
            return void out.held.push(s.to);
          }
          out.stale = true; // unlocked meanwhile: look again, and write it
          return;
        }
        if (replaced?.stamp && winner.stamp && replaced.stamp.madeMs > winner.stamp.madeMs && !isDeadUnder(view.tombstone, replaced.stamp.madeMs)) {
          await keep(deps, archive, storeOf(s.to), key, replaced);
        }
        const metadata = { ...winner.metadata, [META.replicaOf]: s.from };
        await copyObject(storeOf(s.from), storeOf(s.to), key, winner, metadata, s.over ? { ifMatch: s.over } : { ifAbsent: true }, s.fromKey);
        out.copied.push(s.to);
        await appendEvent(deps, { action: by === 'reconcile' ? 'reconcile' : 'replicate', key, who: actor ?? winner.stamp?.who, from: s.from, to: [s.to], reason: s.reason });
      } catch (err) {
        onError(s.to, err);
      }
    }),
  );

  for (const s of plan.steps) {
    if (s.op !== 'forget') continue;
    try {
      await deleteObject(archive, s.objectKey);
    } catch (err) {
      onError(ARCHIVE, err);
    }
  }

  // Deletes into a locked store are held in its queue, in their turn.
  const held = deletes.filter((s) => heldBack(s.store));
  for (const s of held) {
    const n = await holdUpdate(deps, key, s.store, { kind: 'delete', reason: s.reason }, actor ?? view.tombstone?.who ?? writer);
    if (n === undefined) out.stale = true;
    else {
      heldAs[s.store] = n;
      out.held.push(s.store);
    }
  }
  const direct = deletes.filter((s) => !heldBack(s.store));
  if (direct.length > 0) {
    const deletes = direct;
    let ids: (string | undefined)[] = [];
    const targets = deletes.map((s) => ({ store: s.store, etag: s.etag, id: newWriteId() }));
    await updateTombstone(deps, key, (t) => {
      const added = addIntents(t!, targets, Date.now());
      ids = added.ids;
      return added.tombstone;
    });
    const calls = await Promise.all(
      deletes.map(async (s, n): Promise<'done' | 'refused' | 'unknown' | 'skipped'> => {
        // Another delete of ours is pending on that store: its echo must come first.
        if (ids[n] === undefined) {
          out.failed.push(s.store);
          return 'skipped';
        }
        try {
          await deleteObject(storeNamed(deps.stores, s.store), key, s.etag);
          out.deleted.push(s.store);
          await appendEvent(deps, { action: by === 'reconcile' ? 'reconcile' : 'delete', key, who: actor ?? view.tombstone?.who, to: [s.store], reason: s.reason });
          return 'done';
        } catch (err) {
          onError(s.store, err);
          return certainlyNotDone(err) ? 'refused' : 'unknown';
        }
      }),
    );
    // Each call is over: its echo, if any, is dated before now. One refused at once will have
    // none, and an event that took its intent was a user's delete after all: its time joins
    // the tombstone (the refusal made the outcome stale already, so the key is looked at again).
    const ended = Date.now();
    await recordCallsEnded(deps, key, (t) => {
      let next = t;
      calls.forEach((c, n) => {
        if (c === 'skipped') return;
        next = c === 'refused' ? failIntent(next, ids[n]!, deletes[n]!.store).tombstone : closeIntent(next, ids[n]!, ended);
      });
      return next;
    });
  }
  return { ...out, heldAs };
}

/**
 * Keeps `h` in the control bucket, where it competes with the copies of `key` (see the top):
 * before a newer-mtime, earlier-made version replaces it, or (lib/queue.ts) a held write that
 * cannot land yet. `from` holds it at `fromKey`.
 */
export async function keepVersion(deps: Deps, from: Store, key: string, h: ObjectHead, why?: { fromKey: string; reason: string }): Promise<void> {
  return keep(deps, archiveOf(deps), from, key, h, why);
}

async function keep(deps: Deps, archive: Store, from: Store, key: string, h: ObjectHead, why?: { fromKey: string; reason: string }): Promise<void> {
  // Marked first, so that whoever looks at the key once it has a delete knows to look for it.
  await updateTombstone(deps, key, (t) => (t?.kept ? undefined : { ...(t ?? { key, deletedAt: 0, who: '', intents: [] }), kept: true }));
  try {
    await copyObject(from, archive, archiveKey(key, h.stamp!.id), h, h.metadata, { ifAbsent: true }, why?.fromKey ?? key);
  } catch (err) {
    if (err instanceof ObjectChangedError) return; // kept already
    throw err;
  }
  const reason = why?.reason ?? 'after the version replacing it: kept until no late delete can make it the winner';
  await appendEvent(deps, { action: 'keep', key, who: h.stamp!.who, from: from.name, reason: `made ${iso(h.stamp!.madeMs)}, ${reason}` });
}

/** Rounds of look-decide-act before settleKey reports the key as still changing. */
const SETTLE_ROUNDS = 4;

/**
 * Settles `key` (see the rules above): looks, plans, acts, and looks again while a conditional
 * step found the key changed under it. Returns what was done; stores that could not be
 * reached (or a key that kept changing) are in `failed`, for the caller to retry.
 */
export async function settleKey(
  deps: Deps,
  key: string,
  opts: { fill: (winner: ObjectHead) => boolean; by: Settler; view?: KeyView; known?: Known; actor?: string },
): Promise<SettleOutcome & { heldAs: Record<string, number>; view: KeyView; plan: KeyPlan }> {
  let view = opts.view ?? (await observeKey(deps, key, opts.known));
  for (let round = 1; ; round++) {
    const plan = planKey(view, opts.fill);
    const out = await applyKeyPlan(deps, view, plan, opts.by, opts.actor);
    if (!out.stale) return { ...out, view, plan };
    if (round === SETTLE_ROUNDS) return { ...out, failed: [...new Set([...out.failed, 'changing'])], view, plan };
    view = await observeKey(deps, key);
  }
}
