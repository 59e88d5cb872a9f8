/**
 * What every benchmark shares: the shape of a result row, the sizes (settable by environment
 * for a quick run), statistics and formatting. Timing goals live here and in the benchmarks,
 * never in tests.
 */
import type { PeerName } from './peers';
import type { BenchS3 } from './s3';

/** One line of the results table, and of BENCHMARKS.md. */
export interface Row {
  /** Benchmark name, as given to `npm run bench -- NAME`. */
  bench: string;
  /** What was measured, with its size, e.g. `body bytes / file size, 64 KiB`. */
  metric: string;
  /** dfs's figure, formatted. */
  value: string;
  /** The peer's figure measured in the same run, formatted; absent when there is none. */
  peer?: string;
  /** dfs / peer (or the figure itself when the goal is a multiple, like bytes read / size). */
  ratio?: number;
  /** The goal in words, e.g. `≤ 1.5×`, `≤ 150 MB`; `-` for figures kept for information. */
  goal: string;
  verdict: 'pass' | 'miss' | 'info' | 'skip';
  note?: string;
}

export interface Sizes {
  /** Largest streamed compare and the upload size, MiB (BENCH_BIG_MIB, default 1024). */
  bigMiB: number;
  /** Sizes of the memory-bounded compare, MiB (BENCH_COMPARE_MIB, default "256,BIG"). */
  compareMiB: number[];
  /** Keys per store for listing and sync (BENCH_KEYS, default 10 000). */
  keys: number;
  /** Keys per store for the listing memory run (BENCH_MANY_KEYS, default 100 000). */
  manyKeys: number;
  /** Reads per side in the latency run (BENCH_LATENCY_N, default 1000, at least 200). */
  latencyN: number;
  /** Writes in the replication run (BENCH_REPLICATION_N, default 200). */
  replicationN: number;
  /** Repetitions of whole-command timings, each side (BENCH_RUNS, default 5). */
  runs: number;
  /** Round trip the latency proxy adds to every request, ms (BENCH_RTT_MS, default 20; 0 allowed). */
  rttMs: number;
  /** True when no size was overridden: only such runs are recorded in BENCHMARKS.md. */
  defaults: boolean;
}

const SIZE_VARS = ['BENCH_BIG_MIB', 'BENCH_COMPARE_MIB', 'BENCH_KEYS', 'BENCH_MANY_KEYS', 'BENCH_LATENCY_N', 'BENCH_REPLICATION_N', 'BENCH_RUNS', 'BENCH_RTT_MS'];

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

export function readSizes(env: NodeJS.ProcessEnv = process.env): Sizes {
  const bigMiB = positive(env, 'BENCH_BIG_MIB', 1024);
  const compareMiB = env.BENCH_COMPARE_MIB
    ? env.BENCH_COMPARE_MIB.split(',').map((s) => positive({ v: s.trim() }, 'v', 1))
    : [Math.min(256, Math.max(1, Math.floor(bigMiB / 4))), bigMiB];
  return {
    bigMiB,
    compareMiB: [...new Set(compareMiB)].sort((a, b) => a - b),
    keys: positive(env, 'BENCH_KEYS', 10_000),
    manyKeys: positive(env, 'BENCH_MANY_KEYS', 100_000),
    latencyN: Math.max(200, positive(env, 'BENCH_LATENCY_N', 1000)),
    replicationN: positive(env, 'BENCH_REPLICATION_N', 200),
    runs: positive(env, 'BENCH_RUNS', 5),
    rttMs: env.BENCH_RTT_MS === '0' ? 0 : positive(env, 'BENCH_RTT_MS', 20),
    defaults: SIZE_VARS.every((v) => !env[v]),
  };
}

export interface BenchContext {
  s3: BenchS3;
  sizes: Sizes;
  /** A progress line on stderr, so stdout stays the table. */
  log(message: string): void;
}

export interface Benchmark {
  name: string;
  /** The issue whose goal it checks. */
  issue: number;
  /** One line for `npm run bench -- --list`. */
  title: string;
  /** Programs it runs (bench/peers.ts): checked before anything starts, so a missing one is a message, not a stack trace. */
  peers?: PeerName[];
  run(ctx: BenchContext): Promise<Row[]>;
}

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** The q-quantile (0..1) by nearest rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const median = (values: number[]) => quantile(values, 0.5);

/** Every sample, in seconds, for a note: `dfs 4.1–6.9 s, peer 3.8–7.0 s` shows how noisy a run was. */
export function spread(label: string, values: number[]): string {
  const s = (ms: number) => (ms / 1000).toFixed(1);
  return `${label} ${values.map(s).join(' / ')} s`;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = nowMs();
  const value = await fn();
  return { ms: nowMs() - t0, value };
}

export const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`);
export const fmtMB = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
export const fmtRatio = (r: number) => `${r.toFixed(2)}×`;
export const fmtSize = (bytes: number) =>
  bytes >= MiB && bytes % MiB === 0 ? (bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0 ? `${bytes / (1024 * MiB)} GiB` : `${bytes / MiB} MiB`) : `${bytes / KiB} KiB`;
export const fmtCount = (n: number) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));

/** pass when `measured <= goal`. */
export const atMost = (measured: number, goal: number): Row['verdict'] => (measured <= goal ? 'pass' : 'miss');

/** A row saying why a benchmark did not run. */
export function skipped(bench: string, metric: string, goal: string, reason: string): Row {
  return { bench, metric, value: '-', goal, verdict: 'skip', note: reason };
}
