/**
 * Issue 12: `dfs put DIR` to both stores of the local stack against `aws s3 cp --recursive` and
 * `rclone copy` of the same folder to two buckets (each peer's two commands at once, as dfs
 * writes both stores at once). Two folders: 1,000 small files (4 KiB, in 10 subfolders: the
 * cost is per request) and 10 files of 100 MiB (the cost is bytes). Runs are interleaved; every
 * sample is in the note.
 *
 * The peers write to two buckets of the bench's own s3rver (the same s3rver, in a process of its
 * own), not into the stack: there every write sets off replication in the stack's process, and
 * a first run showed 2,000 direct writes keeping sls offline busy for over six minutes and
 * growing past 11 GB. What dfs is measured against is what a user compares it with: the same
 * files put into two plain buckets. dfs pays for its API and for the replication its writes set
 * off, as it does in use.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { missingCli, runDfsRetried } from '../cli';
import { fmtMs, fmtRatio, median, MiB, skipped, spread, type Benchmark, type Row } from '../harness';
import { AWS, awsEnv, RCLONE, rcloneEnv, runCommand, runTogether } from '../peers';
import { contentStream, newSeed } from '../s3';
import { missingStack, startBenchStack, type BenchStack } from '../stack';

const GOAL = 1.0;

interface Folder {
  label: string;
  files: number;
  bytes: number;
  make(dir: string): Promise<void>;
}

const FOLDERS: Folder[] = [
  {
    label: '1,000 files of 4 KiB',
    files: 1000,
    bytes: 1000 * 4096,
    async make(dir) {
      for (let i = 0; i < 1000; i++) {
        const sub = join(dir, `d${i % 10}`);
        mkdirSync(sub, { recursive: true });
        writeFileSync(join(sub, `f${String(i).padStart(4, '0')}.txt`), randomBytes(4096));
      }
    },
  },
  {
    label: '10 files of 100 MiB',
    files: 10,
    bytes: 10 * 100 * MiB,
    async make(dir) {
      for (let i = 0; i < 10; i++) await pipeline(contentStream(100 * MiB, newSeed()), createWriteStream(join(dir, `big${i}.bin`)));
    },
  },
];

export const cliPutDir: Benchmark = {
  name: 'cli-put-dir',
  issue: 12,
  title: `\`dfs put DIR\` of 1,000 small files and of 10 × 100 MiB to both stores / aws s3 cp --recursive and rclone copy (goal ≤ ${GOAL}×)`,
  peers: ['aws', 'rclone'],
  async run({ s3: plain, sizes, log }) {
    const why = (await missingCli('put', ['--jobs'])) ?? missingStack();
    if (why) return FOLDERS.flatMap((f) => ['aws', 'rclone'].map((p) => skipped('cli-put-dir', `time, dfs put DIR (${f.label}) / ${p}`, `≤ ${GOAL}×`, why)));
    const root = mkdtempSync(join(tmpdir(), 's3-dfs-bench-putdir-'));
    const peerBuckets = ['cli-put-dir-1', 'cli-put-dir-2'];
    await plain.createBuckets(peerBuckets);
    const rows: Row[] = [];
    try {
      for (const [fi, folder] of FOLDERS.entries()) {
        const dir = join(root, `set${fi}`);
        mkdirSync(dir);
        log(`cli-put-dir: making ${folder.label}`);
        await folder.make(dir);
        const times = { dfs: [] as number[], aws: [] as number[], rclone: [] as number[] };
        const notes: string[] = [];
        for (let r = 0; r < sizes.runs; r++) {
          const prefix = (tool: string) => `bench/${tool}-${fi}-${r}/`;
          // A fresh stack per run: sls offline keeps growing with the Lambda invocations of
          // replication (7 GB after 1,000 files put to both stores in a first run).
          log(`cli-put-dir: ${folder.label}, run ${r + 1}/${sizes.runs}: starting the local stack`);
          const s: BenchStack = await startBenchStack();
          try {
            const d = await runDfsRetried(['put', dir, '--as', prefix('dfs'), '--endpoint', s.apiUrl, '-q'], { env: { ...process.env, DFS_TOKEN: s.token } });
            if (d.failedOnce) notes.push(`dfs run ${r + 1} failed once and was retried: ${d.failedOnce}`);
            times.dfs.push(d.run.ms);
            // The stack's replication of dfs's writes runs in its own process; the peers start
            // once it has settled, so they do not share the CPU with it.
            await waitQuiet(s, log);
            const a = await runTogether(
              peerBuckets.map((b) => () => runCommand(AWS, ['s3', 'cp', '--recursive', dir, `s3://${b}/${prefix('aws')}`, '--endpoint-url', plain.endpoint, '--only-show-errors'], { env: awsEnv() })),
            );
            times.aws.push(a.ms);
            const rc = await runTogether(peerBuckets.map((b) => () => runCommand(RCLONE, ['copy', dir, `local:${b}/${prefix('rclone')}`], { env: rcloneEnv(plain.endpoint) })));
            times.rclone.push(rc.ms);
            log(`cli-put-dir: ${folder.label}, run ${r + 1}: dfs ${fmtMs(d.run.ms)}, aws ${fmtMs(a.ms)}, rclone ${fmtMs(rc.ms)}`);
            await expectAndRemove(s.client, s.buckets, prefix('dfs'), folder);
            // DeleteObjects: s3rver emits no events for it, so the removal sets off nothing.
            for (const tool of ['aws', 'rclone']) await expectAndRemove(plain.client, peerBuckets, prefix(tool), folder);
          } finally {
            await s.stop();
          }
        }
        for (const peer of ['aws', 'rclone'] as const) {
          const ratio = median(times.dfs) / median(times[peer]);
          rows.push({
            bench: 'cli-put-dir',
            metric: `time, \`dfs put DIR\` (${folder.label}) / ${peer === 'aws' ? 'aws s3 cp --recursive' : 'rclone copy'} × 2 (at once)`,
            value: fmtMs(median(times.dfs)),
            peer: fmtMs(median(times[peer])),
            ratio,
            goal: `≤ ${fmtRatio(GOAL)}`,
            verdict: ratio <= GOAL ? 'pass' : 'miss',
            note: [`median of ${sizes.runs}, spawn to exit, dfs --jobs 8 (default) into a fresh local stack, ${peer} into two buckets of a plain s3rver; ${spread('dfs', times.dfs)}; ${spread(peer, times[peer])}`, ...notes].join('; '),
          });
        }
        rmSync(dir, { recursive: true, force: true });
      }
      return rows;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
};

/** Checks that every file landed in both buckets, then deletes them (the next run starts empty). */
async function expectAndRemove(client: S3Client, buckets: string[], prefix: string, folder: Folder): Promise<void> {
  for (const bucket of buckets) {
    const keys = await listAll(client, bucket, prefix);
    const bytes = keys.reduce((n, k) => n + k.size, 0);
    if (keys.length !== folder.files || bytes !== folder.bytes) {
      throw new Error(`cli-put-dir: ${bucket}/${prefix} holds ${keys.length} files, ${bytes} B; expected ${folder.files}, ${folder.bytes} B`);
    }
    for (let i = 0; i < keys.length; i += 1000) {
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: k.key })) } }));
    }
  }
}

/**
 * Waits until the stores under bench/ stay unchanged (keys, ETags, times) for two polls in a
 * row, 2 s apart: replication's copies and stamps are done. At most 10 minutes.
 */
async function waitQuiet(stack: BenchStack, log: (m: string) => void): Promise<void> {
  const started = Date.now();
  let last = '';
  let same = 0;
  while (same < 2) {
    if (Date.now() - started > 600_000) throw new Error('cli-put-dir: the stores kept changing for 10 minutes');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const now = (await Promise.all(stack.buckets.map((b) => listAll(stack.client, b, 'bench/', true)))).flat().map((k) => `${k.key} ${k.etag} ${k.modified}`).join('\n');
    same = now === last ? same + 1 : 0;
    last = now;
  }
  log(`cli-put-dir: replication settled in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

async function listAll(client: S3Client, bucket: string, prefix: string, detail = false): Promise<{ key: string; size: number; etag?: string; modified?: number }[]> {
  const out: { key: string; size: number; etag?: string; modified?: number }[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0, ...(detail ? { etag: o.ETag ?? '', modified: o.LastModified?.getTime() ?? 0 } : {}) });
    token = page.NextContinuationToken;
  } while (token);
  return out;
}
