/**
 * The `dfs` command: the program, its global flags and the one place errors are printed. The
 * commands are wired in cli/commands/ (parsing and printing only); their work lives in the
 * modules named after them (get.ts, put.ts, ls.ts, …). Help texts are in help.ts, laid out by
 * help-format.ts; wording in output.ts and describe.ts.
 */
import { Command, CommanderError, Option } from 'commander';
import { version } from '../package.json';
import { fileCommands } from './commands/files';
import { storeCommands } from './commands/store';
import { lockCommands, selfCommands, tokenCommands } from './commands/admin';
import { asCliError } from './commands/errors';
import { processIo, type Io } from './context';
import { CliError, EXIT } from './exit';
import { EXAMPLES } from './help';
import { formatHelp, setRootExamples } from './help-format';
import { clean, errorJson } from './output';

export type { Io } from './context';

/** The flags every command takes, before or after its name: `dfs --json ls` = `dfs ls --json`. */
function withGlobalFlags(program: Command): Command {
  return program
    .option('--endpoint <url>', 'API base URL (overrides DFS_ENDPOINT and the config file)')
    .addOption(new Option('--via <transport>', 'reach the API over http, or invoke its Lambda directly').choices(['http', 'lambda']).default('http'))
    .option('--json', 'print JSON on stdout (errors too) instead of text')
    .option('-q, --quiet', 'print only errors and what was asked for (listings, file bytes), no progress')
    .option('-v, --debug', 'print each request on stderr: method, path, status, time, request id (never a token)');
}

/** Runs one `dfs` invocation (`argv` without node and script) and returns its exit code. */
export async function run(argv: string[], io: Io = processIo()): Promise<number> {
  const json = argv.includes('--json');
  let exitCode: number = EXIT.ok;
  const exit = (code: number) => {
    exitCode = code;
  };

  const program = withGlobalFlags(
    new Command('dfs')
      .description('dfs: the client of s3-dfs, a file store replicated over several S3 buckets ("stores").')
      .version(version, '-V, --version', 'print the version (dfs version: with the commit and build)')
      .helpOption('-h, --help', 'show help for a command')
      .exitOverride()
      .configureHelp({ showGlobalOptions: true, formatHelp })
      .configureOutput({
        writeOut: (t) => io.stdout(t),
        writeErr: (t) => (json ? undefined : io.stderr(t)),
        // One prefix for every error: commander's own say "error: …".
        outputError: (t, write) => write(t.replace(/^error: /, 'dfs: ')),
      })
      .showHelpAfterError('(add --help for usage)'),
  );
  setRootExamples(EXAMPLES);
  fileCommands(program, io, exit);
  storeCommands(program, io, exit);
  lockCommands(program, io, exit);
  tokenCommands(program, io, exit);
  selfCommands(program, io, exit);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    return report(err, io, json);
  }
}

function report(err: unknown, io: Io, json: boolean): number {
  if (err instanceof CommanderError) {
    // Help and --version "fail" with exit code 0; anything else commander refuses is usage.
    if (err.exitCode === 0) return EXIT.ok;
    if (json) io.stdout(`${JSON.stringify({ error: 'Usage', message: err.message.replace(/^error: /, '') }, null, 2)}\n`);
    return EXIT.usage;
  }
  const e = asCliError(err);
  if (json) io.stdout(`${JSON.stringify(errorJson(e), null, 2)}\n`);
  else io.stderr(`dfs: ${clean(e.message)}\n`);
  if (!(err instanceof CliError) && io.env.DFS_DEBUG) io.stderr(`${(err as Error)?.stack ?? ''}\n`);
  return e.exitCode;
}

/** Entry point of bin/dfs.js. */
export async function main(): Promise<void> {
  // Should a promise never settle, Node exits when the loop runs dry: that must not look like success.
  process.exitCode = EXIT.error;
  const stalled = (code: number) => {
    if (code === EXIT.error) process.stderr.write('dfs: internal error: stopped before finishing\n');
  };
  process.once('exit', stalled);
  // `dfs ls | head`, `dfs cat big | head -c 10`: the reader is gone, which is not an error of ours.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.removeListener('exit', stalled);
    process.exit(EXIT.ok);
  });
  const code = await run(process.argv.slice(2));
  process.removeListener('exit', stalled);
  process.exitCode = code;
}
