/**
 * Issue 3 (c): peak RSS of listing 100k keys per store (two stores) through lib/listing
 * listFiles, paging through everything in a fresh child process (bench/children/list.ts).
 * Goal: under 150 MB. `rclone lsl --use-server-modtime` of both buckets (listing requests only,
 * like dfs; plain lsl would HEAD 200k objects) is shown for context, time and RSS.
 */
import { runChild } from '../child';
import type { ListRun } from '../children/list';
import { sharedDataset } from '../datasets';
import { fmtCount, fmtMB, fmtMs, type Benchmark } from '../harness';
import { RCLONE, rcloneEnv, runCommand, runTogether } from '../peers';

const GOAL_BYTES = 150e6;

export const listMemory: Benchmark = {
  name: 'list-memory',
  issue: 3,
  peers: ['rclone', 'time'],
  title: 'peak RSS of listing 100k keys per store through listFiles paging, fresh process (goal < 150 MB)',
  async run({ s3, sizes, log }) {
    const { buckets, dataset } = await sharedDataset(s3, 'many', sizes.manyKeys, log);
    log(`list-memory: listing ${fmtCount(sizes.manyKeys)} names in a child process`);
    const run = await runChild<ListRun>('list', [s3.endpoint, buckets[0]!, buckets[1]!]);
    if (run.names !== dataset.keys) throw new Error(`list-memory: listed ${run.names} names, expected ${dataset.keys}`);
    log(`list-memory: rclone lsl --use-server-modtime of both buckets`);
    const peer = await runTogether(buckets.map((b) => () => runCommand(RCLONE, ['lsl', '--use-server-modtime', `local:${b}`], { env: rcloneEnv(s3.endpoint) })));
    const peerRss = Math.max(...peer.runs.map((r) => r.maxRssBytes));
    return [
      {
        bench: 'list-memory',
        metric: `peak RSS, listFiles through ${fmtCount(sizes.manyKeys)} keys per store (fresh process)`,
        value: fmtMB(run.rss.peakBytes),
        peer: `rclone ${fmtMB(peerRss)}`,
        goal: '< 150 MB',
        verdict: run.rss.peakBytes < GOAL_BYTES ? 'pass' : 'miss',
        note: `baseline ${fmtMB(run.rss.baselineBytes)} after loading; sampled peak ${fmtMB(run.rss.sampledPeakBytes)}, kernel maxRSS ${fmtMB(run.rss.maxRssBytes)}; ${run.pages} pages; rclone's RSS is the larger of its two processes`,
      },
      {
        bench: 'list-memory',
        metric: `time, listFiles through ${fmtCount(sizes.manyKeys)} keys per store / rclone lsl --use-server-modtime × 2`,
        value: fmtMs(run.ms),
        peer: fmtMs(peer.ms),
        ratio: run.ms / peer.ms,
        goal: '-',
        verdict: 'info',
        note: 'one run each; dfs timed inside its process, rclone from spawn to exit',
      },
    ];
  },
};
