/**
 * Issue 12: `dfs cat` of a 1 GiB file (BENCH_BIG_MIB) piped to sha256sum against
 * `aws s3 cp s3://… -` piped to sha256sum, through the local stack. The file is identical on
 * both stores (loaded before the stack starts, so no replication runs meanwhile): dfs asks the
 * API, which compares the copies and answers a presigned URL, then streams it to stdout. Both
 * pipelines must print the file's digest.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ROOT } from '../child';
import { missingCli } from '../cli';
import { fmtMB, fmtMs, fmtRatio, fmtSize, median, MiB, skipped, spread, type Benchmark } from '../harness';
import { AWS, awsEnv, runCommand, type CommandRun } from '../peers';
import { contentStream, newSeed, putStreamed } from '../s3';
import { missingStack, startBenchStack, type BenchStack } from '../stack';

const GOAL = 1.0;
const KEY = 'bench/cat.bin';

/** `CMD | sha256sum` in bash with pipefail, so a failing producer fails the run. */
function piped(command: string, env: NodeJS.ProcessEnv): Promise<CommandRun> {
  return runCommand('/bin/bash', ['-c', `set -o pipefail; ${command} | sha256sum`], { env });
}

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

export const cliCat: Benchmark = {
  name: 'cli-cat',
  issue: 12,
  title: `\`dfs cat\` of 1 GiB | sha256sum / aws s3 cp s3://… - | sha256sum (goal ≤ ${GOAL}×)`,
  peers: ['aws'],
  async run({ sizes, log }) {
    const size = sizes.bigMiB * MiB;
    const metric = `time, \`dfs cat\` ${fmtSize(size)} | sha256sum / aws s3 cp - | sha256sum`;
    const why = (await missingCli('cat')) ?? missingStack();
    if (why) return [skipped('cli-cat', metric, `≤ ${fmtRatio(GOAL)}`, why)];
    const seed = newSeed();
    const digest = createHash('sha256');
    for await (const chunk of contentStream(size, seed)) digest.update(chunk as Buffer);
    const expected = digest.digest('hex');
    let stack: BenchStack | undefined;
    try {
      log(`cli-cat: loading ${fmtSize(size)} into both stores, then starting the local stack`);
      stack = await startBenchStack(async (s3, buckets) => {
        for (const b of buckets) await putStreamed(s3.client, b, KEY, size, seed);
      });
      const s = stack;
      const dfsCmd = `${quote(process.execPath)} ${quote(join(ROOT, 'bin', 'dfs.js'))} cat ${KEY} --endpoint ${quote(s.apiUrl)}`;
      const awsCmd = `${AWS} s3 cp s3://${s.buckets[0]}/${KEY} - --endpoint-url ${quote(s.s3Endpoint)}`;
      const dfsEnv = { ...process.env, DFS_TOKEN: s.token };
      const check = (tool: string, r: CommandRun) => {
        if (!r.stdout.startsWith(expected)) throw new Error(`cli-cat: ${tool} | sha256sum printed ${r.stdout.trim()}, expected ${expected}`);
      };
      check('dfs cat (trial)', await piped(dfsCmd, dfsEnv));
      const a: number[] = [];
      const b: number[] = [];
      let rss = 0;
      for (let r = 0; r < sizes.runs; r++) {
        log(`cli-cat: run ${r + 1}/${sizes.runs}`);
        const d = await piped(dfsCmd, dfsEnv);
        check('dfs cat', d);
        a.push(d.ms);
        rss = Math.max(rss, d.maxRssBytes);
        const p = await piped(awsCmd, awsEnv());
        check('aws s3 cp -', p);
        b.push(p.ms);
      }
      const ratio = median(a) / median(b);
      return [
        {
          bench: 'cli-cat',
          metric,
          value: fmtMs(median(a)),
          peer: fmtMs(median(b)),
          ratio,
          goal: `≤ ${fmtRatio(GOAL)}`,
          verdict: ratio <= GOAL ? 'pass' : 'miss',
          note: `median of ${sizes.runs}, spawn to exit of the pipeline, digests checked; ${spread('dfs', a)}; ${spread('aws', b)}; peak RSS of the pipeline's largest process with dfs ${fmtMB(rss)}`,
        },
      ];
    } finally {
      await stack?.stop();
    }
  },
};
