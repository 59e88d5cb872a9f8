/**
 * Issue 3 (b): uploading one big file (1 GiB by default) to both stores with
 * `dfs put --to all`, against `aws s3 cp` of the same file to both buckets (the two copies run
 * at once, as dfs writes both stores at once), through the local stack. Also the peak RSS of
 * the dfs process: the file must be streamed, not held.
 */
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { missingCli, runDfsRetried, trialDfs } from '../cli';
import { fmtMB, fmtMs, fmtSize, median, MiB, skipped, spread, type Benchmark, type Row } from '../harness';
import { AWS, awsEnv, runCommand, runTogether } from '../peers';
import { contentStream, newSeed } from '../s3';
import { missingStack, startBenchStack, type BenchStack } from '../stack';

const GOAL = 1.0;
const RSS_GOAL_BYTES = 200e6;

export const put: Benchmark = {
  name: 'put',
  issue: 3,
  peers: ['aws', 'time'],
  title: `\`dfs put --to all\` of 1 GiB / \`aws s3 cp\` to both buckets (goal ≤ ${GOAL}×, dfs RSS ≤ 200 MB)`,
  async run({ sizes, log }) {
    const what = fmtSize(sizes.bigMiB * MiB);
    const why = (await missingCli('put', ['--to'])) ?? missingStack();
    if (why) {
      return [
        skipped('put', `time, \`dfs put --to all\` ${what} / aws s3 cp × 2`, `≤ ${GOAL.toFixed(1)}×`, why),
        skipped('put', `peak RSS of dfs put, ${what}`, '≤ 200 MB', why),
      ];
    }
    const dir = mkdtempSync(join(tmpdir(), 's3-dfs-bench-put-'));
    const file = join(dir, 'big.bin');
    let stack: BenchStack | undefined;
    try {
      await pipeline(contentStream(sizes.bigMiB * MiB, newSeed()), createWriteStream(file));
      log('put: starting the local stack');
      stack = await startBenchStack();
      const s = stack;
      // A trial upload of 6 MiB (multipart: over the 4 MiB inline limit) before anything is timed.
      const trial = join(dir, 'trial.bin');
      await pipeline(contentStream(6 * MiB, newSeed()), createWriteStream(trial));
      const broken = await trialDfs(['put', trial, '--as', 'bench/trial.bin', '--to', 'all', '--json', '--endpoint', s.apiUrl]);
      if (broken) {
        return [
          skipped('put', `time, \`dfs put --to all\` ${what} / aws s3 cp × 2`, `≤ ${GOAL.toFixed(1)}×`, broken),
          skipped('put', `peak RSS of dfs put, ${what}`, '≤ 200 MB', broken),
        ];
      }
      const a: number[] = [];
      const b: number[] = [];
      let rss = 0;
      const failures: string[] = [];
      for (let r = 0; r < sizes.runs; r++) {
        log(`put: run ${r + 1}/${sizes.runs}`);
        const key = `bench/put-${r}.bin`;
        const { run: d, failedOnce } = await runDfsRetried(['put', file, '--as', key, '--to', 'all', '--json', '--endpoint', s.apiUrl]);
        if (failedOnce) failures.push(`run ${r + 1} failed once and was retried: ${failedOnce}`);
        await expectCopies(s, key, sizes.bigMiB * MiB);
        a.push(d.ms);
        rss = Math.max(rss, d.maxRssBytes);
        const awsKey = `bench/aws-${r}.bin`;
        const p = await runTogether(
          s.buckets.map((bucket) => () =>
            runCommand(AWS, ['s3', 'cp', file, `s3://${bucket}/${awsKey}`, '--endpoint-url', s.s3Endpoint, '--only-show-errors'], { env: awsEnv() }),
          ),
        );
        await expectCopies(s, awsKey, sizes.bigMiB * MiB);
        b.push(p.ms);
        for (const bucket of s.buckets) {
          for (const k of [key, awsKey]) await s.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
        }
      }
      const ratio = median(a) / median(b);
      const rows: Row[] = [
        {
          bench: 'put',
          metric: `time, \`dfs put --to all\` ${what} / aws s3 cp × 2 (at once)`,
          value: fmtMs(median(a)),
          peer: fmtMs(median(b)),
          ratio,
          goal: `≤ ${GOAL.toFixed(1)}×`,
          verdict: ratio <= GOAL ? 'pass' : 'miss',
          note: [`median of ${sizes.runs} (${spread('dfs', a)}; ${spread('aws', b)}), from spawn to exit, against the local stack`, ...failures].join('; '),
        },
        {
          bench: 'put',
          metric: `peak RSS of dfs put, ${what}`,
          value: fmtMB(rss),
          goal: '≤ 200 MB',
          verdict: rss <= RSS_GOAL_BYTES ? 'pass' : 'miss',
        },
      ];
      return rows;
    } finally {
      await stack?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

async function expectCopies(stack: BenchStack, key: string, size: number): Promise<void> {
  for (const bucket of stack.buckets) {
    const h = await stack.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (h.ContentLength !== size) throw new Error(`put: ${bucket}/${key} holds ${h.ContentLength} B, expected ${size}`);
  }
}
