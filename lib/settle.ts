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
} from './stores';
import { META } from './stamps';
import { addIntents, failIntent, isDeadUnder, readTombstone, updateTombstone, type Tombstone } from './tombstones';
import { appendEvent } from './journal';

/*
 * Settling a key: look at every store's copy and the key's tombstone, decide from the rules,
 * act with conditional writes. Replication (each event), the API's delete and reconcile all end
 * here, so every path decides the same way:
 *
 *   1. a copy made (dfs-made) at or before the tombstone's deletedAt is dead: it is replaced by
 *      the live winner if there is one, else deleted (an intent first: lib/tombstones.ts);
 *   2. among live copies the newest mtime wins, ties broken by ETag, so all agree;
 *   3. a store holding an older live version gets the winner's copy; a store lacking the key
 *      gets it only when `fill` allows (a replica's event never fills a gap: the store may have
 *      lost it to a delete whose event is on its way);
 *   4. a copy without a stamp (a direct bucket write its event has not stamped yet) is left
 *      alone, and never copied: only its own event knows when it was made.
 * Every copy carries the stamp and mtime of the write it copies, so one write makes at most
 * one copy per other store, and a copy's event finds every store equal.
 */

/** What every store holds under a key, and its tombstone. */
export interface KeyView {
  key: string;
  /** Per answering store: its copy, or null. Stores that did not answer are absent. */
  copies: Map<string, ObjectHead | null>;
  unavailable: string[];
  tombstone?: Tombstone;
}

export type Step =
  | { op: 'copy'; from: string; to: string; over: string | null; reason: string }
  | { op: 'delete'; store: string; etag: string; reason: string }
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
  const present = [...view.copies.values()].filter((h): h is ObjectHead => h !== null);
  const dead = (h: ObjectHead) => h.stamp !== undefined && isDeadUnder(tombstone, h.stamp.madeMs);
  const live = present.filter((h) => h.stamp !== undefined && !dead(h));
  const winner = live.length > 0 ? live.reduce((a, b) => (isNewer(b, a) ? b : a)) : undefined;
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
      if (fill(winner)) steps.push({ op: 'copy', from: winner.store, to: store, over: null, reason: `missing on ${store}` });
    } else if (dead(h)) {
      steps.push({ op: 'copy', from: winner.store, to: store, over: h.etag, reason: `${deadReason(h, tombstone!)}; ${winner.store} holds a later write` });
    } else if (h !== winner && !knownSame(h, winner)) {
      steps.push({ op: 'copy', from: winner.store, to: store, over: h.etag, reason: newerReason(winner, h) });
    }
  }
  return { key, steps, ...(winner ? { winner } : {}) };
}

function deadReason(h: ObjectHead, t: Tombstone): string {
  return `${h.store}'s version was made ${iso(h.stamp!.madeMs)}, before the delete at ${iso(t.deletedAt)}`;
}

function newerReason(w: ObjectHead, h: ObjectHead): string {
  if (w.size !== h.size) return `Sizes differ (${w.store} ${w.size} vs ${h.store} ${h.size}), ${w.store} newer (${iso(w.mtimeMs)} vs ${iso(h.mtimeMs)})`;
  return `${w.store} newer (${iso(w.mtimeMs)} vs ${h.store} ${iso(h.mtimeMs)})`;
}

/** Looks at `key` on every store and reads its tombstone, in parallel. */
export async function observeKey(deps: Pick<Deps, 'stores' | 'control'>, key: string): Promise<KeyView> {
  const [asked, tombstone] = await Promise.all([askEvery(deps.stores, (s) => headObject(s, key)), readTombstone(deps, key)]);
  return { key, copies: asked.answers, unavailable: asked.unavailable, ...(tombstone ? { tombstone } : {}) };
}

/** Who settles: names the journal entries (replication copies are `replicate`, reconcile's `reconcile`). */
export type Settler = 'replicate' | 'reconcile' | 'api';

export interface SettleOutcome {
  copied: string[];
  deleted: string[];
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
export async function applyKeyPlan(deps: Deps, view: KeyView, plan: KeyPlan, by: Settler): Promise<SettleOutcome> {
  const out: SettleOutcome = { copied: [], deleted: [], waiting: [], failed: [...view.unavailable], stale: false };
  const key = plan.key;
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
      const metadata = { ...winner.metadata, [META.replicaOf]: s.from };
      try {
        await copyObject(storeNamed(deps.stores, s.from), storeNamed(deps.stores, s.to), key, winner, metadata, s.over ? { ifMatch: s.over } : { ifAbsent: true });
        out.copied.push(s.to);
        await appendEvent(deps, { action: by === 'reconcile' ? 'reconcile' : 'replicate', key, from: s.from, to: [s.to], reason: s.reason });
      } catch (err) {
        onError(s.to, err);
      }
    }),
  );

  if (deletes.length > 0) {
    let ids: string[] = [];
    await updateTombstone(deps, key, (t) => {
      const added = addIntents(t!, deletes, Date.now());
      ids = added.ids;
      return added.tombstone;
    });
    await Promise.all(
      deletes.map(async (s, n) => {
        try {
          await deleteObject(storeNamed(deps.stores, s.store), key, s.etag);
          out.deleted.push(s.store);
          await appendEvent(deps, { action: by === 'reconcile' ? 'reconcile' : 'delete', key, to: [s.store], reason: s.reason });
        } catch (err) {
          // Refused at once: no echo will come, and an event that took this intent was a user's.
          if (certainlyNotDone(err)) {
            let real = false;
            await updateTombstone(deps, key, (t) => {
              const r = failIntent(t!, ids[n]!, s.store);
              real = r.realDelete;
              return r.tombstone === t ? undefined : r.tombstone;
            });
            if (real) out.stale = true;
          }
          onError(s.store, err);
        }
      }),
    );
  }
  return out;
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
  opts: { fill: (winner: ObjectHead) => boolean; by: Settler; view?: KeyView },
): Promise<SettleOutcome & { view: KeyView; plan: KeyPlan }> {
  let view = opts.view ?? (await observeKey(deps, key));
  for (let round = 1; ; round++) {
    const plan = planKey(view, opts.fill);
    const out = await applyKeyPlan(deps, view, plan, opts.by);
    if (!out.stale) return { ...out, view, plan };
    if (round === SETTLE_ROUNDS) return { ...out, failed: [...new Set([...out.failed, 'changing'])], view, plan };
    view = await observeKey(deps, key);
  }
}
