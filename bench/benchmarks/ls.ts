/**
 * Issue 3 (a): the composite listing of 10k keys per store, against `rclone lsl` of both
 * buckets (the two run at once, as dfs lists both stores at once). Through `dfs ls --json`
 * against the local stack when both work; otherwise the same listing in-process through
 * lib/listing listFiles, page by page, is measured instead, and labelled so.
 *
 * `rclone lsl` on S3 HEADs every object for the mtime rclone keeps in metadata; dfs's listing
 * shows S3's LastModified and sends no HEAD. So `rclone lsl --use-server-modtime` (listing
 * requests only, like dfs) is measured too, as the like-for-like figure.
 */
import { listFiles } from '../../lib/listing';
import { missingCli, runDfsRetried, trialDfs } from '../cli';
import { benchDeps } from '../clients';
import { loadDataset, sharedDataset, type Dataset } from '../datasets';
import { fmtCount, fmtMs, median, nowMs, skipped, spread, type BenchContext, type Benchmark, type Row } from '../harness';
import { RCLONE, rcloneEnv, runCommand, runTogether } from '../peers';
import { missingStack, startBenchStack } from '../stack';

const GOAL = 1.0;

export const ls: Benchmark = {
  name: 'ls',
  issue: 3,
  peers: ['rclone', 'time'],
  title: `\`dfs ls --json\` of 10k keys per store / \`rclone lsl\` of both buckets (goal ≤ ${GOAL}×)`,
  async run(ctx) {
    const why = (await missingCli('ls', ['--json'])) ?? missingStack();
    const viaCli = why ?? (await viaStack(ctx));
    // lib alone, in-process: the goal's stand-in while the CLI cannot be measured, else what the API adds.
    if (typeof viaCli !== 'string') return [...viaCli, ...(await inProcess(ctx, false))];
    const metric = `\`dfs ls --json\`, ${fmtCount(ctx.sizes.keys)} keys per store / rclone lsl × 2`;
    return [skipped('ls', metric, `≤ ${GOAL.toFixed(1)}×`, `${viaCli}; measured in-process meanwhile (next rows)`), ...(await inProcess(ctx, true))];
  },
};

interface Sides {
  dfs: number[];
  lsl: number[];
  serverModtime: number[];
}

/** rclone lsl of both buckets at once; checks it listed every object. */
async function rcloneBoth(endpoint: string, buckets: string[], d: Dataset, flags: string[] = []) {
  const both = await runTogether(buckets.map((b) => () => runCommand(RCLONE, ['lsl', ...flags, `local:${b}`], { env: rcloneEnv(endpoint) })));
  both.runs.forEach((r, i) => {
    const lines = r.stdout.trim().split('\n').filter(Boolean).length;
    if (lines < d.objects[i]!) throw new Error(`ls: rclone lsl listed ${lines} objects of ${buckets[i]}, expected ${d.objects[i]}`);
  });
  return both.ms;
}

/** Warm-up, then `runs` rounds of dfs, rclone lsl, rclone lsl --use-server-modtime. */
async function measure(dfs: () => Promise<number>, endpoint: string, buckets: string[], d: Dataset, { sizes, log }: BenchContext): Promise<Sides> {
  const sides: Sides = { dfs: [], lsl: [], serverModtime: [] };
  await dfs(); // warm-up: s3rver's folders into the page cache, code into the JIT
  await rcloneBoth(endpoint, buckets, d);
  for (let r = 0; r < sizes.runs; r++) {
    log(`ls: run ${r + 1}/${sizes.runs}`);
    sides.dfs.push(await dfs());
    sides.lsl.push(await rcloneBoth(endpoint, buckets, d));
    sides.serverModtime.push(await rcloneBoth(endpoint, buckets, d, ['--use-server-modtime']));
  }
  return sides;
}

function rows(label: string, sides: Sides, sizes: BenchContext['sizes'], note: string, asGoal = true): Row[] {
  const ratio = median(sides.dfs) / median(sides.lsl);
  const like = median(sides.dfs) / median(sides.serverModtime);
  return [
    {
      bench: 'ls',
      metric: `${label}, ${fmtCount(sizes.keys)} keys per store / rclone lsl × 2`,
      value: fmtMs(median(sides.dfs)),
      peer: fmtMs(median(sides.lsl)),
      ratio,
      goal: asGoal ? `≤ ${GOAL.toFixed(1)}×` : '-',
      verdict: asGoal ? (ratio <= GOAL ? 'pass' : 'miss') : 'info',
      note: `median of ${sizes.runs} (${spread('dfs', sides.dfs)}; ${spread('rclone lsl', sides.lsl)}; ${spread('with --use-server-modtime', sides.serverModtime)}); ${note}; rclone lsl HEADs every object for its mtime metadata`,
    },
    {
      bench: 'ls',
      metric: `${label} / rclone lsl --use-server-modtime × 2 (listing only, like dfs)`,
      value: fmtMs(median(sides.dfs)),
      peer: fmtMs(median(sides.serverModtime)),
      ratio: like,
      goal: '-',
      verdict: 'info',
    },
  ];
}

async function inProcess(ctx: BenchContext, asGoal: boolean): Promise<Row[]> {
  const { s3, sizes, log } = ctx;
  const { buckets, dataset } = await sharedDataset(s3, 'ten', sizes.keys, log);
  const deps = benchDeps(s3.endpoint, buckets);
  const listAll = async () => {
    const t0 = nowMs();
    let after: string | undefined;
    let names = 0;
    do {
      const page = await listFiles(deps, after ? { after } : {});
      names += page.files.length;
      after = page.next ?? undefined;
    } while (after);
    if (names !== dataset.keys) throw new Error(`ls: listFiles listed ${names} names, expected ${dataset.keys}`);
    return nowMs() - t0;
  };
  try {
    const sides = await measure(listAll, s3.endpoint, buckets, dataset, ctx);
    const label = `lib listFiles paging (in-process${asGoal ? ', interim' : ''})`;
    return rows(label, sides, sizes, 'pages of 1000 names, stores listed in parallel; no process start-up or HTTP API on the dfs side, while rclone figures include process start-up', asGoal);
  } finally {
    for (const c of new Set(deps.stores.map((s) => s.s3))) c.destroy();
    deps.control.s3.destroy();
  }
}

/** The rows, or why `dfs ls` could not be measured against the stack. */
async function viaStack(ctx: BenchContext): Promise<Row[] | string> {
  const { sizes, log } = ctx;
  let dataset: Dataset | undefined;
  log(`ls: starting the local stack with ${fmtCount(sizes.keys)} keys per store`);
  const stack = await startBenchStack(async (s3, buckets) => {
    dataset = await loadDataset(s3.client, buckets, sizes.keys, log);
  });
  try {
    // Every route needs a token (issue 8): the stack's own write token.
    const env = { ...process.env, DFS_TOKEN: stack.token };
    const broken = await trialDfs(['ls', '--json', '--endpoint', stack.apiUrl], { env });
    if (broken) return broken;
    let rss = 0;
    let short = '';
    const retried: string[] = [];
    const dfsLs = async () => {
      const { run: r, failedOnce } = await runDfsRetried(['ls', '--json', '--endpoint', stack.apiUrl], { env });
      if (failedOnce) retried.push(`a run failed once and was retried: ${failedOnce}`);
      const listed = countFiles(r.stdout);
      if (listed !== undefined && listed < dataset!.keys) short = `dfs ls --json printed ${listed} files, expected ${dataset!.keys}; `;
      rss = Math.max(rss, r.maxRssBytes);
      return r.ms;
    };
    const sides = await measure(dfsLs, stack.s3Endpoint, stack.buckets, dataset!, ctx);
    const note = [`${short}all from spawn to exit, against the local stack; dfs peak RSS ${(rss / 1e6).toFixed(0)} MB`, ...retried].join('; ');
    return rows('`dfs ls --json`', sides, sizes, note);
  } finally {
    await stack.stop();
  }
}

/** The number of files in `dfs ls --json`'s output, when it has the API's shape. */
function countFiles(stdout: string): number | undefined {
  try {
    const json = JSON.parse(stdout) as { files?: unknown[] } | unknown[];
    if (Array.isArray(json)) return json.length;
    return Array.isArray(json.files) ? json.files.length : undefined;
  } catch {
    return undefined;
  }
}
