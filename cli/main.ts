/**
 * The `dfs` command: argument parsing and printing only. Each command's work lives in its own
 * module (get.ts, ls.ts, put.ts, rm.ts, sync.ts, watch.ts, token.ts, locking.ts); this file
 * wires flags to it and prints the result or the error. Help texts are in help.ts, wording in
 * output.ts.
 */
import { createInterface } from 'node:readline';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { version } from '../package.json';
import { httpTransport, lambdaTransport, openDownload, type Transport } from './client';
import { configPath, loadConfig } from './config';
import { CliError, EXIT, EXIT_HELP } from './exit';
import { getFile } from './get';
import {
  CONNECTION_HELP,
  EXAMPLES,
  GET_HELP,
  LOCKS_HELP,
  LOCK_HELP,
  LS_HELP,
  PUT_HELP,
  RM_HELP,
  SYNC_HELP,
  TOKEN_CREATE_HELP,
  TOKEN_HELP,
  TOKEN_LIST_HELP,
  TOKEN_REVOKE_HELP,
  UNLOCK_HELP,
  WATCH_HELP,
} from './help';
import { listAll, rowLocks } from './ls';
import { checkReason, listLocks, lockFile, parseTtl, unlockFile } from './locking';
import {
  LsJson,
  LsTable,
  WatchLines,
  clean,
  describeApplied,
  describeGet,
  describeLocked,
  describePut,
  describeReport,
  describeRm,
  describeTokenCreated,
  describeTokenRevoked,
  describeUnlocked,
  errorJson,
  getJson,
  lockJson,
  lockTable,
  lsJsonEnd,
  putJson,
  syncJson,
  tokenTable,
  unlockJson,
} from './output';
import { barProgress, noProgress, type ProgressFactory } from './progress';
import { putFile } from './put';
import { removeFile } from './rm';
import { syncStores } from './sync';
import { parseFileRef } from './target';
import { createToken, listTokens, revokeToken } from './token';
import { watchEvents } from './watch';

/** Everything the CLI touches of its process, so tests can run it in-process. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Draw progress bars (stderr is a terminal). */
  interactive: boolean;
  /** Asks a yes/no question on the terminal; absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
  /** Aborted on Ctrl-C. When absent, commands that stop cleanly listen to SIGINT/SIGTERM themselves. */
  interrupt?: AbortSignal;
}

const processIo = (): Io => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  interactive: Boolean(process.stderr.isTTY),
  ...(process.stdin.isTTY ? { confirm: askOnTerminal } : {}),
});

/** "y" or "yes" (any case) is yes; anything else, Ctrl-C or Ctrl-D is no. */
function askOnTerminal(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    rl.on('SIGINT', () => {
      process.stderr.write('\n');
      rl.close();
    });
    rl.on('close', () => resolve(false));
    rl.question(question, (answer) => {
      resolve(/^y(es)?$/i.test(answer.trim()));
      rl.close();
    });
  });
}

interface ApiFlags {
  endpoint?: string;
  via: 'http' | 'lambda';
  json?: boolean;
}

interface GetFlags extends ApiFlags {
  outputDir: string;
  force?: boolean;
  resolve?: string;
}

interface LsFlags extends ApiFlags {
  verify?: boolean;
}

interface PutFlags extends ApiFlags {
  as?: string;
  to: string;
  touch?: boolean;
}

interface RmFlags extends ApiFlags {
  yes?: boolean;
}

interface SyncFlags extends ApiFlags {
  dryRun?: boolean;
  force?: boolean;
}

interface TokenCreateFlags extends ApiFlags {
  readOnly?: boolean;
}

interface LockFlags extends ApiFlags {
  at?: string;
  reason?: string;
  ttl?: string;
}

interface UnlockFlags extends ApiFlags {
  at?: string;
  force?: boolean;
  discard?: boolean;
  yes?: boolean;
  wait: boolean;
}

interface WatchFlags extends ApiFlags {
  count?: number;
  timeout?: number;
  sinceStart?: boolean;
}

/** The options every API command shares. */
function withApiOptions(cmd: Command): Command {
  return cmd
    .option('--endpoint <url>', 'API base URL (overrides DFS_ENDPOINT and the config file)')
    .addOption(new Option('--via <transport>', 'reach the API over http, or invoke its Lambda directly').choices(['http', 'lambda']).default('http'))
    .option('--json', 'print JSON on stdout (errors too) instead of text');
}

/** The transport of `--via`, configured (cli/config.ts); over HTTP with the token, when there is one. */
function connect(flags: ApiFlags, env: Io['env']): Transport {
  const config = loadConfig({ flags: { endpoint: flags.endpoint }, env });
  if (flags.via === 'lambda') return lambdaTransport({ endpoint: config.lambdaEndpoint, functionName: config.functionName });
  return httpTransport({
    endpoint: config.endpoint,
    endpointFrom: config.endpointFrom,
    configPath: config.configPath,
    ...(config.token ? { token: config.token } : {}),
  });
}

const printJson = (io: Io, value: unknown) => io.stdout(`${JSON.stringify(value, null, 2)}\n`);

function printLines(io: Io, { out, err }: { out: string[]; err: string[] }): void {
  if (out.length > 0) io.stdout(`${out.join('\n')}\n`);
  if (err.length > 0) io.stderr(`${err.join('\n')}\n`);
}

/** Bars on stderr only when it is a terminal and the output is not JSON. */
async function progressFor(io: Io, flags: ApiFlags): Promise<ProgressFactory> {
  return io.interactive && !flags.json ? barProgress(process.stderr) : noProgress;
}

/**
 * Runs `work` with a signal aborted by the first Ctrl-C (or SIGTERM), so the command can stop
 * cleanly (put aborts its upload); a second one exits at once.
 */
async function interruptible<T>(io: Io, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (io.interrupt) return work(io.interrupt);
  const ctrl = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (ctrl.signal.aborted) process.exit(signal === 'SIGINT' ? EXIT.interrupted : 143);
    ctrl.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(ctrl.signal);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

function positiveInt(what: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`${what} must be a whole number of 1 or more.`);
    }
    return Number(value);
  };
}

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a number of seconds above 0 is needed.');
  return n;
}

const helpAfter = (text: string) => `${text}\n\n${CONNECTION_HELP}\n\n${EXIT_HELP}\n`;

/**
 * Adds the API command `name` to `program`: `define` gives its description, arguments and own
 * options; the options every API command shares and the help text `help` come after them.
 */
function apiCommand(program: Command, name: string, help: string, define: (cmd: Command) => Command): Command {
  return withApiOptions(define(program.command(name))).addHelpText('after', helpAfter(help));
}

/** Runs one `dfs` invocation (`argv` without node and script) and returns its exit code. */
export async function run(argv: string[], io: Io = processIo()): Promise<number> {
  const json = argv.includes('--json');
  let exitCode: number = EXIT.ok;

  const program = new Command('dfs')
    .description('Client of s3-dfs, a file store replicated over several S3 buckets ("stores").')
    .version(version, '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (t) => io.stdout(t),
      writeErr: (t) => (json ? undefined : io.stderr(t)),
      outputError: (t, write) => write(t),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `\n${EXAMPLES}\n\n${CONNECTION_HELP}\n\n${EXIT_HELP}\n`);

  apiCommand(program, 'get', GET_HELP, (cmd) =>
    cmd
      .description('download NAME; when the stores hold different versions, save each one')
      .argument('<name>', 'file name (key) in the store, e.g. fileA.txt or docs/a.pdf')
      .option('-o, --output-dir <dir>', 'folder to save into', '.')
      .option('--force', 'replace existing files')
      .option('--resolve <newest|store>', 'when copies differ, save only the newest or that store\'s version, as NAME'),
  )
    .action(async (name: string, flags: GetFlags) => {
      const result = await getFile(
        () => connect(flags, io.env),
        { name, dir: flags.outputDir, force: Boolean(flags.force), ...(flags.resolve !== undefined ? { resolve: flags.resolve } : {}) },
        { download: (url) => openDownload(url), progress: await progressFor(io, flags) },
      );
      if (flags.json) printJson(io, getJson(result));
      else printLines(io, describeGet(name, result));
      exitCode = result.exitCode;
    });

  apiCommand(program, 'ls', LS_HELP, (cmd) =>
    cmd
      .description('list every file: index, name, size, time, state across stores, which stores hold it')
      .argument('[prefix]', 'only names starting with this, e.g. docs/')
      .option('--verify', 'settle "unverified" states with a metadata read per file (no bodies)'),
  )
    .action(async (prefix: string | undefined, flags: LsFlags) => {
      const table = new LsTable();
      const doc = flags.json ? new LsJson((t) => io.stdout(t)) : undefined;
      const verify = Boolean(flags.verify);
      let lockTrouble: string | undefined;
      try {
        const result = await listAll(() => connect(flags, io.env), { ...(prefix !== undefined ? { prefix } : {}), verify, locks: true }, {
          page: (rows) => (doc ? doc.page(rows) : printLines(io, { out: table.lines(rows), err: [] })),
          unavailable: (stores) => {
            if (!doc) io.stderr(`warning: ${stores.map(clean).join(', ')} did not answer; states cover only the stores that did\n`);
          },
          locks: (locks, trouble) => {
            if (locks) return table.useLocks([...rowLocks(locks)].filter(([name]) => name.startsWith(prefix ?? '')).map(([, l]) => l));
            lockTrouble = trouble?.message ?? 'unknown';
            if (!doc) io.stderr(`warning: locks not shown: ${clean(lockTrouble)}\n`);
          },
        });
        if (doc) doc.end({ ...lsJsonEnd(result, verify), ...(lockTrouble !== undefined ? { lockError: lockTrouble } : {}) });
        else if (result.count === 0) io.stderr(`no files${prefix ? ` starting with ${clean(prefix)}` : ''}\n`);
        exitCode = result.exitCode;
      } catch (err) {
        // Pages already printed: close the JSON document with the error rather than break it.
        if (!doc?.started) throw err;
        const e = asCliError(err);
        doc.end(errorJson(e));
        exitCode = e.exitCode;
      }
    });

  apiCommand(program, 'put', PUT_HELP, (cmd) =>
    cmd
      .description('upload FILE, by default to every store, under its base name or --as NAME')
      .argument('<file>', 'the local file to upload')
      .option('--as <name>', 'file name (key) in the store; default the base name of FILE')
      .option('--to <all|store>', 'write to every store, or to one and let replication spread it', 'all')
      .option('--touch', 'make this the newest version (mtime now), even if another store holds a newer one'),
  )
    .action(async (file: string, flags: PutFlags) => {
      const progress = await progressFor(io, flags);
      const result = await interruptible(io, (signal) =>
        putFile(() => connect(flags, io.env), { file, to: flags.to, touch: Boolean(flags.touch), ...(flags.as !== undefined ? { as: flags.as } : {}) }, { progress, signal }),
      );
      if (flags.json) printJson(io, putJson(result));
      else printLines(io, describePut(result, flags.to));
      exitCode = result.exitCode;
    });

  apiCommand(program, 'rm', RM_HELP, (cmd) =>
    cmd
      .description('delete NAME from every store (asks first unless -y)')
      .argument('<name>', 'file name (key) in the store')
      .option('-y, --yes', 'do not ask; needed when stdin is not a terminal'),
  )
    .action(async (name: string, flags: RmFlags) => {
      const result = await removeFile(() => connect(flags, io.env), { name, yes: Boolean(flags.yes) }, io.confirm ? { confirm: io.confirm } : {});
      if (flags.json) printJson(io, result.answer);
      else printLines(io, describeRm(name, result));
      exitCode = result.exitCode;
    });

  apiCommand(program, 'sync', SYNC_HELP, (cmd) =>
    cmd
      .description('find every difference between the stores and repair it (newest wins, deletes kept)')
      .option('--dry-run', 'only report what differs and what would be done')
      .option('--force', 'go on past the safety guards (a store down or empty, over 50 % deletes)'),
  )
    .action(async (flags: SyncFlags) => {
      const dryRun = Boolean(flags.dryRun);
      const progress = await progressFor(io, flags);
      const result = await interruptible(io, (signal) =>
        syncStores(() => connect(flags, io.env), { dryRun, force: Boolean(flags.force) }, {
          progress,
          signal,
          onPlan: (report) => {
            if (!flags.json) printLines(io, describeReport(report, dryRun));
          },
        }),
      );
      if (flags.json) printJson(io, syncJson(result, dryRun));
      else if (result.applied) printLines(io, describeApplied(result.report.entries.length, result.applied));
      exitCode = result.exitCode;
    });

  apiCommand(program, 'watch', WATCH_HELP, (cmd) =>
    cmd
      .description('print what the servers do, live: replication, deletes, reconcile steps')
      .option('--since-start', 'leave out the last minute; show only what happens from now on')
      .option('--count <n>', 'stop after N events', positiveInt('--count'))
      .option('--timeout <seconds>', 'stop after this long (exit 1 if --count events did not come)', seconds),
  )
    .action(async (flags: WatchFlags) => {
      const lines = new WatchLines();
      const result = await interruptible(io, (signal) =>
        watchEvents(
          () => connect(flags, io.env),
          {
            sinceStart: Boolean(flags.sinceStart),
            ...(flags.count !== undefined ? { count: flags.count } : {}),
            ...(flags.timeout !== undefined ? { timeoutMs: flags.timeout * 1000 } : {}),
          },
          {
            signal,
            onEvent: (e) => io.stdout(`${flags.json ? JSON.stringify(e) : lines.line(e)}\n`),
            onTrouble: (message) => io.stderr(message === null ? 'dfs: the API answers again\n' : `warning: ${clean(message)}\n`),
          },
        ),
      );
      exitCode = result.exitCode;
    });

  apiCommand(program, 'lock', LOCK_HELP, (cmd) =>
    cmd
      .description("lock a file at one store: others' writes into its copy there are held until dfs unlock")
      .argument('<file>', 'INDEX as dfs ls prints it (0, 1, …), or NAME; ./NAME for a name that is a number')
      .option('--at <store>', 'the store to lock it at (default: the first store)')
      .option('--reason <text>', 'why, for others to see in dfs locks (at most 200 characters)')
      .option('--ttl <duration>', 'how long it lasts unless renewed: 30m, 2h, 1d, 1h30m, 3600 (seconds); default 1h, 1m to 7d'),
  )
    .action(async (file: string, flags: LockFlags) => {
      const ref = parseFileRef(file);
      const ttl = flags.ttl !== undefined ? parseTtl(flags.ttl) : undefined;
      const reason = flags.reason !== undefined ? checkReason(flags.reason) : undefined;
      const result = await lockFile(
        () => connect(flags, io.env),
        { ref, ...(flags.at !== undefined ? { store: flags.at } : {}), ...(reason !== undefined ? { reason } : {}), ...(ttl !== undefined ? { ttl } : {}) },
        { unavailable: (stores) => warnIndexes(io, flags, stores) },
      );
      if (flags.json) printJson(io, lockJson(result));
      else printLines(io, describeLocked(result));
      exitCode = result.exitCode;
    });

  apiCommand(program, 'unlock', UNLOCK_HELP, (cmd) =>
    cmd
      .description('unlock a file: its held updates are applied in order (or dropped with --discard)')
      .argument('<file>', 'INDEX as dfs ls prints it (0, 1, …), or NAME; ./NAME for a name that is a number')
      .option('--at <store>', 'the store it is locked at (default: the one store where it is)')
      .option('--force', "take over someone else's lock (shows whose first, and asks)")
      .option('--discard', 'drop the held updates instead of applying them (shows how many first, and asks)')
      .option('-y, --yes', 'do not ask; needed for --force or --discard when stdin is not a terminal')
      .option('--no-wait', 'do not follow a long unlock to its end: it goes on by itself'),
  )
    .action(async (file: string, flags: UnlockFlags) => {
      const ref = parseFileRef(file);
      const progress = await progressFor(io, flags);
      const result = await interruptible(io, (signal) =>
        unlockFile(
          () => connect(flags, io.env),
          { ref, ...(flags.at !== undefined ? { store: flags.at } : {}), force: Boolean(flags.force), discard: Boolean(flags.discard), yes: Boolean(flags.yes), wait: flags.wait },
          { progress, signal, unavailable: (stores) => warnIndexes(io, flags, stores), ...(io.confirm ? { confirm: io.confirm } : {}) },
        ),
      );
      if (flags.json) printJson(io, unlockJson(result));
      else printLines(io, describeUnlocked(result));
      exitCode = result.exitCode;
    });

  apiCommand(program, 'locks', LOCKS_HELP, (cmd) => cmd.description('list every lock: file, store, holder, since, expiry, updates held, reason'))
    .action(async (flags: ApiFlags) => {
      const result = await listLocks(() => connect(flags, io.env));
      if (flags.json) printJson(io, result.answer);
      else if (result.answer.locks.length === 0) io.stderr('no locks\n');
      else printLines(io, { out: lockTable(result.answer.locks), err: [] });
      exitCode = result.exitCode;
    });

  const tokens = program
    .command('token')
    .description("make, list and revoke the API's tokens (needs a write token)")
    .addHelpText('after', `${TOKEN_HELP}\n\n${EXIT_HELP}\n`);

  apiCommand(tokens, 'create', TOKEN_CREATE_HELP, (cmd) =>
    cmd
      .description('make a token named NAME and print it, once')
      .argument('<name>', 'who the token is for, e.g. ann or ci (a-z, 0-9, "-")')
      .option('--read-only', 'the token may only read (get, ls, watch, sync --dry-run)'),
  )
    .action(async (name: string, flags: TokenCreateFlags) => {
      const result = await createToken(() => connect(flags, io.env), { name, scope: flags.readOnly ? 'read' : 'write' });
      if (flags.json) printJson(io, result.answer);
      else printLines(io, describeTokenCreated(result.answer, configPath(io.env)));
      exitCode = result.exitCode;
    });

  apiCommand(tokens, 'list', TOKEN_LIST_HELP, (cmd) => cmd.description('list every token: name, scope, when made and by whom'))
    .action(async (flags: ApiFlags) => {
      const result = await listTokens(() => connect(flags, io.env));
      if (flags.json) printJson(io, result.answer);
      else if (result.answer.tokens.length === 0) io.stderr('no tokens\n');
      else printLines(io, { out: tokenTable(result.answer.tokens), err: [] });
      exitCode = result.exitCode;
    });

  apiCommand(tokens, 'revoke', TOKEN_REVOKE_HELP, (cmd) =>
    cmd
      .description('revoke the token named NAME (asks first unless -y)')
      .argument('<name>', 'the token\'s name, as dfs token list shows it')
      .option('-y, --yes', 'do not ask; needed when stdin is not a terminal'),
  )
    .action(async (name: string, flags: RmFlags) => {
      const result = await revokeToken(() => connect(flags, io.env), { name, yes: Boolean(flags.yes) }, io.confirm ? { confirm: io.confirm } : {});
      if (flags.json) printJson(io, result.answer);
      else printLines(io, describeTokenRevoked(name));
      exitCode = result.exitCode;
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    return report(err, io, json);
  }
}

/** An index counted without some store: the file at it may not be the one `dfs ls` showed. */
function warnIndexes(io: Io, flags: ApiFlags, stores: string[]): void {
  if (!flags.json) io.stderr(`warning: ${stores.map(clean).join(', ')} did not answer; indexes count only the stores that did\n`);
}

function report(err: unknown, io: Io, json: boolean): number {
  if (err instanceof CommanderError) {
    // Help and --version "fail" with exit code 0; anything else commander refuses is usage.
    if (err.exitCode === 0) return EXIT.ok;
    if (json) printJson(io, { error: 'Usage', message: err.message.replace(/^error: /, '') });
    return EXIT.usage;
  }
  const e = asCliError(err);
  if (json) printJson(io, errorJson(e));
  else io.stderr(`dfs: ${clean(e.message)}\n`);
  if (!(err instanceof CliError) && io.env.DFS_DEBUG) io.stderr(`${(err as Error)?.stack ?? ''}\n`);
  return e.exitCode;
}

function asCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  // A local file system refusal (EACCES, ENOSPC, EROFS…) says itself what went wrong.
  if (typeof (err as NodeJS.ErrnoException)?.syscall === 'string') return new CliError(EXIT.error, 'FileSystem', (err as Error).message, {}, { cause: err });
  return new CliError(EXIT.error, 'Internal', `unexpected error: ${(err as Error)?.message ?? String(err)}`, {}, { cause: err });
}

/** Entry point of bin/dfs.js. */
export async function main(): Promise<void> {
  // Should a promise never settle, Node exits when the loop runs dry: that must not look like success.
  process.exitCode = EXIT.error;
  const stalled = (code: number) => {
    if (code === EXIT.error) process.stderr.write('dfs: internal error: stopped before finishing\n');
  };
  process.once('exit', stalled);
  // `dfs ls | head`, `dfs watch | grep -m1`: the reader is gone, which is not an error of ours.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.removeListener('exit', stalled);
    process.exit(EXIT.ok);
  });
  const code = await run(process.argv.slice(2));
  process.removeListener('exit', stalled);
  process.exitCode = code;
}
