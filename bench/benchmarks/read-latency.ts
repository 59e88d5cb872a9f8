/**
 * Issues 2 (b) and 11 (4): in-process latency of reading a 1 KiB file with identical copies on
 * both stores through readFile, against one plain SDK GetObject of the same object (body read),
 * on the same client. Measured across the latency proxy (bench/latency-proxy.ts: the first byte
 * of every request held for BENCH_RTT_MS, default 20 ms), as S3 answers over a network, for both
 * sides; the goal is on those medians. The same on plain loopback is kept for information:
 * there the GET and the HEAD compete with s3rver for two busy cores and cost CPU, not distance.
 * Interleaved (the order rotates), after a warm-up.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readFile } from '../../lib/read';
import { benchDeps } from '../clients';
import { fmtMs, KiB, median, nowMs, quantile, type Benchmark, type Row } from '../harness';
import { behindLatency } from '../s3';

const BUCKETS = ['rl-server1', 'rl-server2'];
const KEY = 'read-latency/1k.bin';
const WARMUP = 200;
/** The goal across a network (issue 11): what is left above one GET is readFile's own work. */
const GOAL = 1.15;

interface Samples {
  dfs: number[];
  sdk: number[];
  pair: number[];
}

/** readFile, one GetObject and a bare GET ∥ HEAD, `n` each, interleaved, on `endpoint`. */
async function measure(endpoint: string, n: number, warmup: number): Promise<Samples> {
  const deps = benchDeps(endpoint, BUCKETS);
  const [store, other] = deps.stores as [(typeof deps.stores)[0], (typeof deps.stores)[0]];
  const dfs = async () => {
    const a = await readFile(deps, KEY);
    if (a.status !== 'SINGLE' || !a.content || !('base64' in a.content)) throw new Error(`read-latency: readFile answered ${a.status}`);
  };
  const sdk = async () => {
    const res = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: KEY }));
    if ((await res.Body!.transformToByteArray()).length !== KiB) throw new Error('read-latency: short body');
  };
  // The design's floor: the same GET and HEAD readFile sends, with nothing around them.
  const pair = async () => {
    const [res] = await Promise.all([
      store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: KEY, ChecksumMode: 'ENABLED' })),
      other.s3.send(new HeadObjectCommand({ Bucket: other.bucket, Key: KEY, ChecksumMode: 'ENABLED' })),
    ]);
    if ((await res.Body!.transformToByteArray()).length !== KiB) throw new Error('read-latency: short body');
  };
  const out: Samples = { dfs: [], sdk: [], pair: [] };
  const sides: [() => Promise<void>, number[]][] = [
    [dfs, out.dfs],
    [sdk, out.sdk],
    [pair, out.pair],
  ];
  try {
    for (let i = 0; i < warmup; i++) for (const [fn] of sides) await fn();
    for (let i = 0; i < n; i++) {
      // Rotate the order so no side always runs first (or right after another).
      for (let j = 0; j < sides.length; j++) {
        const [fn, samples] = sides[(i + j) % sides.length]!;
        const t0 = nowMs();
        await fn();
        samples.push(nowMs() - t0);
      }
    }
    return out;
  } finally {
    for (const s of new Set(deps.stores.map((x) => x.s3))) s.destroy();
    deps.control.s3.destroy();
  }
}

const p90 = (xs: number[]) => quantile(xs, 0.9);

export const readLatency: Benchmark = {
  name: 'read-latency',
  issue: 11,
  title: `readFile of a 1 KiB file (2 identical copies) / one SDK GetObject across a BENCH_RTT_MS round trip (20 ms), medians (goal ≤ ${GOAL}×)`,
  async run({ s3, sizes, log }) {
    await s3.createBuckets(BUCKETS);
    const body = randomBytes(KiB);
    for (const bucket of BUCKETS) {
      await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: body, Metadata: { mtime: '1700000000000' } }));
    }
    const rtt = sizes.rttMs;
    const proxy = await behindLatency(s3, rtt);
    let far: Samples;
    try {
      log(`read-latency: ${sizes.latencyN} reads each, interleaved, across a ${rtt} ms round trip (proxy ${proxy.endpoint})`);
      far = await measure(proxy.endpoint, sizes.latencyN, Math.min(WARMUP, 50));
    } finally {
      await proxy.stop();
    }
    log(`read-latency: ${sizes.latencyN} reads each, interleaved, on loopback`);
    const near = await measure(s3.endpoint, sizes.latencyN, WARMUP);
    const ratio = median(far.dfs) / median(far.sdk);
    const rows: Row[] = [
      {
        bench: 'read-latency',
        metric: `1 KiB read at ${rtt} ms RTT, median of ${sizes.latencyN}: readFile / SDK GetObject`,
        value: fmtMs(median(far.dfs)),
        peer: fmtMs(median(far.sdk)),
        ratio,
        goal: `≤ ${GOAL.toFixed(2)}×`,
        verdict: ratio <= GOAL ? 'pass' : 'miss',
        note: `p90 ${fmtMs(p90(far.dfs))} vs ${fmtMs(p90(far.sdk))} (${(p90(far.dfs) / p90(far.sdk)).toFixed(2)}×); both sides through the latency proxy (the first byte of every request held ${rtt} ms, bench/latency-proxy.ts); readFile = GET on server1 ∥ HEAD on server2, compare, base64; same S3 client (keep-alive) for both sides`,
      },
      {
        bench: 'read-latency',
        metric: `1 KiB read at ${rtt} ms RTT, median: readFile / bare SDK GET ∥ HEAD (the design's floor)`,
        value: fmtMs(median(far.dfs)),
        peer: fmtMs(median(far.pair)),
        ratio: median(far.dfs) / median(far.pair),
        goal: '-',
        verdict: 'info',
        note: `GET ∥ HEAD alone is ${(median(far.pair) / median(far.sdk)).toFixed(2)}× one GET at ${rtt} ms`,
      },
      {
        bench: 'read-latency',
        metric: `1 KiB read on loopback (no delay), median of ${sizes.latencyN}: readFile / SDK GetObject`,
        value: fmtMs(median(near.dfs)),
        peer: fmtMs(median(near.sdk)),
        ratio: median(near.dfs) / median(near.sdk),
        goal: '-',
        verdict: 'info',
        note: `p90 ${fmtMs(p90(near.dfs))} vs ${fmtMs(p90(near.sdk))}; bare GET ∥ HEAD ${fmtMs(median(near.pair))} (${(median(near.pair) / median(near.sdk)).toFixed(2)}× one GET): with no distance to wait out, the HEAD's CPU (client and s3rver, on two shared cores) is what readFile pays over one GET`,
      },
    ];
    return rows;
  },
};
