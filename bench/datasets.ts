/**
 * Many small objects on two stores, as listing and sync benchmarks need them: keys in folders
 * of 1000 (`d007/f0007123.txt`), mostly equal on both stores, with a few of every kind of
 * difference so that listing states and sync plans have work to do:
 *   i % 100 == 1  content differs (same size), server2's newer
 *   i % 100 == 2  only on server1
 *   i % 100 == 3  only on server2
 * Loaded through the S3 API (PutObject, 48 at a time): slower than writing s3rver's folders
 * directly, but certainly what an S3 would hold.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { fmtCount, nowMs } from './harness';
import { putMany, type BenchS3 } from './s3';

export interface Dataset {
  keys: number;
  /** Objects per store. */
  objects: [number, number];
  /** Names present on both with different content. */
  differ: number;
  /** Names missing from server1, from server2. */
  missing: [number, number];
}

const T0 = 1_700_000_000_000;

function kind(i: number): 'differ' | 'only1' | 'only2' | 'same' {
  const r = i % 100;
  return r === 1 ? 'differ' : r === 2 ? 'only1' : r === 3 ? 'only2' : 'same';
}

export const keyOf = (i: number) => `d${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i).padStart(7, '0')}.txt`;

/** What a dataset of `keys` names holds, without loading it. */
export function describeDataset(keys: number): Dataset {
  const d: Dataset = { keys, objects: [0, 0], differ: 0, missing: [0, 0] };
  for (let i = 0; i < keys; i++) {
    const k = kind(i);
    if (k !== 'only2') d.objects[0]++;
    if (k !== 'only1') d.objects[1]++;
    if (k === 'differ') d.differ++;
    if (k === 'only2') d.missing[0]++;
    if (k === 'only1') d.missing[1]++;
  }
  return d;
}

function* items(keys: number, buckets: string[]) {
  for (let i = 0; i < keys; i++) {
    const key = keyOf(i);
    const k = kind(i);
    const body = `file ${i} of the s3-dfs bench\n`;
    if (k !== 'only2') yield { bucket: buckets[0]!, key, body, mtime: T0 };
    if (k !== 'only1') yield { bucket: buckets[1]!, key, body: k === 'differ' ? body.toUpperCase() : body, mtime: k === 'differ' ? T0 + 1000 : T0 };
  }
}

/** PUTs the dataset into `buckets` (server1's, server2's), logging progress. */
export async function loadDataset(client: S3Client, buckets: string[], keys: number, log: (m: string) => void): Promise<Dataset> {
  const d = describeDataset(keys);
  const total = d.objects[0] + d.objects[1];
  const t0 = nowMs();
  let done = 0;
  let nextReport = 0.1;
  await putMany(client, tick(items(keys, buckets), () => {
    done++;
    if (done / total >= nextReport) {
      log(`loading ${fmtCount(keys)} keys × 2 stores: ${Math.round((100 * done) / total)} % (${Math.round(done / ((nowMs() - t0) / 1000))} PUT/s)`);
      nextReport += 0.1;
    }
  }));
  return d;
}

function* tick<T>(source: Iterable<T>, each: () => void): Generator<T> {
  for (const x of source) {
    yield x;
    each();
  }
}

const shared = new WeakMap<BenchS3, Map<string, Promise<Dataset>>>();

/**
 * The dataset of `keys` names in buckets `<prefix>-server1`, `<prefix>-server2` of the bench's
 * s3rver, loaded once per run however many benchmarks use it.
 */
export async function sharedDataset(
  s3: BenchS3,
  prefix: string,
  keys: number,
  log: (m: string) => void,
): Promise<{ buckets: string[]; dataset: Dataset }> {
  const buckets = [`${prefix}-server1`, `${prefix}-server2`];
  let byPrefix = shared.get(s3);
  if (!byPrefix) shared.set(s3, (byPrefix = new Map()));
  let loading = byPrefix.get(prefix);
  if (!loading) {
    loading = s3.createBuckets(buckets).then(() => loadDataset(s3.client, buckets, keys, log));
    byPrefix.set(prefix, loading);
  }
  return { buckets, dataset: await loading };
}
