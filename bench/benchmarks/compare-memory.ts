/**
 * Issue 2 (c): peak RSS and throughput of comparing two equal copies that only a byte compare
 * can tell apart, each size in a fresh child process (bench/children/compare.ts). Memory must
 * stay under 150 MB and flat as the file grows. rclone's `check --download` of the same two
 * objects is the peer for time (and its RSS is shown for context).
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { runChild } from '../child';
import type { CompareRun } from '../children/compare';
import { fmtMB, fmtMs, fmtSize, MiB, nowMs, type Benchmark, type Row } from '../harness';
import { RCLONE, rcloneEnv, runCommand } from '../peers';
import { newSeed, putStreamed } from '../s3';

const BUCKETS = ['cm-server1', 'cm-server2'];
const GOAL_BYTES = 150e6;
/** "Flat": the largest file may cost at most this much more than the smallest. */
const FLAT_BYTES = 16e6;

export const compareMemory: Benchmark = {
  name: 'compare-memory',
  issue: 2,
  title: 'peak RSS (goal ≤ 150 MB, flat) and MiB/s of a streamed byte compare of two equal copies',
  async run({ s3, sizes, log }) {
    await s3.createBuckets(BUCKETS);
    const rows: Row[] = [];
    const peaks: { mib: number; bytes: number }[] = [];
    for (const mib of sizes.compareMiB) {
      const size = mib * MiB;
      const key = `compare/${mib}MiB.bin`;
      const what = fmtSize(size);
      const seed = newSeed();
      const w0 = nowMs();
      for (const bucket of BUCKETS) await putStreamed(s3.client, bucket, key, size, seed);
      log(`compare-memory: wrote 2 × ${what} in ${fmtMs(nowMs() - w0)}`);
      try {
        const run = await runChild<CompareRun>('compare', [s3.endpoint, BUCKETS[0]!, BUCKETS[1]!, key, String(size)]);
        if (run.bodyBytes !== 2 * size) throw new Error(`compare-memory: expected ${2 * size} body bytes, read ${run.bodyBytes}`);
        log(`compare-memory: ${what} compared in ${fmtMs(run.ms)}, peak RSS ${fmtMB(run.rss.peakBytes)}`);
        const peer = await runCommand(RCLONE, ['check', `local:${BUCKETS[0]}`, `local:${BUCKETS[1]}`, '--download', '--include', `/${key}`], {
          env: rcloneEnv(s3.endpoint),
        });
        if (!/0 differences found/.test(peer.stderr) || !/1 matching files/.test(peer.stderr)) {
          throw new Error(`compare-memory: rclone check did not find 1 matching file:\n${peer.stderr}`);
        }
        peaks.push({ mib, bytes: run.rss.peakBytes });
        const mibps = (ms: number) => `${(mib / (ms / 1000)).toFixed(0)} MiB/s`;
        rows.push(
          {
            bench: 'compare-memory',
            metric: `peak RSS, compare 2 × ${what} (fresh process)`,
            value: fmtMB(run.rss.peakBytes),
            peer: `rclone ${fmtMB(peer.maxRssBytes)}`,
            goal: '≤ 150 MB',
            verdict: run.rss.peakBytes <= GOAL_BYTES ? 'pass' : 'miss',
            note: `baseline ${fmtMB(run.rss.baselineBytes)} after loading; sampled peak ${fmtMB(run.rss.sampledPeakBytes)} (${run.rss.samples} samples), kernel maxRSS ${fmtMB(run.rss.maxRssBytes)}; chunks of ${run.compareChunkBytes / MiB} MiB`,
          },
          {
            bench: 'compare-memory',
            metric: `time, compare 2 × ${what}: dfs / rclone check --download`,
            value: `${fmtMs(run.ms)} (${mibps(run.ms)})`,
            peer: `${fmtMs(peer.ms)} (${mibps(peer.ms)})`,
            ratio: run.ms / peer.ms,
            goal: '-',
            verdict: 'info',
            note: 'MiB/s of file compared (each side reads it once); dfs timed inside its process, rclone from spawn to exit',
          },
        );
      } finally {
        for (const bucket of BUCKETS) await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      }
    }
    if (peaks.length > 1) {
      const first = peaks[0]!;
      const last = peaks[peaks.length - 1]!;
      const growth = last.bytes - first.bytes;
      rows.push({
        bench: 'compare-memory',
        metric: `peak RSS growth, ${fmtSize(first.mib * MiB)} → ${fmtSize(last.mib * MiB)}`,
        value: `${growth >= 0 ? '+' : ''}${fmtMB(growth)}`,
        goal: `flat (≤ +${fmtMB(FLAT_BYTES)})`,
        verdict: growth <= FLAT_BYTES ? 'pass' : 'miss',
        note: `${(last.mib / first.mib).toFixed(0)}× the size, ${growth >= 0 ? '+' : ''}${((100 * growth) / first.bytes).toFixed(0)} % the peak; "flat" here means at most ${fmtMB(FLAT_BYTES)} more`,
      });
    }
    return rows;
  },
};
