import { reconcile } from '../../lib/sync';
import { readTombstone } from '../../lib/tombstones';
import type { JournalEvent, SyncReport } from '../../lib/types';
import { contents, readJournal } from '../helpers/events';
import { judge, judgeLocks, type LockViolation, type Violation } from './oracle';
import { random, startWorld, type Delivery } from './world';
import { runWorkload, type EventRecord, type History } from './workload';

/*
 * One delivery-fault run, from a seed: a world (world.ts), users at work (workload.ts), events
 * delivered late, twice and out of order, failures retried as Lambda does; then quiet, one
 * reconcile (which replays the failure queue), quiet again, and the oracle (oracle.ts). The
 * seed fixes the workload and the fault schedule, so a failing seed can be run again; the
 * report prints what happened to every event for the names the oracle faults.
 */

export interface RunOptions {
  seed: number;
  /** Delivery delays times this; 1 is S3's own (most under 2 s, some up to 10 s). */
  scale?: number;
  ops?: number;
}

export interface RunResult {
  seed: number;
  stores: string[];
  violations: Violation[];
  /** Changes to a locked store its holder did not make (rule 5), other than writes that raced the lock. */
  lockViolations: LockViolation[];
  /** Writes decided before the lock was taken that landed after it (allowed; counted for the record). */
  racedLockWrites: LockViolation[];
  /** Copies made per name against what its writes and deletes allow (N-1 per write). */
  overCopied: { key: string; copies: number; allowed: number }[];
  /** A second reconcile, dry: what it still wanted to do (nothing, when the first settled all). */
  leftover: SyncReport['entries'];
  stats: Record<string, number>;
  /** Everything needed to see what happened, printed on failure. */
  schedule: () => string;
}

export async function runSeed(opts: RunOptions): Promise<RunResult> {
  const rnd = random(opts.seed);
  const stores = rnd() < 0.34 ? ['server1', 'server2', 'server3'] : ['server1', 'server2'];
  const names = ['a.txt', 'b.txt', 'c.txt', 'dir/d.txt', 'e f.txt'];
  const ops = opts.ops ?? 60;
  const scale = opts.scale ?? 0.05;
  // Lambda retries a failed asynchronous invocation after about 1 and 2 minutes; a tenth of that,
  // scaled, still puts the retries after most deliveries without making a run minutes long.
  const world = await startWorld({ seed: opts.seed, stores, scale, duplicateShare: 0.3, faultRate: 0.03, retryDelaysMs: [6000 * scale, 12_000 * scale] });
  try {
    const from = Math.floor(rnd() * ops * 0.6);
    const history = await runWorkload(world, rnd, {
      ops,
      users: 4,
      names,
      outage: { store: rnd.pick(stores), from, to: from + Math.floor(ops * 0.2) },
      uploadPauseMs: 2000 * scale,
    });
    await world.quiet();
    const report = await reconcileUntilDone(world.lambda, false, world.unhideFailures);
    await world.quiet();
    const leftover = (await reconcileUntilDone(world.lambda, true, world.unhideFailures)).entries;
    const held = new Map(await Promise.all(world.stores.map(async (s) => [s.name, await contents(s)] as const)));
    const journal = await readJournal(world.api.control);
    const violations = judge(history, held, names);
    const lockBreaks = judgeLocks(history);
    const lockViolations = lockBreaks.filter((b) => !b.known);
    const overCopied = copyBound(history, journal, names, stores.length);
    const faulted = [...new Set([...violations.map((v) => v.key), ...lockViolations.map((v) => v.key), ...overCopied.map((o) => o.key)])];
    const tombstones = await Promise.all(faulted.map((k) => readTombstone(world.api, k)));
    return {
      seed: opts.seed,
      stores,
      violations,
      lockViolations,
      racedLockWrites: lockBreaks.filter((b) => b.known),
      overCopied,
      leftover,
      stats: {
        ops: history.ops.length,
        versions: history.versions.length,
        deletes: history.deletes.length,
        deliveries: world.deliveries.length,
        failedToQueue: world.failed.length,
        replayed: report.replayed?.replayed ?? 0,
        reconcileSteps: report.entries.length,
        locks: history.locks.length,
        forcedUnlocks: history.ops.filter((o) => o.kind === 'unlock' && o.what.includes('(force')).length,
        heldUpdates: journal.filter((e) => e.action === 'queued').length,
        appliedUpdates: journal.filter((e) => e.action === 'applied').length,
      },
      schedule: () =>
        [
          schedule(opts.seed, stores, history, world.deliveries, journal, faulted),
          ...tombstones.map((t) => `tombstone ${JSON.stringify(t)}`),
          `reconcile: ${JSON.stringify({ entries: report.entries.filter((e) => faulted.includes(e.key)), waiting: report.waiting, applied: report.applied, replayed: report.replayed })}`,
        ].join('\n'),
    };
  } finally {
    await world.stop();
  }
}

/**
 * The scheduled reconcile, run again while it fails (a store or the control bucket not answering
 * for a moment) or leaves steps undone, as the next scheduled run would.
 */
async function reconcileUntilDone(deps: Parameters<typeof reconcile>[0], dryRun: boolean, nextRun: () => void): Promise<SyncReport> {
  for (let run = 1; ; run++) {
    nextRun();
    try {
      const report = await reconcile(deps, { force: true, dryRun });
      if ((report.applied?.failed.length ?? 0) === 0 && (report.replayed?.failed ?? 0) === 0) return report;
      if (run >= 5) return report;
    } catch (err) {
      if (run >= 5) throw err;
    }
  }
}

/** Names whose journal shows more copies than their writes allow: the N-1 bound, ping-pong. */
function copyBound(history: History, journal: JournalEvent[], names: string[], n: number) {
  return names
    .map((key) => {
      const writes = new Set(history.versions.filter((v) => v.key === key).map((v) => v.op)).size;
      const deletes = history.deletes.filter((d) => d.key === key).length;
      const copies = journal.filter((e) => e.key === key && (e.action === 'replicate' || e.action === 'reconcile') && e.from !== undefined).length;
      // A version kept aside (lib/settle.ts) competes again while the key has a tombstone, and
      // is copied back to the stores once if it wins (soak seed 40145: an equal-mtime write
      // made later lost to it on ETag, as the rules say).
      const kept = journal.filter((e) => e.key === key && e.action === 'keep').length;
      // A delete can take a copy that is then made again once (its write outlived the delete).
      return { key, copies, allowed: (n - 1) * (writes + deletes + kept) };
    })
    .filter((x) => x.copies > x.allowed);
}

/** Who made an event: a user's operation, or the replication attempt that handled which delivery. */
function describeCause(e: EventRecord): string {
  if (e.by) return `by op${e.by.op} user${e.by.user} ${e.by.opKind}`;
  return e.invocation ? `by the system (handling delivery #${e.invocation.delivery}, attempt ${e.invocation.attempt})` : 'by the system';
}

function schedule(seed: number, stores: string[], h: History, deliveries: Delivery[], journal: JournalEvent[], keys: string[]): string {
  const t0 = Math.min(...h.ops.map((o) => o.startedAt));
  const at = (t: number) => `+${String(t - t0).padStart(6)}ms`;
  const lines = [`seed ${seed}, stores ${stores.join(', ')}; replay: DELIVERY_SEED=${seed} npx jest delivery-faults`];
  for (const key of keys) {
    lines.push(`--- ${key}`);
    for (const o of h.ops.filter((o) => o.key === key)) lines.push(`${at(o.startedAt)} op${o.i} user${o.user} ${o.kind} ${o.what} → ${o.outcome ?? '?'}`);
    for (const v of h.versions.filter((v) => v.key === key)) lines.push(`  version op${v.op} on ${v.store} #${v.order} made ${at(v.made)} mtime ${v.mtime} "${v.text}"`);
    for (const d of h.deletes.filter((d) => d.key === key)) lines.push(`  delete op${d.op} ${d.by} at ${at(d.time)}`);
    for (const l of h.locks.filter((l) => l.key === key)) lines.push(`  lock op${l.op} at ${l.store} by user${l.holder}: events #${l.from + 1} to #${l.to ?? 'end'}; ${l.outcome ?? 'still held'}`);
    for (const e of h.events.filter((e) => e.key === key)) lines.push(`  event #${e.order} ${e.name} ${e.store} ${e.etag ?? ''} ${describeCause(e)}`);
    for (const d of deliveries.filter((d) => d.what.includes(`/${key} `))) lines.push(`  delivery #${d.seq} after ${d.delayMs}ms: ${d.what} → ${d.result ?? 'pending'}`);
    for (const e of journal.filter((e) => e.key === key)) lines.push(`  ${at(Date.parse(e.time))} journal ${e.action} ${e.from ?? ''}→${e.to?.join() ?? ''} ${e.reason ?? ''}`);
  }
  return lines.join('\n');
}
