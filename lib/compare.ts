import type { Deps } from './deps';
import { ConflictError, ObjectChangedError } from './errors';
import { getRange, isMultipartEtag, storeNamed, type ObjectHead, type Store } from './stores';

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
 * The object changed between its HEAD and a ranged read (412 on If-Match): the caller looks
 * again. Seen by a client (409) only when the object keeps changing under every look.
 */
export class ChangedWhileReadingError extends ConflictError {
  constructor(readonly store: string) {
    super(`the object changed on ${store} while it was being read; try again`);
  }
}

/**
 * Reads the copy described by `head` (all of it, or `range` = [start, end] inclusive), pinned
 * to its ETag so that a copy replaced meanwhile is noticed instead of read half old, half new.
 * Throws ChangedWhileReadingError for a replaced or deleted copy, StoreUnavailableError otherwise.
 */
export async function getBytes(
  deps: Pick<Deps, 'meter'>,
  store: Store,
  key: string,
  head: ObjectHead,
  range?: [number, number],
  signal?: AbortSignal,
  into?: Buffer,
): Promise<Buffer> {
  try {
    const bytes = await getRange(store, key, head.etag, { ...(range ? { range } : {}), ...(signal ? { signal } : {}), ...(into ? { into } : {}) });
    if (deps.meter) deps.meter.bodyBytes += bytes.length;
    return bytes;
  } catch (err) {
    if (err instanceof ObjectChangedError) throw new ChangedWhileReadingError(store.name);
    throw err;
  }
}

/** Ranged reads kept in flight per side, so the network stays busy while we compare. */
const PIPELINE_DEPTH = 3;

/**
 * Compares two same-size copies byte for byte in ranged chunks, stopping at the first chunk
 * that differs. PIPELINE_DEPTH chunk buffers per side are allocated once and reused, so memory
 * is fixed whatever the file size; outstanding reads are aborted as soon as an answer is known.
 */
export async function compareBytes(
  deps: Pick<Deps, 'stores' | 'compareChunkBytes' | 'meter'>,
  key: string,
  a: ObjectHead,
  b: ObjectHead,
): Promise<Verdict> {
  const storeA = storeNamed(deps.stores, a.store);
  const storeB = storeNamed(deps.stores, b.store);
  const chunk = deps.compareChunkBytes;
  const size = a.size;
  const abort = new AbortController();
  // Chunk n goes into slot n % PIPELINE_DEPTH: when it is requested, the chunk that last used
  // the slot (n - PIPELINE_DEPTH) has been compared already.
  const slotSize = Math.min(chunk, size);
  const slots = Array.from({ length: Math.min(PIPELINE_DEPTH, Math.ceil(size / chunk)) }, () => [
    Buffer.allocUnsafe(slotSize),
    Buffer.allocUnsafe(slotSize),
  ]);
  const fetchPair = (start: number) => {
    const end = Math.min(start + chunk, size) - 1;
    const [intoA, intoB] = slots[(start / chunk) % slots.length]!;
    const pair = Promise.all([
      getBytes(deps, storeA, key, a, [start, end], abort.signal, intoA),
      getBytes(deps, storeB, key, b, [start, end], abort.signal, intoB),
    ]);
    pair.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
    return pair;
  };
  const inFlight: Promise<[Buffer, Buffer]>[] = [];
  let next = 0;
  const fill = () => {
    while (inFlight.length < PIPELINE_DEPTH && next < size) {
      inFlight.push(fetchPair(next));
      next += chunk;
    }
  };
  try {
    for (let offset = 0; offset < size; offset += chunk) {
      fill();
      const [x, y] = await inFlight.shift()!;
      if (!x.equals(y) || x.length !== Math.min(chunk, size - offset)) {
        return { same: false, reason: `Contents differ (${a.store} vs ${b.store}, from byte ${offset + firstDifference(x, y)})` };
      }
    }
    return { same: true, by: 'bytes' };
  } finally {
    abort.abort();
  }
}

function firstDifference(x: Buffer, y: Buffer): number {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return i;
  return n;
}


/** Copies holding the same bytes; `heads[0]` is the representative the others were compared with. */
export interface ContentGroup {
  heads: ObjectHead[];
}

/**
 * Partitions the copies of one key by content, cheapest evidence first and a streamed byte
 * compare only when HEAD fields cannot decide. A store that fails during a byte compare
 * throws StoreUnavailableError; the caller drops it and groups again.
 */
export async function groupByContent(
  deps: Pick<Deps, 'stores' | 'compareChunkBytes' | 'meter'>,
  key: string,
  heads: ObjectHead[],
): Promise<ContentGroup[]> {
  const groups: ContentGroup[] = [];
  for (const head of heads) {
    let home: ContentGroup | undefined;
    for (const g of groups) {
      const rep = g.heads[0]!;
      const verdict = cheapVerdict(rep, head) ?? (await compareBytes(deps, key, rep, head));
      if (verdict.same) {
        home = g;
        break;
      }
    }
    if (home) home.heads.push(head);
    else groups.push({ heads: [head] });
  }
  return groups;
}
