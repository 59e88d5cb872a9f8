/**
 * The `dfs` command: argument parsing and printing only. Each command's work lives in its own
 * module (get.ts, …); this file wires flags to it and prints the result or the error.
 */
import { Command, CommanderError, Option } from 'commander';
import { version } from '../package.json';
import { httpTransport, lambdaTransport, openDownload, type Transport } from './client';
import { loadConfig } from './config';
import { CliError, EXIT, EXIT_HELP } from './exit';
import { getFile } from './get';
import { clean, describeGet, errorJson, getJson } from './output';
import { barProgress, noProgress } from './progress';

/** Everything the CLI touches of its process, so tests can run it in-process. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Draw progress bars (stderr is a terminal). */
  interactive: boolean;
}

const processIo = (): Io => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  interactive: Boolean(process.stderr.isTTY),
});

const CONNECTION_HELP = `Where the API is (first found wins):
  --endpoint URL, DFS_ENDPOINT, "endpoint" in the config file, http://localhost:3000.
  With --via lambda: DFS_LAMBDA_ENDPOINT / "lambdaEndpoint" (default http://localhost:3002)
  and DFS_FUNCTION / "functionName" (default s3-dfs-local-api).
  Config file: $DFS_CONFIG, else $XDG_CONFIG_HOME/dfs/config.json, else ~/.config/dfs/config.json.`;

const GET_HELP = `
What is saved:
  identical copies (SINGLE)  DIR/NAME; folders in NAME are created inside DIR
  differing copies           one file per version, named after the store(s) holding it:
                             fileB.server1.txt, fileB.server2.txt (README.server1 without
                             an extension; fileB.server1+server3.txt when shared)
  --resolve newest|STORE     only that version, as DIR/NAME
  Existing files are never replaced without --force; if any target exists, nothing is written.
  Files are written under a temporary name and moved into place when complete.

--json prints the API answer with inline content replaced by {"inlineBytes": N} (download
URLs are kept), plus "saved": the paths written. Errors print {"error", "message"}.

Examples:
  $ dfs get fileA.txt                          saves ./fileA.txt
  $ dfs get docs/report.pdf -o ~/Downloads     saves ~/Downloads/docs/report.pdf
  $ dfs get fileB.txt                          copies differ: saves ./fileB.server1.txt
                                               and ./fileB.server2.txt
  $ dfs get fileB.txt --resolve newest --force replaces ./fileB.txt with the newest
  $ dfs get fileB.txt --json | jq .status
  $ dfs get -- -odd-name.txt                   a name that starts with "-"`;

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

/** The options every API command shares. */
function withApiOptions(cmd: Command): Command {
  return cmd
    .option('--endpoint <url>', 'API base URL (overrides DFS_ENDPOINT and the config file)')
    .addOption(new Option('--via <transport>', 'reach the API over http, or invoke its Lambda directly').choices(['http', 'lambda']).default('http'))
    .option('--json', 'print JSON on stdout (errors too) instead of text');
}

function connect(flags: ApiFlags, env: Io['env']): Transport {
  const config = loadConfig({ flags: { endpoint: flags.endpoint }, env });
  return flags.via === 'lambda'
    ? lambdaTransport({ endpoint: config.lambdaEndpoint, functionName: config.functionName })
    : httpTransport({ endpoint: config.endpoint, endpointFrom: config.endpointFrom });
}

const printJson = (io: Io, value: unknown) => io.stdout(`${JSON.stringify(value, null, 2)}\n`);

function printLines(io: Io, { out, err }: { out: string[]; err: string[] }): void {
  if (out.length > 0) io.stdout(`${out.join('\n')}\n`);
  if (err.length > 0) io.stderr(`${err.join('\n')}\n`);
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
    .addHelpText('after', `\nExamples:\n  $ dfs get fileA.txt\n  $ dfs get fileB.txt --resolve newest\n  $ DFS_ENDPOINT=https://abc.execute-api.eu-west-1.amazonaws.com dfs get fileA.txt\n\n${CONNECTION_HELP}\n\n${EXIT_HELP}\n`);

  withApiOptions(
    program
      .command('get')
      .description('download NAME; when the stores hold different versions, save each one')
      .argument('<name>', 'file name (key) in the store, e.g. fileA.txt or docs/a.pdf')
      .option('-o, --output-dir <dir>', 'folder to save into', '.')
      .option('--force', 'replace existing files')
      .option('--resolve <newest|store>', 'when copies differ, save only the newest or that store\'s version, as NAME'),
  )
    .addHelpText('after', `${GET_HELP}\n\n${CONNECTION_HELP}\n\n${EXIT_HELP}\n`)
    .action(async (name: string, flags: GetFlags) => {
      const progress = io.interactive && !flags.json ? await barProgress(process.stderr) : noProgress;
      const result = await getFile(
        () => connect(flags, io.env),
        { name, dir: flags.outputDir, force: Boolean(flags.force), ...(flags.resolve !== undefined ? { resolve: flags.resolve } : {}) },
        { download: (url) => openDownload(url), progress },
      );
      if (flags.json) printJson(io, getJson(result));
      else printLines(io, describeGet(name, result));
      exitCode = result.exitCode;
    });

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
    if (json) printJson(io, { error: 'Usage', message: err.message.replace(/^error: /, '') });
    return EXIT.usage;
  }
  const e = err instanceof CliError ? err : asCliError(err);
  if (json) printJson(io, errorJson(e));
  else io.stderr(`dfs: ${clean(e.message)}\n`);
  if (!(err instanceof CliError) && io.env.DFS_DEBUG) io.stderr(`${(err as Error)?.stack ?? ''}\n`);
  return e.exitCode;
}

function asCliError(err: unknown): CliError {
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
  const code = await run(process.argv.slice(2));
  process.removeListener('exit', stalled);
  process.exitCode = code;
}
