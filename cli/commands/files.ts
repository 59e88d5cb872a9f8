/**
 * The commands that move files: get, cat, stat, put, rm. Argument parsing and printing only;
 * the work is in the modules named after each command.
 */
import type { Command } from 'commander';
import { openDownload, partSender as makePartSender } from '../client';
import { catFile } from '../cat';
import { Ctx, type Io } from '../context';
import { describeCat, describeGetPrefix, describePutMany, describePutPlan, describeSkipped, describeStat } from '../describe';
import { CliError, EXIT, exitForAnswer, usageError } from '../exit';
import { getFile, readAnswerOf } from '../get';
import { getPrefix, isPrefix } from '../get-many';
import { CAT_HELP, GET_HELP, PUT_HELP, RM_HELP, STAT_HELP } from '../help';
import { describeCommand } from '../help-format';
import { describeGet, describePut, describeRm, getJson, putJson } from '../output';
import { putMany, planUploads } from '../put-many';
import { putStream } from '../put';
import { removeFile } from '../rm';
import { keyProblem } from '../../lib/keys';
import { jobsOption, type Exit } from './common';

interface GetFlags {
  outputDir: string;
  force?: boolean;
  skipExisting?: boolean;
  resolve?: string;
  jobs: number;
}

interface PutFlags {
  as?: string;
  to: string;
  touch?: boolean;
  dryRun?: boolean;
  jobs: number;
}

/** The last argument commander hands an action is its Command. */
const commandOf = (args: unknown[]) => args[args.length - 1] as Command;

export function fileCommands(program: Command, io: Io, exit: Exit): void {
  const download = (ctx: Ctx) => (url: string) => openDownload(url, ctx.timeouts, ctx.debug);

  describeCommand(
    program
      .command('get')
      .description('download NAME (or every file under PREFIX/); when the stores hold different versions, save each one')
      .argument('<name>', 'file name (key) in the store, e.g. fileA.txt or docs/a.pdf; PREFIX/ (a final "/") for every file under it')
      .option('-o, --output-dir <dir>', 'folder to save into; "-" writes the file to stdout (as dfs cat)', '.')
      .option('--force', 'replace existing files')
      .option('--skip-existing', 'leave files that exist alone, saying whether they are up to date')
      .option('--resolve <newest|store>', "when copies differ, save only the newest or that store's version, as NAME")
      .addOption(jobsOption()),
    GET_HELP,
  ).action(async (name: string, ...rest: unknown[]) => {
    const ctx = new Ctx<GetFlags>(io, commandOf(rest));
    const f = ctx.flags;
    if (f.outputDir === '-' && isPrefix(name)) throw usageError(`-o - writes one file to stdout; ${name} names every file under it: give a folder with -o`, 'Usage');
    if (f.outputDir === '-') return exit(await cat(ctx, name, f.resolve));
    if (f.force && f.skipExisting) throw usageError('--force and --skip-existing say opposite things; give one', 'Usage');
    if (isPrefix(name)) {
      process.setMaxListeners(Math.max(process.getMaxListeners(), f.jobs * 2 + 10));
      // Totals come with the listing; files count on the line from the start.
      const meter = ctx.meter({ files: 0 });
      const result = await ctx
        .interruptible((signal) =>
          getPrefix(
            ctx.connect,
            { prefix: name, dir: f.outputDir, force: Boolean(f.force), skipExisting: Boolean(f.skipExisting), jobs: f.jobs, ...(f.resolve !== undefined ? { resolve: f.resolve } : {}) },
            {
              download: download(ctx),
              progress: meter.progress(),
              signal,
              onPlan: (files, bytes) => meter.setTotals({ files, bytes }),
              onDone: (o) => {
                // Downloads report their bytes as they go; inline content counts once saved.
                for (const t of o.result?.saved ?? []) if ('base64' in t.content) meter.addBytes(t.size);
                meter.fileDone(!o.error);
              },
            },
          ),
        )
        .finally(() => meter.stop());
      if (ctx.json) ctx.printJson({ prefix: name, listed: result.listed, files: result.outcomes.map((o) => (o.result ? { name: o.name, ...getJson(o.result) } : { name: o.name, error: o.error.code, message: o.error.message })), skipped: result.skipped, notStarted: result.notStarted, unavailable: result.unavailable });
      else ctx.say(describeGetPrefix(name, result, meter.elapsed(), result.exitCode === EXIT.interrupted));
      return exit(result.exitCode);
    }
    const meter = ctx.meter({});
    const result = await ctx
      .interruptible((signal) =>
        getFile(
          ctx.connect,
          { name, dir: f.outputDir, force: Boolean(f.force), skipExisting: Boolean(f.skipExisting), ...(f.resolve !== undefined ? { resolve: f.resolve } : {}) },
          { download: download(ctx), progress: meter.progress(), signal },
        ).catch((err: unknown) => {
          if (err instanceof CliError && err.exitCode === EXIT.interrupted) throw new CliError(EXIT.interrupted, 'Interrupted', `interrupted: ${name} not saved; no partial file left`);
          throw err;
        }),
      )
      .finally(() => meter.stop());
    if (ctx.json) ctx.printJson({ ...getJson(result), ...(result.skipped ? { skipped: result.skipped } : {}) });
    else {
      ctx.say(describeGet(name, result));
      ctx.say(describeSkipped(result.skipped));
    }
    exit(result.exitCode);
  });

  const cat = async (ctx: Ctx, name: string, resolve: string | undefined): Promise<number> => {
    const meter = ctx.meter({});
    const result = await ctx
      .interruptible((signal) =>
        catFile(ctx.connect, { name, ...(resolve !== undefined ? { resolve } : {}) }, { out: io.stdoutBytes ?? process.stdout, download: download(ctx), signal, onBytes: (b) => meter.addBytes(b - meter.bytes) }),
      )
      .finally(() => meter.stop());
    // stdout holds the bytes: whatever else is said goes to stderr, --json included.
    if (ctx.json && !result.written) io.stderr(`${JSON.stringify(result.answer.status === 'NOT_FOUND' ? result.answer : { ...result.answer, versions: 'versions' in result.answer ? result.answer.versions.map(({ content: _, ...v }) => v) : [] })}\n`);
    else ctx.say(describeCat(name, result));
    return result.exitCode;
  };

  describeCommand(
    program
      .command('cat')
      .description('write NAME to stdout (identical copies; differing ones only with --resolve)')
      .argument('<name>', 'file name (key) in the store')
      .option('--resolve <newest|store>', "when copies differ, write the newest or that store's version"),
    CAT_HELP,
  ).action(async (name: string, ...rest: unknown[]) => {
    const ctx = new Ctx<{ resolve?: string }>(io, commandOf(rest));
    exit(await cat(ctx, name, ctx.flags.resolve));
  });

  describeCommand(
    program
      .command('stat')
      .description("show NAME's copies on every store: size, time, ETag, which version (no download)")
      .argument('<name>', 'file name (key) in the store'),
    STAT_HELP,
  ).action(async (name: string, ...rest: unknown[]) => {
    const ctx = new Ctx(io, commandOf(rest));
    const problem = keyProblem(name);
    if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(name)}: ${problem}`, 'InvalidKey');
    const answer = readAnswerOf(await ctx.connect().send({ op: 'get', key: name, meta: true }));
    if (ctx.json) ctx.printJson(answer);
    else ctx.say(describeStat(name, answer), 'data');
    exit(exitForAnswer(answer.status));
  });

  describeCommand(
    program
      .command('put')
      .description('upload files or folders (- for stdin), by default to every store, under their names or --as')
      .argument('<file...>', 'files and folders to upload; "-" reads stdin (then --as NAME is needed)')
      .option('--as <name>', 'the name (key) in the store for one file; for folders, several files or a name ending in "/", the prefix they go under')
      .option('--to <all|store>', 'write to every store, or to one and let replication spread it', 'all')
      .option('--touch', 'make this the newest version (mtime now), even if another store holds a newer one')
      .option('--dry-run', 'show which files would be stored under which names; send nothing')
      .addOption(jobsOption()),
    PUT_HELP,
  ).action(async (files: string[], ...rest: unknown[]) => {
    const ctx = new Ctx<PutFlags>(io, commandOf(rest));
    const f = ctx.flags;
    if (files.length === 1 && files[0] === '-') {
      if (f.as === undefined) throw usageError('dfs put - reads stdin, which has no name: add --as NAME', 'Usage');
      if (f.dryRun) {
        ctx.say({ out: [`dry run: would store stdin as ${f.as}; nothing sent`], err: [] }, 'data');
        return exit(EXIT.ok);
      }
      const meter = ctx.meter({});
      const result = await ctx
        .interruptible((signal) =>
          putStream(ctx.connect, io.stdin ?? process.stdin, { as: f.as!, to: f.to, ...(f.touch ? { touch: true } : {}) }, { progress: meter.progress(), signal, onBytes: (b) => meter.addBytes(b - meter.bytes), sendPart: partSender(ctx) }),
        )
        .finally(() => meter.stop());
      if (ctx.json) ctx.printJson(putJson(result));
      else ctx.say(describePut(result, f.to));
      return exit(result.exitCode);
    }
    const { uploads, skipped } = await planUploads(files, f.as);
    for (const s of skipped) ctx.warn(`left out ${s}`);
    if (uploads.length === 0) throw usageError(`nothing to upload: ${files.join(', ')} holds no files`, 'NotAFile');
    if (f.dryRun) {
      if (ctx.json) ctx.printJson({ dryRun: true, to: f.to, files: uploads });
      else ctx.say(describePutPlan(uploads, f.to), 'data');
      return exit(EXIT.ok);
    }
    const bytes = uploads.reduce((n, u) => n + u.size, 0);
    const meter = ctx.meter({ files: uploads.length, bytes });
    const result = await ctx
      .interruptible((signal) =>
        putMany(ctx.connect, uploads, { to: f.to, touch: Boolean(f.touch), jobs: f.jobs }, { signal, progress: meter.progress(), sendPart: partSender(ctx), onDone: (o) => {
          // Parts report their bytes as they go; a file sent in one request counts once done.
          if (o.result?.via === 'inline') meter.addBytes(o.upload.size);
          meter.fileDone(!o.error);
        } }),
      )
      .finally(() => meter.stop());
    const single = uploads.length === 1 && files.length === 1 && result.outcomes.length === 1;
    if (single && result.outcomes[0]!.error) throw result.outcomes[0]!.error;
    if (single) {
      const one = result.outcomes[0]!.result!;
      if (ctx.json) ctx.printJson(putJson(one));
      else ctx.say(describePut(one, f.to));
      return exit(one.exitCode);
    }
    if (ctx.json) {
      ctx.printJson({
        files: result.outcomes.map((o) => (o.result ? putJson(o.result) : { file: o.upload.file, key: o.upload.key, error: o.error.code, message: o.error.message })),
        notStarted: result.notStarted.map((u) => u.file),
      });
    } else ctx.say(describePutMany(result, meter.elapsed(), result.exitCode === EXIT.interrupted));
    exit(result.exitCode);
  });

  describeCommand(
    program
      .command('rm')
      .description('delete NAME from every store (asks first unless -y)')
      .argument('<name>', 'file name (key) in the store')
      .option('-y, --yes', 'do not ask; needed when stdin is not a terminal')
      .option('--dry-run', 'show which stores hold NAME and would lose it; delete nothing'),
    RM_HELP,
  ).action(async (name: string, ...rest: unknown[]) => {
    const ctx = new Ctx<{ yes?: boolean; dryRun?: boolean }>(io, commandOf(rest));
    if (ctx.flags.dryRun) {
      const problem = keyProblem(name);
      if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(name)}: ${problem}`, 'InvalidKey');
      const answer = readAnswerOf(await ctx.connect().send({ op: 'get', key: name, meta: true }));
      const stores = answer.status === 'SINGLE' ? answer.copies.map((c) => c.store) : answer.status === 'DIFFERENT' ? answer.versions.flatMap((v) => v.stores) : [];
      if (ctx.json) ctx.printJson({ dryRun: true, key: name, stores, unavailable: answer.unavailable });
      else if (stores.length === 0) ctx.say({ out: [], err: [`dfs: ${name}: not found on any store; nothing to delete`] });
      else ctx.say({ out: [`dry run: would delete ${name} from ${stores.sort().join(', ')}; nothing deleted`], err: [] }, 'data');
      return exit(stores.length === 0 ? EXIT.notFound : EXIT.ok);
    }
    const result = await removeFile(ctx.connect, { name, yes: Boolean(ctx.flags.yes) }, io.confirm ? { confirm: io.confirm } : {});
    if (ctx.json) ctx.printJson(result.answer);
    else ctx.say(describeRm(name, result));
    exit(result.exitCode);
  });
}

const partSender = (ctx: Ctx) => makePartSender(ctx.timeouts, ctx.debug);
