/**
 * Issue 2 (b): in-process latency of reading a 1 KiB file with identical copies on both stores
 * through readFile, against one plain SDK GetObject of the same object (body read), on the same
 * client. Interleaved (the order alternates), after a warm-up; the goal is on the medians.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readFile } from '../../lib/read';
import { benchDeps } from '../clients';
import { fmtMs, KiB, median, nowMs, quantile, type Benchmark } from '../harness';

const BUCKETS = ['rl-server1', 'rl-server2'];
const KEY = 'read-latency/1k.bin';
const WARMUP = 200;
const GOAL = 1.5;

export const readLatency: Benchmark = {
  name: 'read-latency',
  issue: 2,
  title: `readFile of a 1 KiB file (2 identical copies) / one SDK GetObject, medians (goal ≤ ${GOAL}×)`,
  async run({ s3, sizes, log }) {
    await s3.createBuckets(BUCKETS);
    const body = randomBytes(KiB);
    for (const bucket of BUCKETS) {
      await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: body, Metadata: { mtime: '1700000000000' } }));
    }
    const deps = benchDeps(s3.endpoint, BUCKETS);
    const store = deps.stores[0]!;
    const dfs = async () => {
      const a = await readFile(deps, KEY);
      if (a.status !== 'SINGLE' || !a.content || !('base64' in a.content)) throw new Error(`read-latency: readFile answered ${a.status}`);
    };
    const sdk = async () => {
      const res = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: KEY }));
      if ((await res.Body!.transformToByteArray()).length !== KiB) throw new Error('read-latency: short body');
    };
    // The design's floor on one machine: the same GET and HEAD readFile sends, with nothing around them.
    const other = deps.stores[1]!;
    const pair = async () => {
      const [res] = await Promise.all([
        store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: KEY, ChecksumMode: 'ENABLED' })),
        other.s3.send(new HeadObjectCommand({ Bucket: other.bucket, Key: KEY, ChecksumMode: 'ENABLED' })),
      ]);
      if ((await res.Body!.transformToByteArray()).length !== KiB) throw new Error('read-latency: short body');
    };
    const time = async (fn: () => Promise<void>) => {
      const t0 = nowMs();
      await fn();
      return nowMs() - t0;
    };
    try {
      for (let i = 0; i < WARMUP; i++) {
        await dfs();
        await sdk();
        await pair();
      }
      log(`read-latency: ${sizes.latencyN} reads each, interleaved`);
      const a: number[] = [];
      const b: number[] = [];
      const c: number[] = [];
      const sides: [() => Promise<void>, number[]][] = [
        [dfs, a],
        [sdk, b],
        [pair, c],
      ];
      for (let i = 0; i < sizes.latencyN; i++) {
        // Rotate the order so no side always runs first (or right after another).
        for (let j = 0; j < sides.length; j++) {
          const [fn, out] = sides[(i + j) % sides.length]!;
          out.push(await time(fn));
        }
      }
      const ratio = median(a) / median(b);
      const p90 = quantile(a, 0.9) / quantile(b, 0.9);
      return [
        {
          bench: 'read-latency',
          metric: `1 KiB read, median of ${sizes.latencyN}: readFile / SDK GetObject`,
          value: fmtMs(median(a)),
          peer: fmtMs(median(b)),
          ratio,
          goal: `≤ ${GOAL.toFixed(1)}×`,
          verdict: ratio <= GOAL ? 'pass' : 'miss',
          note: `p90 ${fmtMs(quantile(a, 0.9))} vs ${fmtMs(quantile(b, 0.9))} (${p90.toFixed(2)}×); readFile = GET on server1 ∥ HEAD on server2, compare, base64; same S3 client (keep-alive) for both sides`,
        },
        {
          bench: 'read-latency',
          metric: `1 KiB read, median: readFile / bare SDK GET ∥ HEAD (the design's floor)`,
          value: fmtMs(median(a)),
          peer: fmtMs(median(c)),
          ratio: median(a) / median(c),
          goal: '-',
          verdict: 'info',
          note: `GET ∥ HEAD alone is ${(median(c) / median(b)).toFixed(2)}× one GET: what is left above it is readFile's own work`,
        },
      ];
    } finally {
      for (const s of new Set(deps.stores.map((x) => x.s3))) s.destroy();
      deps.control.s3.destroy();
    }
  },
};
