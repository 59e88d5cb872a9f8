import { createHash } from 'node:crypto';
import type { Deps } from './deps';
import { ObjectChangedError, StoreUnavailableError } from './errors';
import { bareEtag, copyObject, isMultipartEtag, type ObjectHead, type Store } from './stores';
import { adoptionOf, META } from './stamps';
import { appendEvent } from './journal';
import { classifyDelete, compareSequencers, updateTombstone, type DeleteKind, type Requester } from './tombstones';
import { isReplica, observeKey, planKey, settleKey, type KeyView, type SettleOutcome } from './settle';
import { parseS3Event, type RejectedRecord } from './s3events';

/*
 * Replication, one S3 event at a time; the rules themselves are in lib/settle.ts.
 *
 *   created on S:  look at K on every store (S's copy among them), its tombstone and locks, in
 *                  one round. S's copy has no stamp (written straight into the bucket, or a
 *                  multipart upload that just completed) → stamp it in place: made = the event's
 *                  time, the moment S3 finished the write (lib/stamps.ts adoptionOf). Settle K,
 *                  letting stores that lack K be filled only when the event is about the winning
 *                  write's own original (not a copy of it); the copies carry the stamp and are
 *                  made alongside the stamping when settling leaves S's copy alone, else after it:
 *     server1 ← W (user)     event → W copied to server2..N (one copy each, W's stamp on it)
 *     serverK ← copy of W    event → every store holds W → nothing
 *   removed on S:  an echo of a delete the system made, or a user's delete: told by who made it
 *                  (the event's principal), else by the intents (lib/tombstones.ts
 *                  classifyDelete, by sequencer). A user's delete at time te raises the
 *                  tombstone to te; settling K then removes every version made before it,
 *                  wherever it is, and keeps any made after it.
 */

/** One object event, decoded and matched to its store. */
export interface ObjectEvent {
  store: Store;
  key: string;
  kind: 'created' | 'removed';
  /** S3's time for the event, ms: when it finished the write or the delete. */
  time: number;
  /** S3's sequencer: orders the events of one key on one bucket; duplicates share it. */
  seq: string;
  /** The ETag the event reports for a created object, when it does. */
  etag?: string;
  /** S3's event name, e.g. `ObjectCreated:Copy`. */
  name?: string;
  /** Who made the request, as S3 names them (`userIdentity.principalId`). */
  principal?: string;
}

export interface ReplicationOutcome extends Omit<SettleOutcome, 'stale'> {
  /** How a removed event was taken; absent for created events. */
  deleteKind?: DeleteKind;
}

/**
 * Applies one event and journals what it did. Idempotent: a replayed or duplicated event finds
 * the stores settled and does nothing. Stores it could not settle are in `failed`; the caller
 * throws so that Lambda retries the whole event.
 */
export async function replicateEvent(deps: Deps, ev: ObjectEvent): Promise<ReplicationOutcome> {
  return ev.kind === 'created' ? replicateWrite(deps, ev) : replicateDelete(deps, ev);
}

/** Attempts per event inside one invocation, before Lambda's own async retries take over. */
export const ATTEMPTS = 3;

export interface NotificationOptions {
  /** Records that cannot be acted on (logged by the caller, never retried). */
  onRejected?: (r: RejectedRecord) => void;
  /** The pause before in-process attempt `n` (2, 3, …). Default: 200 ms × 2^n. */
  pause?: (attempt: number) => Promise<void>;
  /** Attempts per event before throwing. Default: ATTEMPTS. */
  attempts?: number;
}

/**
 * Handles an S3 notification (one Lambda invocation): each event is replicated, retried in
 * process a few times while some store fails; then this throws, so that Lambda retries the
 * invocation and finally hands it to the on-failure destination (lib/failures.ts).
 */
export async function replicateNotification(deps: Deps, notification: unknown, opts: NotificationOptions = {}): Promise<ReplicationOutcome[]> {
  const { events, rejected } = parseS3Event(notification, deps.stores, deps.flavor);
  for (const r of rejected) opts.onRejected?.(r);
  const pause = opts.pause ?? ((n: number) => new Promise<void>((r) => setTimeout(r, 200 * 2 ** n)));
  const outcomes: ReplicationOutcome[] = [];
  const once = async (ev: ObjectEvent): Promise<ReplicationOutcome> => {
    try {
      return await replicateEvent(deps, ev);
    } catch (err) {
      // The control bucket, or a store outside any one step, did not answer: try again.
      if (err instanceof StoreUnavailableError || err instanceof ObjectChangedError) return { ...nothing(), failed: [err.store] };
      throw err;
    }
  };
  for (const ev of events) {
    let outcome = await once(ev);
    for (let attempt = 2; outcome.failed.length > 0 && attempt <= (opts.attempts ?? ATTEMPTS); attempt++) {
      await pause(attempt);
      outcome = await once(ev);
    }
    if (outcome.failed.length > 0) {
      throw new Error(`replication of ${ev.key} from ${ev.store.name} failed for ${outcome.failed.join(', ')}`);
    }
    outcomes.push(outcome);
  }
  return outcomes;
}

const nothing = (): ReplicationOutcome => ({ copied: [], deleted: [], held: [], waiting: [], failed: [] });

async function replicateWrite(deps: Deps, ev: ObjectEvent): Promise<ReplicationOutcome> {
  // Every store, the tombstone and the locks in one round: the event's own store is in it.
  const view = await observeKey(deps, ev.key);
  if (view.unavailable.includes(ev.store.name)) return { ...nothing(), failed: [ev.store.name] };
  const head = view.copies.get(ev.store.name);
  if (!head) return nothing(); // gone since: whatever removed it has its own event
  if (!needsStamp(ev, head)) {
    // Not stamped, and this event cannot say when it was made: its own event will.
    if (!head.stamp) return nothing();
    return settleFrom(deps, ev, head, view);
  }
  const adoption = adoptionFor(ev, head);
  const stampedView = withCopy(view, ev.store.name, adoption.head);
  if (stampsAlongside(stampedView, ev, head)) {
    const [out] = await settledBoth(
      settleFrom(deps, ev, adoption.head, stampedView),
      stampInPlace(deps, ev, head, adoption).then((stamped) => stamped?.journalled),
    );
    return out;
  }
  const stamped = await stampInPlace(deps, ev, head, adoption);
  if (!stamped) return nothing();
  const [out] = await settledBoth(settleFrom(deps, ev, stamped.head, withCopy(view, ev.store.name, stamped.head)), stamped.journalled);
  return out;
}

/** Settles the key from `view`, filling stores that lack it only with `trigger`'s own write, from its original. */
async function settleFrom(deps: Deps, ev: ObjectEvent, trigger: ObjectHead, view: KeyView): Promise<ReplicationOutcome> {
  const fill = fillWith(trigger);
  const { view: _v, plan: _p, stale: _s, heldAs: _h, ...out } = await settleKey(deps, ev.key, { by: 'replicate', fill, view });
  return out;
}

/** A copy's event never fills a gap (the store may have lost it to a delete on its way). */
const fillWith = (trigger: ObjectHead) => (winner: ObjectHead) => winner.stamp!.id === trigger.stamp!.id && !isReplica(trigger);

const withCopy = (view: KeyView, store: string, head: ObjectHead): KeyView => ({ ...view, copies: new Map(view.copies).set(store, head) });

/**
 * Whether stamping the event's store can run alongside settling, instead of before it: one
 * request fewer on the way to the other stores. Stamping rewrites only this store's copy, in
 * place, keeping its bytes and (an MD5) ETag; copies to other stores read those bytes, on
 * the same ETag, and write the stamped metadata themselves. So when settling leaves this store's
 * copy alone, either order ends the same: and if the version is replaced meanwhile, both are
 * refused, or the copies came first (as if the replacing write came after the stamp). A step on
 * this store itself (a copy over it, a delete), or an ETag that the stamp may change (multipart,
 * or no MD5 under KMS or a customer key), waits for the stamp.
 */
function stampsAlongside(stampedView: KeyView, ev: ObjectEvent, head: ObjectHead): boolean {
  if (isMultipartEtag(head.etag) || !head.etagIsMd5) return false;
  const plan = planKey(stampedView, fillWith(stampedView.copies.get(ev.store.name)!));
  return plan.steps.every((s) => (s.op === 'copy' ? s.to !== ev.store.name : s.op === 'delete' ? s.store !== ev.store.name : true));
}

/** Both results once both are done (neither left running), or the first error. */
async function settledBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

/**
 * Whether this event stamps `head`: the version has no stamp, or one taken from an earlier event
 * of the same bytes on this store (the same content written twice, the first event late; not
 * when the later write was itself a copy), and
 * the event is provably about these bytes (its ETag). An event without an ETag, or of other
 * bytes, is about a version replaced since, and must not date this one.
 */
function needsStamp(ev: ObjectEvent, head: ObjectHead): boolean {
  if (ev.etag === undefined || bareEtag(ev.etag) !== bareEtag(head.etag)) return false;
  // Written in a later second than this event (S3's LastModified, its own clock, to the
  // second): the same bytes written again since, whose own event dates them.
  if (head.lastModifiedMs > ev.time) return false;
  if (!head.stamp) return true;
  // A stamp in place is a copy onto itself: its own Copy event comes later, and must not
  // stamp it again (it would forever); the same bytes written again come as a Put or an upload.
  const by = head.metadata[META.seq];
  return by !== undefined && !isReplica(head) && ev.name !== 'ObjectCreated:Copy' && compareSequencers(ev.seq, by) > 0;
}

interface Adoption {
  /** The version as it is once stamped (its ETag, unless the stamp changes it). */
  head: ObjectHead;
  clampedFrom?: number;
  /**
   * Its journal entry's time: a millisecond before adoption began, so that the entry sorts
   * before those of the copies made alongside the stamp, whichever is written first.
   */
  at: number;
}

/**
 * The stamp for a version written without our metadata: made at the event's time, with an
 * identity derived from the event so that a duplicate delivery stamps it identically.
 */
function adoptionFor(ev: ObjectEvent, head: ObjectHead): Adoption {
  const id = createHash('sha256').update(`${ev.store.bucket}\n${ev.key}\n${ev.seq}\n${head.etag}`).digest('hex').slice(0, 24);
  const a = adoptionOf({ [META.id]: id, ...head.metadata, [META.seq]: ev.seq }, ev.time, ev.store.name);
  const stamped: ObjectHead = { ...head, metadata: a.metadata, stamp: a.stamp, mtimeMs: a.mtimeMs };
  return { head: stamped, at: Date.now() - 1, ...(a.clampedFrom !== undefined ? { clampedFrom: a.clampedFrom } : {}) };
}

/**
 * Stamps the version in place (a copy onto itself that only replaces metadata), conditional on
 * its ETag. Returns the stamped head (from the copy's answer: no second HEAD) and the journal
 * entry being written meanwhile, or null when the version was replaced meanwhile (the newer
 * write's own event handles it).
 */
async function stampInPlace(deps: Deps, ev: ObjectEvent, head: ObjectHead, adoption: Adoption): Promise<{ head: ObjectHead; journalled: Promise<unknown> } | null> {
  let etag: string;
  try {
    etag = await copyObject(ev.store, ev.store, ev.key, head, adoption.head.metadata, { ifMatch: head.etag });
  } catch (err) {
    if (err instanceof ObjectChangedError) return null;
    throw err;
  }
  const clamp = adoption.clampedFrom !== undefined ? `; its mtime ${new Date(adoption.clampedFrom).toISOString()} was more than 5 minutes ahead, clamped to when it was made` : '';
  const journalled = appendEvent(deps, {
    action: 'adopt',
    key: ev.key,
    who: adoption.head.stamp!.who,
    from: ev.store.name,
    reason: `written into ${ev.store.name} without dfs: made ${new Date(ev.time).toISOString()}${clamp}`,
    time: adoption.at,
  });
  // A multipart upload's ETag changes with the copy; the copy answers the new one.
  return { head: { ...adoption.head, etag: etag || head.etag }, journalled };
}

/**
 * Whether the system or a user made the request behind `ev`, when S3 named the requester and the
 * system's principals are known. A role session's principal is `AWS:<role id>:<session>`.
 */
export function requesterOf(deps: Pick<Deps, 'systemPrincipals'>, ev: Pick<ObjectEvent, 'principal'>): Requester | undefined {
  const system = deps.systemPrincipals ?? [];
  if (system.length === 0 || ev.principal === undefined) return undefined;
  return system.some((p) => ev.principal === p || ev.principal!.startsWith(`${p}:`)) ? 'system' : 'user';
}

async function replicateDelete(deps: Deps, ev: ObjectEvent): Promise<ReplicationOutcome> {
  let kind: DeleteKind = 'real';
  let realDelete = false;
  const tombstone = await updateTombstone(deps, ev.key, (t) => {
    const r = classifyDelete(t, ev.key, ev.store.name, ev.seq, ev.time, requesterOf(deps, ev));
    kind = r.kind;
    realDelete = r.realDelete;
    return r.tombstone === t ? undefined : r.tombstone;
  });
  if (!realDelete) return { ...nothing(), deleteKind: kind };
  if (kind === 'real') {
    await appendEvent(deps, { action: 'deleted', key: ev.key, who: `${ev.store.name} (direct)`, from: ev.store.name, reason: `deleted on ${ev.store.name} at ${new Date(ev.time).toISOString()}` });
  } else {
    // This event was our own delete's echo, and the one that took its place a user's delete.
    await appendEvent(deps, { action: 'deleted', key: ev.key, who: `${ev.store.name} (direct)`, from: ev.store.name, reason: `an earlier event on ${ev.store.name} turned out to be a user's delete, not ours` });
  }
  const { view: _v, plan: _p, stale: _s, heldAs: _h, ...out } = await settleKey(deps, ev.key, { by: 'replicate', fill: () => false, known: { tombstone: tombstone ?? null } });
  return { ...out, deleteKind: kind };
}
