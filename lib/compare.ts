import type { Readable } from 'node:stream';
import { firstDifferences, type Side } from './bytecompare';
import type { Deps } from './deps';
import { ConflictError, ObjectChangedError, StoreUnavailableError } from './errors';
import { getRange, isMultipartEtag, openPinned, storeNamed, type ObjectHead, type Store } from './stores';

/**
 * Whether two copies hold the same bytes, and the evidence for it. Every "different" carries
 * its reason in rclone's words, e.g. `Sizes differ (server1 10 vs server2 12)`.
 */
export type Verdict = { same: true; by: 'size' | 'etag' | 'checksum' | 'bytes' } | { same: false; reason: string };

/**
 * The cheap part of the equality rule: HEAD fields only, no body. Returns `undefined` when
 * they cannot decide, which happens when multipart ETags (they depend on the part size) or
 * non-MD5 ETags meet and no full-object checksum of a common algorithm is there.
 */
export function cheapVerdict(a: ObjectHead, b: ObjectHead): Verdict | undefined {
  if (a.size !== b.size) return { same: false, reason: `Sizes differ (${a.store} ${a.size} vs ${b.store} ${b.size})` };
  if (a.size === 0) return { same: true, by: 'size' };
  if (a.etagIsMd5 && b.etagIsMd5 && !isMultipartEtag(a.etag) && !isMultipartEtag(b.etag)) {
    return a.etag === b.etag
      ? { same: true, by: 'etag' }
      : { same: false, reason: `MD5s differ (${a.store} ${a.etag} vs ${b.store} ${b.etag})` };
  }
  for (const alg of Object.keys(a.checksums) as (keyof ObjectHead['checksums'])[]) {
    const x = a.checksums[alg];
    const y = b.checksums[alg];
    if (x && y) {
      return x === y ? { same: true, by: 'checksum' } : { same: false, reason: `${alg} checksums differ (${a.store} ${x} vs ${b.store} ${y})` };
    }
  }
  return undefined;
}

/**
 * The object changed between its HEAD and the read of its body (412 on If-Match): the caller
 * looks again. Seen by a client (409) only when the object keeps changing under every look.
 */
export class ChangedWhileReadingError extends ConflictError {
  constructor(readonly store: string) {
    super(`the object changed on ${store} while it was being read; try again`);
  }
}

/**
 * Reads the whole copy described by `head`, pinned to its ETag so that a copy replaced meanwhile
 * is noticed instead of read half old, half new. Throws ChangedWhileReadingError for a replaced
 * or deleted copy, StoreUnavailableError otherwise.
 */
export async function getBytes(deps: Pick<Deps, 'meter'>, store: Store, key: string, head: ObjectHead): Promise<Buffer> {
  try {
    const bytes = await getRange(store, key, head.etag);
    if (deps.meter) deps.meter.bodyBytes += bytes.length;
    return bytes;
  } catch (err) {
    if (err instanceof ObjectChangedError) throw new ChangedWhileReadingError(store.name);
    throw err;
  }
}

/**
 * GETs the copy `head` describes, pinned to its ETag, and checks the answer is that copy (a
 * store that ignores If-Match would otherwise serve whatever it holds now). Throws
 * ChangedWhileReadingError for a replaced or deleted copy, StoreUnavailableError otherwise.
 * The side it returns fails with StoreUnavailableError too: a body that breaks off, or is
 * shorter or longer than the copy, is a store failing, never a difference.
 */
async function openBody(deps: Pick<Deps, 'meter'>, store: Store, key: string, head: ObjectHead): Promise<Side & { stream: Readable }> {
  let opened: Awaited<ReturnType<typeof openPinned>>;
  try {
    opened = await openPinned(store, key, head.etag);
  } catch (err) {
    if (err instanceof ObjectChangedError) throw new ChangedWhileReadingError(store.name);
    throw err;
  }
  const { body } = opened;
  if ((opened.etag !== undefined && opened.etag !== head.etag) || (opened.length !== undefined && opened.length !== head.size)) {
    body.destroy();
    throw new ChangedWhileReadingError(store.name);
  }
  const meter = deps.meter;
  return {
    stream: body,
    length: head.size,
    fail: (err) => new StoreUnavailableError(store.name, { cause: err }),
    ...(meter ? { onPiece: (n: number) => void (meter.bodyBytes += n) } : {}),
  };
}

/** Opens every copy at once; if one cannot be opened, those that were are closed and its error thrown. */
async function openAll(deps: Pick<Deps, 'stores' | 'meter'>, key: string, heads: ObjectHead[]): Promise<(Side & { stream: Readable })[]> {
  const settled = await Promise.allSettled(heads.map((h) => openBody(deps, storeNamed(deps.stores, h.store), key, h)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    for (const s of settled) if (s.status === 'fulfilled') s.value.stream.destroy();
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<Side & { stream: Readable }>).value);
}

/**
 * Compares `rep` byte for byte with each of `others` (all of its size), streaming every body
 * once through a single pinned GET: each copy is read at most once whatever the number of
 * copies, a copy is closed at its first differing byte, and all stop as soon as none is left
 * to compare. Memory is the pieces in hand, whatever the size. `repBytes`, when given, stands
 * for rep's body (already read) and rep is not read again.
 *
 * Throws ChangedWhileReadingError when a copy was replaced or deleted after its HEAD, and
 * StoreUnavailableError naming the store that failed (also midway): never "different".
 */
export async function compareMany(
  deps: Pick<Deps, 'stores' | 'meter'>,
  key: string,
  rep: ObjectHead,
  others: ObjectHead[],
  repBytes?: Buffer,
): Promise<Verdict[]> {
  const bodies = await openAll(deps, key, repBytes ? others : [rep, ...others]);
  const sides: Side[] = repBytes ? [{ bytes: repBytes }, ...bodies] : bodies;
  try {
    return verdictsOf(rep, others, await firstDifferences(sides));
  } finally {
    for (const b of bodies) b.stream.destroy();
  }
}

const verdictsOf = (rep: ObjectHead, others: ObjectHead[], offsets: (number | undefined)[]): Verdict[] =>
  offsets.map((d, i) => (d === undefined ? { same: true, by: 'bytes' } : { same: false, reason: `Contents differ (${rep.store} vs ${others[i]!.store}, from byte ${d})` }));

/**
 * Compares two same-size copies byte for byte (compareMany with one other); see there.
 */
export async function compareBytes(deps: Pick<Deps, 'stores' | 'meter'>, key: string, a: ObjectHead, b: ObjectHead, aBytes?: Buffer): Promise<Verdict> {
  const [v] = await compareMany(deps, key, a, [b], aBytes);
  return v!;
}

/** Copies holding the same bytes; `heads[0]` is the representative the others were compared with. */
export interface ContentGroup {
  heads: ObjectHead[];
}

export interface GroupOptions {
  /** Whole bodies already read, by store (the read's speculative GET); bodies read whole here are added. */
  bodies?: Map<string, Buffer>;
  /**
   * Whether copies of this size are read whole rather than streamed: when their bytes go into
   * the answer anyway, a copy read whole to compare it is not read again for the answer.
   */
  keepWhole?: (size: number) => boolean;
}

/**
 * Partitions the copies of one key by content, cheapest evidence first and bytes only when
 * HEAD fields cannot decide. Each round takes the first copy not yet placed and compares it
 * with all the undecided others in one pass (compareMany), so copies of one version are read
 * once each; a body in `bodies` is not read again. A store that fails during a byte compare
 * throws StoreUnavailableError; the caller drops it and groups again.
 */
export async function groupByContent(
  deps: Pick<Deps, 'stores' | 'meter'>,
  key: string,
  heads: ObjectHead[],
  opts: GroupOptions = {},
): Promise<ContentGroup[]> {
  const bodies = opts.bodies ?? new Map<string, Buffer>();
  const groups: ContentGroup[] = [];
  let pending = heads;
  while (pending.length > 0) {
    const [rep, ...rest] = pending as [ObjectHead, ...ObjectHead[]];
    const verdicts = rest.map((h) => cheapVerdict(rep, h));
    const undecided = rest.filter((_, i) => verdicts[i] === undefined);
    if (undecided.length > 0) {
      const byBytes = opts.keepWhole?.(rep.size)
        ? await compareWhole(deps, key, rep, undecided, bodies)
        : await compareMany(deps, key, rep, undecided, bodies.get(rep.store));
      undecided.forEach((h, j) => (verdicts[rest.indexOf(h)] = byBytes[j]));
    }
    groups.push({ heads: [rep, ...rest.filter((_, i) => verdicts[i]!.same)] });
    pending = rest.filter((_, i) => !verdicts[i]!.same);
  }
  return groups;
}

/** Compares copies read whole (those not in `bodies` are read, once, and added to it). */
async function compareWhole(deps: Pick<Deps, 'stores' | 'meter'>, key: string, rep: ObjectHead, others: ObjectHead[], bodies: Map<string, Buffer>): Promise<Verdict[]> {
  const missing = [rep, ...others].filter((h) => !bodies.has(h.store));
  const read = await Promise.allSettled(missing.map((h) => getBytes(deps, storeNamed(deps.stores, h.store), key, h)));
  read.forEach((r, i) => r.status === 'fulfilled' && bodies.set(missing[i]!.store, r.value));
  const failed = read.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const offsets = await firstDifferences([rep, ...others].map((h) => ({ bytes: bodies.get(h.store)! })));
  return verdictsOf(rep, others, offsets);
}
