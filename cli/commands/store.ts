/** The commands about the stores as a whole: ls, sync, watch. Parsing and printing only. */
import type { Command } from 'commander';
import { Ctx, type Io } from '../context';
import { CliError } from '../exit';
import { LS_HELP, SYNC_HELP, WATCH_HELP } from '../help';
import { describeCommand } from '../help-format';
import { listAll, rowLocks } from '../ls';
import { LsJson, LsTable, WatchLines, clean, describeApplied, describeReport, errorJson, lsJsonEnd, syncJson } from '../output';
import { syncStores } from '../sync';
import { watchEvents } from '../watch';
import { asCliError } from './errors';
import { positiveInt, seconds, type Exit } from './common';

const commandOf = (args: unknown[]) => args[args.length - 1] as Command;

export function storeCommands(program: Command, io: Io, exit: Exit): void {
  describeCommand(
    program
      .command('ls')
      .description('list every file: index, name, size, time, state across stores, which stores hold it')
      .argument('[prefix]', 'only names starting with this, e.g. docs/')
      .option('--verify', 'settle "unverified" states with a metadata read per file (no bodies)'),
    LS_HELP,
  ).action(async (prefix: string | undefined, ...rest: unknown[]) => {
    const ctx = new Ctx<{ verify?: boolean }>(io, commandOf(rest));
    const table = new LsTable();
    const doc = ctx.json ? new LsJson((t) => io.stdout(t)) : undefined;
    const verify = Boolean(ctx.flags.verify);
    let lockTrouble: string | undefined;
    try {
      const result = await listAll(ctx.connect, { ...(prefix !== undefined ? { prefix } : {}), verify, locks: true }, {
        page: (rows) => (doc ? doc.page(rows) : ctx.say({ out: table.lines(rows), err: [] }, 'data')),
        unavailable: (stores) => ctx.warn(`${stores.map(clean).join(', ')} did not answer; states cover only the stores that did`),
        locks: (locks, trouble) => {
          if (locks) return table.useLocks([...rowLocks(locks)].filter(([name]) => name.startsWith(prefix ?? '')).map(([, l]) => l));
          lockTrouble = trouble?.message ?? 'unknown';
          ctx.warn(`locks not shown: ${clean(lockTrouble)}`);
        },
      });
      if (doc) doc.end({ ...lsJsonEnd(result, verify), ...(lockTrouble !== undefined ? { lockError: lockTrouble } : {}) });
      else if (result.count === 0 && !ctx.flags.quiet) io.stderr(`no files${prefix ? ` starting with ${clean(prefix)}` : ''}\n`);
      exit(result.exitCode);
    } catch (err) {
      // Pages already printed: close the JSON document with the error rather than break it.
      if (!doc?.started) throw err;
      const e: CliError = asCliError(err);
      doc.end(errorJson(e));
      exit(e.exitCode);
    }
  });

  describeCommand(
    program
      .command('sync')
      .description('find every difference between the stores and repair it (newest wins, deletes kept)')
      .option('--dry-run', 'only report what differs and what would be done')
      .option('--force', 'go on past the safety guards (a store down or empty, over 50 % deletes)'),
    SYNC_HELP,
  ).action(async (...rest: unknown[]) => {
    const ctx = new Ctx<{ dryRun?: boolean; force?: boolean }>(io, commandOf(rest));
    const dryRun = Boolean(ctx.flags.dryRun);
    const progress = await ctx.progress();
    const result = await ctx.interruptible((signal) =>
      syncStores(ctx.connect, { dryRun, force: Boolean(ctx.flags.force) }, {
        progress,
        signal,
        onPlan: (report) => {
          // The report is what a dry run was asked for: data, printed even with -q.
          if (!ctx.json) ctx.say(describeReport(report, dryRun), dryRun ? 'data' : 'status');
        },
      }),
    );
    if (ctx.json) ctx.printJson(syncJson(result, dryRun));
    else if (result.applied) ctx.say(describeApplied(result.report.entries.length, result.applied));
    exit(result.exitCode);
  });

  describeCommand(
    program
      .command('watch')
      .description('print what the servers do, live: replication, deletes, reconcile steps')
      .option('--since-start', 'leave out the last minute; show only what happens from now on')
      .option('--count <n>', 'stop after N events', positiveInt('--count'))
      .option('--timeout <seconds>', 'stop after this long (exit 1 if --count events did not come)', seconds),
    WATCH_HELP,
  ).action(async (...rest: unknown[]) => {
    const ctx = new Ctx<{ count?: number; timeout?: number; sinceStart?: boolean }>(io, commandOf(rest));
    const f = ctx.flags;
    const lines = new WatchLines();
    const result = await ctx.interruptible((signal) =>
      watchEvents(
        ctx.connect,
        {
          sinceStart: Boolean(f.sinceStart),
          ...(f.count !== undefined ? { count: f.count } : {}),
          ...(f.timeout !== undefined ? { timeoutMs: f.timeout * 1000 } : {}),
        },
        {
          signal,
          onEvent: (e) => io.stdout(`${ctx.json ? JSON.stringify(e) : lines.line(e)}\n`),
          onTrouble: (message) => {
            if (!ctx.flags.quiet) io.stderr(message === null ? 'dfs: the API answers again\n' : `dfs: warning: ${clean(message)}\n`);
          },
        },
      ),
    );
    exit(result.exitCode);
  });
}
