/**
 * Issue 11 (5): cold start of each function. Each handler is bundled as serverless.yml
 * `custom.esbuild` bundles it (the api's with the web page, infra/web-page.js), then a fresh
 * `node` per sample (bench/children/cold-start.ts) requires the bundle and invokes the handler
 * once with a direct event against the bench's S3: the api reads a 1 KiB file (GET
 * /files/…, SINGLE), replicate takes an S3 event for a key no store holds, reconcile runs over
 * two small stores. BENCH_RUNS × 3 samples per function, interleaved. The goal (≤ 150 ms for
 * api) is on the median from the bundle's require to the first answer, what a cold start adds
 * once the runtime's node is up; spawn to answer, node's start-up included, is shown beside it.
 * Bundle sizes are reported too.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { build, type Plugin } from 'esbuild';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, startChild } from '../child';
import type { ColdStart } from '../children/cold-start';
import { fmtMs, median, nowMs, quantile, type Benchmark, type Row } from '../harness';

const STORES = ['cs-server1', 'cs-server2'];
const CONTROL = 'cs-control';
const KEY = 'cold/1k.txt';
const GOAL_MS = 150;
const OUT_DIR = join(ROOT, 'node_modules', '.cache', 's3-dfs-bench', 'handlers');

interface Fn {
  name: 'api' | 'replicate' | 'reconcile';
  event: unknown;
  /** Throws unless the answer is the one expected. */
  check(answer: unknown): void;
}

const FUNCTIONS: Fn[] = [
  {
    name: 'api',
    event: { method: 'GET', path: `/files/${KEY}` },
    check(a) {
      const r = a as { statusCode?: number; body?: unknown };
      if (r.statusCode !== 200 || (r.body as { status?: string })?.status !== 'SINGLE') throw new Error(`cold-start: api answered ${JSON.stringify(a).slice(0, 300)}`);
    },
  },
  {
    name: 'replicate',
    event: {
      Records: [{ eventName: 'ObjectCreated:Put', eventTime: new Date().toISOString(), s3: { bucket: { name: STORES[0] }, object: { key: 'cold/none.txt', sequencer: '0A' } } }],
    },
    check() {},
  },
  {
    name: 'reconcile',
    event: {},
    check(a) {
      if (typeof (a as { copies?: unknown }).copies !== 'number') throw new Error(`cold-start: reconcile answered ${JSON.stringify(a).slice(0, 300)}`);
    },
  },
];

/** Bundles handlers/NAME.ts with serverless.yml's esbuild options; returns the file. */
async function bundleHandler(name: string): Promise<string> {
  mkdirSync(OUT_DIR, { recursive: true });
  const outfile = join(OUT_DIR, `${name}.js`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const plugins = require(join(ROOT, 'infra', 'web-page.js')) as Plugin[];
  await build({
    absWorkingDir: ROOT,
    entryPoints: [join('handlers', `${name}.ts`)],
    outfile,
    bundle: true,
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: false,
    target: 'node20',
    platform: 'node',
    format: 'cjs',
    plugins,
    logLevel: 'error',
  });
  return outfile;
}

/** One cold start: spawn to answer, and the child's own split. */
async function startCold(bundle: string, fn: Fn, env: Record<string, string>): Promise<ColdStart & { spawnMs: number }> {
  const t0 = nowMs();
  const { child, message, stderr } = await startChild<{ result?: ColdStart; error?: string }>('cold-start', [bundle, JSON.stringify(fn.event)], env);
  const spawnMs = nowMs() - t0;
  await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  if (!message.result) throw new Error(`cold-start: ${fn.name} failed: ${message.error}\n${stderr()}`);
  fn.check(message.result.answer);
  return { ...message.result, spawnMs };
}

export const coldStart: Benchmark = {
  name: 'cold-start',
  issue: 11,
  title: `a fresh node loading each handler bundle to its first answer (goal ≤ ${GOAL_MS} ms for api), bundle sizes`,
  async run({ s3, sizes, log }) {
    await s3.createBuckets([...STORES, CONTROL]);
    for (const bucket of STORES) await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: 'x'.repeat(1024) }));
    const env = {
      DFS_STORES: STORES.map((b, i) => `server${i + 1}=${b}`).join(','),
      DFS_CONTROL_BUCKET: CONTROL,
      DFS_S3_ENDPOINT: s3.endpoint,
      DFS_S3_FLAVOR: 's3rver',
      DFS_CURSOR_SECRET: 'bench',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    };
    const bundles = new Map<string, string>();
    for (const fn of FUNCTIONS) bundles.set(fn.name, await bundleHandler(fn.name));
    const samples = new Map(FUNCTIONS.map((f) => [f.name, [] as (ColdStart & { spawnMs: number })[]]));
    const n = sizes.runs * 3;
    // One throw-away run each: the page cache holds node and the bundles from then on, as a warm Lambda host would.
    for (const fn of FUNCTIONS) await startCold(bundles.get(fn.name)!, fn, env);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < FUNCTIONS.length; j++) {
        const fn = FUNCTIONS[(i + j) % FUNCTIONS.length]!;
        samples.get(fn.name)!.push(await startCold(bundles.get(fn.name)!, fn, env));
      }
    }
    log(`cold-start: ${n} samples per function`);
    const rows: Row[] = [];
    for (const fn of FUNCTIONS) {
      const s = samples.get(fn.name)!;
      const file = bundles.get(fn.name)!;
      const bytes = statSync(file).size;
      const gzip = gzipSync(readFileSync(file)).length;
      const med = (f: (x: ColdStart & { spawnMs: number }) => number) => median(s.map(f));
      // What a Lambda cold start adds to a request once the runtime's node is up: load the bundle, answer.
      const toAnswer = med((x) => x.loadMs + x.firstAnswerMs);
      rows.push({
        bench: 'cold-start',
        metric: `${fn.name}: require of the bundle + first invocation in a fresh node, median of ${n}`,
        value: fmtMs(toAnswer),
        goal: fn.name === 'api' ? `≤ ${GOAL_MS} ms` : '-',
        verdict: fn.name === 'api' ? (toAnswer <= GOAL_MS ? 'pass' : 'miss') : 'info',
        note:
          `require ${fmtMs(med((x) => x.loadMs))}, first invocation ${fmtMs(med((x) => x.firstAnswerMs))} (medians); p90 ${fmtMs(quantile(s.map((x) => x.loadMs + x.firstAnswerMs), 0.9))}; ` +
          `bundle ${(bytes / 1e3).toFixed(0)} kB (${(gzip / 1e3).toFixed(0)} kB gzipped); samples ${s.map((x) => (x.loadMs + x.firstAnswerMs).toFixed(0)).join(' / ')} ms`,
      });
      rows.push({
        bench: 'cold-start',
        metric: `${fn.name}: spawn of node to the first answer (node's own start-up included), median of ${n}`,
        value: fmtMs(med((x) => x.spawnMs)),
        goal: '-',
        verdict: 'info',
        note: `node's start ${fmtMs(med((x) => x.bootMs))} (median) before the bundle is touched; CPU time of the process to its answer ${fmtMs(med((x) => x.cpuMs))} (median; a loaded machine stretches wall time, not CPU time); samples ${s.map((x) => x.spawnMs.toFixed(0)).join(' / ')} ms`,
      });
    }
    return rows;
  },
};
