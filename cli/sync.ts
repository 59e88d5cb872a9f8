/**
 * `dfs sync`: asks the API for a dry-run plan (what reconcile would copy and delete, and why),
 * and unless `--dry-run` applies it through POST /reconcile/apply in batches, so a long repair
 * shows progress and no request runs into API Gateway's 29 s. Each step is re-decided by the
 * server before it writes, so applying a plan that aged a little is safe.
 * No printing here; the caller formats the report (cli/output.ts).
 */
import type { PlanEntry, SyncReport } from '../lib/types';
import { appliedOf as sharedAppliedOf, syncReportOf } from '../client/answers';
import type { ApiResult, Transport } from './client';
import { CliError, cliGuard, EXIT, errorForResponse, type ExitCode } from './exit';
import type { ProgressFactory } from './progress';

/** The API's largest batch (lib/sync.ts APPLY_BATCH). */
export const APPLY_BATCH = 100;

export interface SyncOptions {
  dryRun: boolean;
  /** Go past the server's safety guards. */
  force: boolean;
}

export interface SyncIo {
  progress: ProgressFactory;
  /** Ctrl-C: no further batch is sent. */
  signal: AbortSignal;
  /** Called with the plan before anything is applied, so it can be shown first. */
  onPlan?: (report: SyncReport) => void;
}

export interface Applied {
  done: number;
  failed: { key: string; error: string }[];
  /** Entries never sent: a batch request failed, or Ctrl-C. */
  notAttempted: number;
  batches: number;
}

export interface SyncResult {
  /** The dry-run report the plan came from. */
  report: SyncReport;
  applied?: Applied;
  exitCode: ExitCode;
}

/**
 * Runs the dry run, then applies its plan unless `dryRun`. Throws CliError: 7 when a safety
 * guard refuses (409), 5 when no store answered, the mapped error of any other refusal of the
 * dry run. Failed steps are a result (exit 1); so is a batch request that fails, after which no
 * further batch is sent. Exit 4 for a dry run that found differences, 0 when nothing differs or
 * every step applied, 130 when interrupted between batches.
 */
export async function syncStores(connect: () => Transport, opts: SyncOptions, io: SyncIo): Promise<SyncResult> {
  const api = connect();
  // Replication events that failed every retry come first: a delete among them must be known
  // before the plan, or the plan would copy the deleted file back. An older server without
  // the route (404) has nothing to replay.
  if (!opts.dryRun) {
    const replay = await api.send({ op: 'replayFailures' }, { signal: io.signal });
    if (replay.status !== 200 && replay.status !== 404) throw errorForResponse(replay.status, replay.body, 'nothing was replayed');
  }
  const report = reportOf(await api.send({ op: 'reconcile', dryRun: true, force: opts.force }, { signal: io.signal }));
  io.onPlan?.(report);
  if (report.entries.length === 0) return { report, exitCode: EXIT.ok };
  if (opts.dryRun) return { report, exitCode: EXIT.different };

  const applied: Applied = { done: 0, failed: [], notAttempted: 0, batches: 0 };
  const bar = io.progress('sync', report.entries.length, 'entries');
  try {
    for (let start = 0; start < report.entries.length; start += APPLY_BATCH) {
      const batch = report.entries.slice(start, start + APPLY_BATCH);
      if (io.signal.aborted) {
        applied.notAttempted = report.entries.length - start;
        break;
      }
      let outcome: { done: number; failed: { key: string; error: string }[] };
      try {
        outcome = appliedOf(await api.send({ op: 'applyPlan', entries: batch, ...(opts.force ? { force: true } : {}) }), batch);
      } catch (err) {
        // The batch may or may not have run; the next `dfs sync` finds whatever is left.
        if (err instanceof CliError && err.exitCode === EXIT.interrupted) {
          applied.notAttempted = report.entries.length - start;
          break;
        }
        const why = err instanceof CliError ? err.message : (err as Error).message;
        applied.failed.push(...batch.map((e) => ({ key: e.key, error: `its batch failed (${why}); some of its steps may have run` })));
        applied.notAttempted = report.entries.length - start - batch.length;
        applied.batches += 1;
        break;
      }
      applied.batches += 1;
      applied.done += outcome.done;
      applied.failed.push(...outcome.failed);
      bar.update(start + batch.length);
    }
  } finally {
    bar.stop();
  }
  if (io.signal.aborted && applied.notAttempted > 0) {
    throw new CliError(EXIT.interrupted, 'Interrupted', `interrupted: ${applied.done} of ${report.entries.length} steps applied; run dfs sync again to finish`, { applied });
  }
  const exitCode = applied.failed.length > 0 || applied.notAttempted > 0 ? EXIT.error : EXIT.ok;
  return { report, applied, exitCode };
}

/** The SyncReport of a 200; a 409 is a guard refusing (exit 7), other failures their CliError. */
export function reportOf(reply: ApiResult): SyncReport {
  if (reply.status === 409) {
    const said = (reply.body as { message?: unknown } | null)?.message;
    return refused(typeof said === 'string' ? said : 'a safety guard refused');
  }
  return cliGuard(syncReportOf)(reply);
}

function refused(message: string): never {
  // The API speaks of its `force` parameter; here it is the --force flag.
  const said = message.replace(/\buse force\b/g, 'add --force');
  const hint = said.includes('--force') ? '' : '; add --force to go on anyway';
  throw new CliError(EXIT.refused, 'Conflict', `refused by a safety guard: ${said}${hint}`, { hint: 'dfs sync --force' });
}

const appliedOf = cliGuard(sharedAppliedOf);
