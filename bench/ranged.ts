/**
 * The ranged byte compare lib/compare used before issue 11 (until 2026-12-01), kept here to
 * measure the streamed compare against it (bench/children/compare.ts, `ranged` mode): both
 * copies read in `compareChunkBytes` ranges, PIPELINE_DEPTH pairs in flight, each range pinned
 * to its ETag, into buffers reused per slot; a chunk is compared once whole on both sides.
 */
import { mismatch } from '../lib/bytecompare';
import { ChangedWhileReadingError, type Verdict } from '../lib/compare';
import type { Deps } from '../lib/deps';
import { ObjectChangedError } from '../lib/errors';
import { getRange, storeNamed, type ObjectHead, type Store } from '../lib/stores';

const PIPELINE_DEPTH = 3;

/** One range of a copy, pinned to its ETag, into `into`; metered. */
async function getBytes(deps: Pick<Deps, 'meter'>, store: Store, key: string, head: ObjectHead, range: [number, number], signal: AbortSignal, into: Buffer): Promise<Buffer> {
  try {
    const bytes = await getRange(store, key, head.etag, { range, signal, into });
    if (deps.meter) deps.meter.bodyBytes += bytes.length;
    return bytes;
  } catch (err) {
    if (err instanceof ObjectChangedError) throw new ChangedWhileReadingError(store.name);
    throw err;
  }
}

export async function compareRanges(
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
    const [intoA, intoB] = slots[(start / chunk) % slots.length] as [Buffer, Buffer];
    const pair = Promise.all([
      getBytes(deps, storeA, key, a, [start, end], abort.signal, intoA),
      getBytes(deps, storeB, key, b, [start, end], abort.signal, intoB),
    ]);
    pair.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
    return pair;
  };
  const inFlight: Promise<[Buffer, Buffer]>[] = [];
  let next = 0;
  try {
    for (let offset = 0; offset < size; offset += chunk) {
      while (inFlight.length < PIPELINE_DEPTH && next < size) {
        inFlight.push(fetchPair(next));
        next += chunk;
      }
      const [x, y] = await inFlight.shift()!;
      const d = x.length === y.length ? mismatch(x, y) : Math.min(x.length, y.length);
      if (d >= 0 || x.length !== Math.min(chunk, size - offset)) {
        return { same: false, reason: `Contents differ (${a.store} vs ${b.store}, from byte ${offset + Math.max(d, 0)})` };
      }
    }
    return { same: true, by: 'bytes' };
  } finally {
    abort.abort();
  }
}
