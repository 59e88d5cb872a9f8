/**
 * Issues 2 and 11: time and peak RSS of comparing two equal copies that only a byte compare can
 * tell apart (different multipart-style ETags), each run in a fresh child process
 * (bench/children/compare.ts). dfs's streamed compare (one GET per copy) must take no longer
 * than `rclone check --download` of the same two objects, stay under 150 MB and stay flat as
 * the file grows. The ranged compare it replaced (chunked ranged GETs) is measured alongside,
 * to show where either wins. Runs are interleaved, the order rotating; medians of BENCH_RUNS.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { runChild } from '../child';
import type { CompareRun } from '../children/compare';
import { fmtMB, fmtMs, fmtRatio, fmtSize, median, MiB, nowMs, spread, type Benchmark, type Row } from '../harness';
import { RCLONE, rcloneEnv, runCommand } from '../peers';
import { newSeed, putStreamed } from '../s3';

const BUCKETS = ['cm-server1', 'cm-server2'];
const GOAL_BYTES = 150e6;
/** The time goal, dfs / rclone check --download, held at the smallest size (256 MiB by default). */
const GOAL_RATIO = 1.0;
/** "Flat": the largest file may cost at most this much more than the smallest. */
const FLAT_BYTES = 16e6;

export const compareMemory: Benchmark = {
  name: 'compare-memory',
  issue: 11,
  peers: ['rclone', 'time'],
  title: `streamed byte compare of two equal copies: time / rclone check --download (goal ≤ ${GOAL_RATIO}×), peak RSS (≤ 150 MB, flat)`,
  async run({ s3, sizes, log }) {
    await s3.createBuckets(BUCKETS);
    const rows: Row[] = [];
    const peaks: { mib: number; bytes: number }[] = [];
    for (const [n, mib] of sizes.compareMiB.entries()) {
      const size = mib * MiB;
      const key = `compare/${mib}MiB.bin`;
      const what = fmtSize(size);
      const seed = newSeed();
      const w0 = nowMs();
      for (const bucket of BUCKETS) await putStreamed(s3.client, bucket, key, size, seed);
      log(`compare-memory: wrote 2 × ${what} in ${fmtMs(nowMs() - w0)}`);
      try {
        const child = async (mode: 'stream' | 'ranged') => {
          const run = await runChild<CompareRun>('compare', [s3.endpoint, BUCKETS[0]!, BUCKETS[1]!, key, String(size), mode]);
          if (run.bodyBytes !== 2 * size) throw new Error(`compare-memory: ${mode} read ${run.bodyBytes} body bytes, expected ${2 * size}`);
          return run;
        };
        const rclone = async () => {
          const peer = await runCommand(RCLONE, ['check', `local:${BUCKETS[0]}`, `local:${BUCKETS[1]}`, '--download', '--include', `/${key}`], {
            env: rcloneEnv(s3.endpoint),
          });
          if (!/0 differences found/.test(peer.stderr) || !/1 matching files/.test(peer.stderr)) {
            throw new Error(`compare-memory: rclone check did not find 1 matching file:\n${peer.stderr}`);
          }
          return peer;
        };
        const stream: CompareRun[] = [];
        const ranged: CompareRun[] = [];
        const peer: Awaited<ReturnType<typeof rclone>>[] = [];
        const sides = [async () => stream.push(await child('stream')), async () => ranged.push(await child('ranged')), async () => peer.push(await rclone())];
        for (let r = 0; r < sizes.runs; r++) {
          for (let j = 0; j < sides.length; j++) await sides[(r + j) % sides.length]!();
          log(`compare-memory: ${what} run ${r + 1}/${sizes.runs}: stream ${fmtMs(stream[r]!.ms)}, ranged ${fmtMs(ranged[r]!.ms)}, rclone ${fmtMs(peer[r]!.ms)}`);
        }
        const ms = (runs: { ms: number }[]) => median(runs.map((x) => x.ms));
        const peak = (runs: CompareRun[]) => Math.max(...runs.map((x) => x.rss.peakBytes));
        const top = stream.reduce((a, b) => (b.rss.peakBytes > a.rss.peakBytes ? b : a));
        peaks.push({ mib, bytes: peak(stream) });
        const mibps = (t: number) => `${(mib / (t / 1000)).toFixed(0)} MiB/s`;
        const ratio = ms(stream) / ms(peer);
        const timeGoal = n === 0;
        const samples = `${spread('stream', stream.map((x) => x.ms))}; ${spread('ranged', ranged.map((x) => x.ms))}; ${spread('rclone', peer.map((x) => x.ms))}`;
        rows.push(
          {
            bench: 'compare-memory',
            metric: `time, compare 2 × ${what}: dfs streamed / rclone check --download`,
            value: `${fmtMs(ms(stream))} (${mibps(ms(stream))})`,
            peer: `${fmtMs(ms(peer))} (${mibps(ms(peer))})`,
            ratio,
            goal: timeGoal ? `≤ ${GOAL_RATIO.toFixed(1)}×` : '-',
            verdict: timeGoal ? (ratio <= GOAL_RATIO ? 'pass' : 'miss') : 'info',
            note: `median of ${sizes.runs}, interleaved (${samples}); MiB/s of file compared (each side reads it once); dfs timed inside its process from the HEADs to the verdict, rclone from spawn to exit; CPU time (user + system), medians: dfs ${fmtMs(median(stream.map((x) => x.cpuMs)))}, ranged ${fmtMs(median(ranged.map((x) => x.cpuMs)))}, rclone ${fmtMs(median(peer.map((x) => x.cpuMs)))} (start-up included)`,
          },
          {
            bench: 'compare-memory',
            metric: `time, compare 2 × ${what}: dfs ranged (the old path) / dfs streamed`,
            value: `${fmtMs(ms(ranged))} (${mibps(ms(ranged))})`,
            peer: `${fmtMs(ms(stream))}`,
            ratio: ms(ranged) / ms(stream),
            goal: '-',
            verdict: 'info',
            note: `the ranged path: ${ranged[0]!.compareChunkBytes / MiB} MiB ranges, 3 pairs in flight, a chunk compared once whole on both sides; peak RSS ${fmtMB(peak(ranged))}; ranged / rclone ${fmtRatio(ms(ranged) / ms(peer))}`,
          },
          {
            bench: 'compare-memory',
            metric: `peak RSS, compare 2 × ${what} streamed (fresh process)`,
            value: fmtMB(peak(stream)),
            peer: `rclone ${fmtMB(Math.max(...peer.map((p) => p.maxRssBytes)))}`,
            goal: '≤ 150 MB',
            verdict: peak(stream) <= GOAL_BYTES ? 'pass' : 'miss',
            note: `the largest of ${sizes.runs} runs (${stream.map((x) => fmtMB(x.rss.peakBytes)).join(' / ')}); in it: baseline ${fmtMB(top.rss.baselineBytes)} after loading, sampled peak ${fmtMB(top.rss.sampledPeakBytes)} (${top.rss.samples} samples), kernel maxRSS ${fmtMB(top.rss.maxRssBytes)}`,
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
