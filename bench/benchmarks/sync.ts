/**
 * Issue 4 (b): a dry-run reconcile over 10k keys per store (1 % differing, 1 % missing on each
 * side), against `rclone check` of the same two buckets. Through `dfs sync --dry-run` against
 * the local stack once both exist; until then lib/sync reconcile({ dryRun: true }) in-process.
 */
import { mergeListings, openListing } from '../../lib/listing';
import { reconcile } from '../../lib/sync';
import { missingCli, runDfsRetried, trialDfs } from '../cli';
import { benchDeps } from '../clients';
import { loadDataset, sharedDataset, type Dataset } from '../datasets';
import { fmtCount, fmtMs, median, nowMs, skipped, spread, type BenchContext, type Benchmark, type Row } from '../harness';
import { RCLONE, rcloneEnv, runCommand } from '../peers';
import { missingStack, startBenchStack } from '../stack';

const GOAL = 0.8;
const CONTROL = 'ten-control';

export const sync: Benchmark = {
  name: 'sync',
  issue: 4,
  peers: ['rclone', 'time'],
  title: `\`dfs sync --dry-run\` over 10k keys per store / \`rclone check\` (goal ≤ ${GOAL}×)`,
  async run(ctx) {
    const why = (await missingCli('sync', ['--dry-run'])) ?? missingStack();
    const viaCli = why ?? (await viaStack(ctx));
    // lib alone, in-process: the goal's stand-in while the CLI cannot be measured, else what the API adds.
    if (typeof viaCli !== 'string') return [...viaCli, ...(await inProcess(ctx, false))];
    const metric = `\`dfs sync --dry-run\`, ${fmtCount(ctx.sizes.keys)} keys per store / rclone check`;
    return [skipped('sync', metric, `≤ ${GOAL.toFixed(1)}×`, `${viaCli}; measured in-process meanwhile (next row)`), ...(await inProcess(ctx, true))];
  },
};

/** rclone check of the two buckets; checks it found every difference. */
async function rcloneCheck(endpoint: string, buckets: string[], d: Dataset): Promise<number> {
  const r = await runCommand(RCLONE, ['check', `local:${buckets[0]}`, `local:${buckets[1]}`], { env: rcloneEnv(endpoint), okCodes: [0, 1] });
  const found = Number(/(\d+) differences found/.exec(r.stderr)?.[1]);
  const expected = d.differ + d.missing[0] + d.missing[1];
  if (found !== expected) throw new Error(`sync: rclone check found ${found} differences, expected ${expected}:\n${r.stderr.slice(-2000)}`);
  return r.ms;
}

async function inProcess({ s3, sizes, log }: BenchContext, asGoal: boolean): Promise<Row[]> {
  const { buckets, dataset } = await sharedDataset(s3, 'ten', sizes.keys, log);
  await s3.createBuckets([CONTROL]);
  // The dataset is PUT straight into the buckets with no S3 events to stamp it: with the default
  // event age (65 min) a dry run would leave its differing names waiting for their events rather
  // than plan them. 0 takes every event as lost, so the differences are planned, as rclone reports them.
  const deps = { ...benchDeps(s3.endpoint, buckets, CONTROL), eventMaxAgeMs: 0 };
  // What one dry run sends, counted rather than assumed: the plan changes as lib/sync changes.
  let requests: Record<string, number> = {};
  for (const client of new Set([...deps.stores.map((s) => s.s3), deps.control.s3])) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context.commandName ?? 'other').replace(/Command$/, '');
        requests[name] = (requests[name] ?? 0) + 1;
        return next(args);
      },
      { step: 'initialize', name: 'benchRequestCount' },
    );
  }
  const dryRun = async () => {
    requests = {};
    const report = await reconcile(deps, { dryRun: true });
    const expected = dataset.differ + dataset.missing[0] + dataset.missing[1];
    if (report.entries.length !== expected || report.counts.differ !== dataset.differ) {
      throw new Error(`sync: reconcile planned ${report.entries.length} entries (${report.counts.differ} differ), expected ${expected} (${dataset.differ})`);
    }
  };
  // Where a dry run's time goes: the two listings merged, nothing else (what reconcile cannot do without).
  const listOnly = async () => {
    const listings = await Promise.all(deps.stores.map((st) => openListing(st, '', undefined, 1000, { readAhead: true })));
    let names = 0;
    for await (const _ of mergeListings(listings)) names++;
    if (names < sizes.keys) throw new Error(`sync: the merge saw ${names} names, fewer than ${sizes.keys}`);
  };
  const a: number[] = [];
  const b: number[] = [];
  const l: number[] = [];
  try {
    await dryRun(); // warm-up
    await rcloneCheck(s3.endpoint, buckets, dataset);
    for (let r = 0; r < sizes.runs; r++) {
      log(`sync: run ${r + 1}/${sizes.runs}`);
      const t0 = nowMs();
      await dryRun();
      a.push(nowMs() - t0);
      b.push(await rcloneCheck(s3.endpoint, buckets, dataset));
      const t1 = nowMs();
      await listOnly();
      l.push(nowMs() - t1);
    }
  } finally {
    for (const c of new Set(deps.stores.map((s) => s.s3))) c.destroy();
    deps.control.s3.destroy();
  }
  const ratio = median(a) / median(b);
  const sent = Object.entries(requests).map(([n, c]) => `${c} ${n}`).join(' + ');
  const lib: Row = {
    bench: 'sync',
    metric: `lib reconcile dry run (in-process${asGoal ? ', interim' : ''}), ${fmtCount(sizes.keys)} keys per store / rclone check`,
    value: fmtMs(median(a)),
    peer: fmtMs(median(b)),
    ratio,
    goal: asGoal ? `≤ ${GOAL.toFixed(1)}×` : '-',
    verdict: asGoal ? (ratio <= GOAL ? 'pass' : 'miss') : 'info',
    note: `median of ${sizes.runs} (${spread('dfs', a)}; ${spread('rclone', b)}); ${dataset.differ} names differ, ${dataset.missing[0]} + ${dataset.missing[1]} are missing on one side: a dry run sent ${sent} (HEADs fetch logical mtimes the listings lack) where rclone check decides on the two listings alone; no process start-up or HTTP on the dfs side`,
  };
  const listing: Row = {
    bench: 'sync',
    metric: `where lib's dry run goes: the two listings merged alone / the whole dry run (in-process)`,
    value: fmtMs(median(l)),
    peer: fmtMs(median(a)),
    ratio: median(l) / median(a),
    goal: '-',
    verdict: 'info',
    note: `median of ${sizes.runs} (${spread('listing', l)}); the rest of the dry run is looking at the names the listings cannot settle (HEADs, locks) while the walk goes on; listing alone / rclone check ${(median(l) / median(b)).toFixed(2)}×`,
  };
  return [lib, listing];
}

/** The rows, or why `dfs sync` could not be measured against the stack. */
async function viaStack({ sizes, log }: BenchContext): Promise<Row[] | string> {
  let dataset: Dataset | undefined;
  log(`sync: starting the local stack with ${fmtCount(sizes.keys)} keys per store`);
  const stack = await startBenchStack(async (s3, buckets) => {
    dataset = await loadDataset(s3.client, buckets, sizes.keys, log);
  });
  const a: number[] = [];
  const b: number[] = [];
  const retried: string[] = [];
  try {
    // Every route needs a token (issue 8): the stack's own write token.
    const env = { ...process.env, DFS_TOKEN: stack.token };
    const broken = await trialDfs(['sync', '--dry-run', '--json', '--endpoint', stack.apiUrl], { okCodes: [0, 4], env });
    if (broken) return broken;
    const dfsSync = async () => {
      const { run, failedOnce } = await runDfsRetried(['sync', '--dry-run', '--json', '--endpoint', stack.apiUrl], { okCodes: [0, 4], env });
      if (failedOnce) retried.push(`a run failed once and was retried: ${failedOnce}`);
      return run.ms;
    };
    await dfsSync();
    await rcloneCheck(stack.s3Endpoint, stack.buckets, dataset!);
    for (let r = 0; r < sizes.runs; r++) {
      log(`sync: run ${r + 1}/${sizes.runs}`);
      a.push(await dfsSync());
      b.push(await rcloneCheck(stack.s3Endpoint, stack.buckets, dataset!));
    }
  } finally {
    await stack.stop();
  }
  const ratio = median(a) / median(b);
  return [
    {
      bench: 'sync',
      metric: `\`dfs sync --dry-run\`, ${fmtCount(sizes.keys)} keys per store / rclone check`,
      value: fmtMs(median(a)),
      peer: fmtMs(median(b)),
      ratio,
      goal: `≤ ${GOAL.toFixed(1)}×`,
      verdict: ratio <= GOAL ? 'pass' : 'miss',
      note: [`median of ${sizes.runs} (${spread('dfs', a)}; ${spread('rclone', b)}), both from spawn to exit, against the local stack (API Gateway + Lambda emulation on the dfs side)`, ...retried].join('; '),
    },
  ];
}
