import type { Deps } from './deps';
import { listRecords, readRecord, updateRecord, UNCHANGED, UPDATE_ATTEMPTS } from './control';
import { newWriteId } from './stamps';

/*
 * A tombstone says "KEY was last deleted at deletedAt (ms)": every version made at or before
 * that time is dead wherever it is, and a version made after it lives. (A key never deleted may
 * have one with deletedAt 0, to say versions of it were kept: see lib/settle.ts.) One record per key in
 * the control bucket, changed only by conditional read-modify-write (lib/control.ts), so
 * concurrent handlers merge (the latest delete wins) and never overwrite one another.
 *
 * Whether a delete event is the system's own (an echo: nothing to do) or a user's (its time
 * joins deletedAt) is told first by who made it: S3 names the requester in every event, and the
 * system's requests carry its own principals (lib/config.ts systemPrincipals; a role per
 * function deployed, the local stack's own access key on s3rver). That is exact whatever the
 * delivery order, and whether or not a call of ours got its answer.
 *
 * It also holds the *intents* of the deletes the system makes itself: one pending delete per
 * store and key, each consumed by its echo's sequencer. Where events name no requester (tests,
 * stores that omit it) the intents alone tell echoes from users' deletes:
 *
 *   settle: V on server2 is dead   → intent {server2, ETag(V), at: t}      (before deleting; only
 *                                     when no other delete of ours is pending on server2)
 *                                   → DeleteObject server2/K If-Match ETag(V)
 *   event: ObjectRemoved server2/K, sequencer q, time te
 *          an intent on server2 bound to q        → a duplicate of our echo: nothing
 *          an unbound intent on server2, t ≤ te   → bind it to q: our echo, nothing else
 *          one bound to q' > q, t ≤ te            → q is ours (a store's events on a key are
 *          (q' not named the system's by S3)        ordered by sequencer and our delete came
 *                                                   first); rebind to q, and q' is a user's
 *                                                   delete after all: its time joins deletedAt
 *          otherwise                              → a user's delete at te: deletedAt ≥ te
 *   our delete refused at once (412/404)          → intent failed; an event bound to it was a
 *                                                   user's: its time joins deletedAt
 *
 * An intent can only be consumed by an event dated between t - CLOCK_SKEW_MS and the moment our
 * delete call returned (+ CLOCK_SKEW_MS; t + INTENT_WINDOW_MS while it has not, the longest the
 * SDK tries): S3 did our delete, if at all, within that time, so an event outside it is
 * certainly not ours (S3's and the Lambda's clocks differ by far less than CLOCK_SKEW_MS). Until
 * the call returns no other delete of ours starts on that store, so windows never overlap. Intents are kept INTENT_KEEP_MS, longer than an event can be
 * delivered or replayed from the failure queue, so a late duplicate finds the intent it consumed.
 */

export interface DeleteIntent {
  id: string;
  store: string;
  /** The version the system deletes on that store. */
  etag: string;
  /** When the intent was recorded, ms. */
  at: number;
  /**
   * When our delete call returned, done or not, plus CLOCK_SKEW_MS: S3 processed it, if at all,
   * before then, so its echo has an earlier time. Unset while the call is in flight (or its
   * process died): then at + INTENT_WINDOW_MS bounds it.
   */
  until?: number;
  /** S3 refused the delete: no event of ours will come. */
  failed?: true;
  /** The delete event taken for this delete's echo; `system` when S3 named the system as its requester. */
  event?: { seq: string; time: number; system?: true };
}

export interface Tombstone {
  key: string;
  /** The latest delete of the key, ms: the API's clock, or S3's event time for a direct delete. */
  deletedAt: number;
  who: string;
  intents: DeleteIntent[];
  /** Versions of the key were kept in the control bucket (lib/settle.ts): look for them. */
  kept?: true;
}

export const CLOCK_SKEW_MS = 1000;
export const INTENT_WINDOW_MS = 5 * 60_000;
// Longer than the failure queue keeps an event (14 days): a replayed echo still finds its intent.
export const INTENT_KEEP_MS = 15 * 86_400_000;

const PREFIX = 'tombstones/';
export const tombstoneKey = (key: string) => PREFIX + key;

/** True when a version made at `madeMs` is dead under tombstone `t`: made at or before its delete. */
export const isDeadUnder = (t: Pick<Tombstone, 'deletedAt'> | undefined, madeMs: number) => t !== undefined && madeMs <= t.deletedAt;

/** S3 sequencers are hex strings of varying length: the shorter is padded with zeros on the left. */
export function compareSequencers(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  const x = a.toUpperCase().padStart(n, '0');
  const y = b.toUpperCase().padStart(n, '0');
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Reads tombstones of older releases (`time`, `echoes`) as today's. */
function normalise(raw: Tombstone | (Omit<Tombstone, 'deletedAt' | 'intents'> & { time: number }) | undefined): Tombstone | undefined {
  if (!raw) return undefined;
  if ('deletedAt' in raw) return { ...raw, intents: raw.intents ?? [] };
  return { key: raw.key, deletedAt: raw.time, who: raw.who, intents: [] };
}

/** `t` with a delete at `time` by `who` merged in: the later delete wins. Pure. */
export function recordDelete(t: Tombstone | undefined, key: string, time: number, who: string): Tombstone {
  if (!t) return { key, deletedAt: time, who, intents: [] };
  return time > t.deletedAt ? { ...t, deletedAt: time, who } : t;
}

/** Drops intents older than INTENT_KEEP_MS. Pure. */
export function prune(t: Tombstone, now: number): Tombstone {
  const intents = t.intents.filter((i) => i.at >= now - INTENT_KEEP_MS);
  return intents.length === t.intents.length ? t : { ...t, intents };
}

/**
 * `t` with intents to delete `targets`, each recorded only when its store has no delete of the
 * system's pending there (an intent neither failed nor consumed by its echo, younger than
 * INTENT_WINDOW_MS): one pending delete per store and key at a time, so its echo is the one
 * delete event it can be. Each target brings the id its intent gets; `ids[i]` is undefined for a
 * target refused that way: its settler tries again later, when the pending delete has been seen
 * through. Pure, and the same again when retried on a tombstone that already holds our intents.
 */
export function addIntents(
  t: Tombstone,
  targets: { store: string; etag: string; id: string }[],
  now: number,
): { tombstone: Tombstone; ids: (string | undefined)[] } {
  // A target whose intent is there already is ours: our own write of it went through, though
  // its answer was lost, and this is the read-modify-write trying again.
  const ours = (x: { id: string }) => t.intents.some((i) => i.id === x.id);
  const pending = (store: string) => t.intents.some((i) => i.store === store && !i.failed && !i.event && now <= lastEchoTime(i));
  const ids = targets.map((x) => (ours(x) || !pending(x.store) ? x.id : undefined));
  const added = targets.flatMap((x, n) => (ids[n] && !ours(x) ? [{ id: x.id, store: x.store, etag: x.etag, at: now }] : []));
  return { tombstone: prune({ ...t, intents: [...t.intents, ...added] }, now), ids };
}

/** The latest S3 time the echo of intent `i` can carry. */
const lastEchoTime = (i: DeleteIntent) => i.until ?? i.at + INTENT_WINDOW_MS;

/**
 * `t` with intent `id`'s delete call over at `ended` (done, or failed without knowing whether S3
 * did it): its echo, if any, is dated before ended + CLOCK_SKEW_MS. Pure.
 */
export function closeIntent(t: Tombstone, id: string, ended: number): Tombstone {
  const until = ended + CLOCK_SKEW_MS;
  if (!t.intents.some((i) => i.id === id && i.until === undefined)) return t;
  return { ...t, intents: t.intents.map((i) => (i.id === id ? { ...i, until } : i)) };
}

/**
 * `t` after the system's delete behind intent `id` was refused: the intent fails, and a delete
 * event it had consumed was a user's delete, whose time now counts. Pure.
 */
export function failIntent(t: Tombstone, id: string, store: string): { tombstone: Tombstone; realDelete: boolean } {
  const intent = t.intents.find((i) => i.id === id);
  if (!intent || intent.failed) return { tombstone: t, realDelete: false };
  const intents = t.intents.map((i) => (i.id === id ? { ...i, failed: true as const } : i));
  const failed = { ...t, intents };
  if (!intent.event || intent.event.system) return { tombstone: failed, realDelete: false };
  return { tombstone: recordDelete(failed, t.key, intent.event.time, `${store} (direct)`), realDelete: true };
}

export type DeleteKind = 'echo' | 'real';

/** Who S3 says made a delete, when it says so and the system's principals are known. */
export type Requester = 'system' | 'user';

/**
 * Decides whether a delete event on `store` (sequencer `seq`, S3 time `time`, made by `by` when
 * S3 said who) is the echo of a delete the system made, or a user's delete; see the timeline at
 * the top. Returns the tombstone to store and whether a user's delete now counts that did not
 * before. Pure.
 */
export function classifyDelete(
  t: Tombstone | undefined,
  key: string,
  store: string,
  seq: string,
  time: number,
  by?: Requester,
): { tombstone: Tombstone | undefined; kind: DeleteKind; realDelete: boolean } {
  const who = `${store} (direct)`;
  const intents = t?.intents ?? [];
  if (intents.some((i) => i.store === store && i.event?.seq === seq)) return { tombstone: t!, kind: 'echo', realDelete: false };
  // A user's delete never takes an intent, however well its time fits one.
  if (by === 'user') return { tombstone: recordDelete(t, key, time, who), kind: 'real', realDelete: true };
  const fits = (i: DeleteIntent) => i.store === store && !i.failed && i.at - CLOCK_SKEW_MS <= time && time <= lastEchoTime(i);
  const bind = (target: DeleteIntent) => intents.map((i) => (i === target ? { ...i, event: { seq, time, ...(by === 'system' ? { system: true as const } : {}) } } : i));
  const free = intents.find((i) => fits(i) && !i.event);
  if (free) return { tombstone: { ...t!, intents: bind(free) }, kind: 'echo', realDelete: false };
  if (by === 'system') {
    // Ours for certain: it consumes the oldest intent still waiting on that store, if one is
    // (its window misjudged), so that the next delete of ours there is not held back by it.
    const waiting = intents.find((i) => i.store === store && !i.failed && !i.event);
    return { tombstone: waiting ? { ...t!, intents: bind(waiting) } : t, kind: 'echo', realDelete: false };
  }
  // An echo S3 said was ours is never displaced: only an event taken by the windows alone can be.
  const later = intents.find((i) => fits(i) && i.event && !i.event.system && compareSequencers(seq, i.event.seq) < 0);
  if (later) {
    const displaced = later.event!;
    const rebound = { ...t!, intents: bind(later) };
    return { tombstone: recordDelete(rebound, key, displaced.time, who), kind: 'echo', realDelete: true };
  }
  return { tombstone: recordDelete(t, key, time, who), kind: 'real', realDelete: true };
}

/** The tombstone of `key`, or undefined when it was never deleted. */
export async function readTombstone(deps: Pick<Deps, 'control'>, key: string): Promise<Tombstone | undefined> {
  return normalise((await readRecord<Tombstone>(deps.control, tombstoneKey(key)))?.value);
}

/**
 * Read-modify-write of `key`'s tombstone (lib/control.ts updateRecord): `change` gets the current
 * one and returns the next, or undefined to leave it. Returns what is stored afterwards.
 */
export async function updateTombstone(
  deps: Pick<Deps, 'control'>,
  key: string,
  change: (t: Tombstone | undefined) => Tombstone | undefined,
  opts: { attempts?: number } = {},
): Promise<Tombstone | undefined> {
  const stored = await updateRecord<Tombstone>(
    deps.control,
    tombstoneKey(key),
    (raw) => {
      const next = change(normalise(raw));
      return next === undefined ? UNCHANGED : next;
    },
    opts,
  );
  return normalise(stored);
}

/** Conditional writes the end of our delete calls may lose before giving up: three times the usual. */
export const CALLS_ENDED_ATTEMPTS = 3 * UPDATE_ATTEMPTS;

/**
 * Writes how the system's delete calls ended (closeIntent, failIntent) into `key`'s tombstone.
 * Until it lands, each intent holds back every later delete of ours on its store for
 * INTENT_WINDOW_MS, reconcile's included (soak seed 41069: a close lost 20 writes in a row to
 * the handlers of the very echoes it waited for). So it is tried harder than other updates; it
 * only adds `until` or `failed`, so any order of retries gives the same tombstone.
 */
export function recordCallsEnded(deps: Pick<Deps, 'control'>, key: string, change: (t: Tombstone) => Tombstone): Promise<Tombstone | undefined> {
  const ended = (t: Tombstone) => {
    const next = change(t);
    return next === t ? undefined : next;
  };
  return updateTombstone(deps, key, (t) => (t ? ended(t) : undefined), { attempts: CALLS_ENDED_ATTEMPTS });
}

/**
 * Keys that have a tombstone, in S3's key order, from after `after`: reconcile walks them beside
 * the stores' listings instead of loading them all.
 */
export async function* listTombstones(deps: Pick<Deps, 'control'>, after?: string): AsyncGenerator<string> {
  for await (const r of listRecords(deps.control, PREFIX, after ? { startAfter: tombstoneKey(after) } : {})) yield r.key.slice(PREFIX.length);
}
