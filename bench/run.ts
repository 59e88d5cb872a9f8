/**
 * `npm run bench [-- NAME…]`: runs the benchmarks (all, or those named) against one s3rver
 * started here on 127.0.0.1 and a free port, in a temporary folder, and stopped at the end
 * whatever happens. Prints a table of ratios against peers measured in the same run, and
 * records it in BENCHMARKS.md when the sizes are the defaults (or BENCH_RECORD=1).
 *
 * Exit codes: 0 every benchmark ran (a missed goal is a finding, not a failure);
 * 1 a benchmark failed to run; 2 usage; 3 a program the selected benchmarks compare against
 * (rclone, awscli, /usr/bin/time) is not installed: nothing was run, and the message says what to install.
 */
import { benchmarks } from './benchmarks/index';
import { load1, describeSizes, formatTable, machine, record, type RunInfo } from './report';
import { nowMs, readSizes, type Row } from './harness';
import { installAdvice, missingPeers } from './peers';
import { startBenchS3, type BenchS3 } from './s3';

const USAGE = `usage: npm run bench [-- NAME…]   (npm run bench -- --list shows the names)
sizes: BENCH_BIG_MIB BENCH_COMPARE_MIB BENCH_KEYS BENCH_MANY_KEYS BENCH_LATENCY_N BENCH_REPLICATION_N BENCH_RUNS BENCH_RTT_MS
record a run with other sizes anyway: BENCH_RECORD=1`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.includes('--list')) {
    for (const b of benchmarks) process.stdout.write(`${b.name.padEnd(16)} issue ${b.issue}  ${b.title}\n`);
    return 0;
  }
  const unknown = args.filter((a) => !benchmarks.some((b) => b.name === a));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}\n${USAGE}\n`);
    return 2;
  }
  const selected = args.length ? benchmarks.filter((b) => args.includes(b.name)) : benchmarks;
  const missing = missingPeers(selected.flatMap((b) => b.peers ?? []));
  if (missing.length > 0) {
    const needing = selected.filter((b) => b.peers?.some((p) => missing.includes(p))).map((b) => b.name);
    process.stderr.write(`npm run bench: ${needing.join(', ')} compare(s) against programs this machine lacks; nothing was run.\n${installAdvice(missing)}\n`);
    return 3;
  }
  const sizes = readSizes();
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

  let s3: BenchS3 | undefined;
  const stopOnSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping s3rver`);
    void (s3?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  const rows: Row[] = [];
  const runs: Record<string, { info: RunInfo; rows: Row[] }> = {};
  let failed = false;
  try {
    s3 = await startBenchS3();
    log(`s3rver on ${s3.endpoint}, data in ${s3.directory}`);
    for (const b of selected) {
      log(`${b.name}: ${b.title}`);
      const started = nowMs();
      const loadBefore = load1();
      let got: Row[];
      try {
        got = await b.run({ s3, sizes, log });
      } catch (err) {
        failed = true;
        log(`${b.name} failed: ${(err as Error).stack}`);
        got = [{ bench: b.name, metric: 'run', value: '-', goal: '-', verdict: 'miss', note: `failed to run: ${(err as Error).message.replace(/\s+/g, ' ').slice(0, 600)}` }];
      }
      rows.push(...got);
      if (selected.length > 1) process.stderr.write(`${formatTable(got)}\n\n`);
      runs[b.name] = {
        info: {
          date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
          machine: machine(),
          load: [loadBefore, load1()],
          sizes: describeSizes(sizes),
          seconds: (nowMs() - started) / 1000,
        },
        rows: got,
      };
    }
  } finally {
    await s3?.stop();
  }
  process.stdout.write(`${formatTable(rows)}\n`);
  if (sizes.defaults || process.env.BENCH_RECORD === '1') {
    const recordable = Object.fromEntries(Object.entries(runs).filter(([, r]) => !r.rows.some((x) => x.metric === 'run')));
    record(recordable, benchmarks.map((b) => b.name));
    log(`recorded in BENCHMARKS.md: ${Object.keys(recordable).join(', ') || 'nothing'}`);
  } else {
    log('not recorded in BENCHMARKS.md: sizes differ from the defaults (BENCH_RECORD=1 records anyway)');
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  },
);
