/**
 * The `dfs` CLI as the benchmarks see it: which commands and flags exist right now (the CLI
 * is growing while the bench is written), and how to run one under /usr/bin/time.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './child';
import { runCommand, type CommandOptions, type CommandRun } from './peers';

const DFS = join(ROOT, 'bin', 'dfs.js');
const run = promisify(execFile);

async function help(args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run(process.execPath, [DFS, ...args, '--help'], { cwd: ROOT, env: process.env });
    return stdout;
  } catch {
    return undefined;
  }
}

/**
 * Why `dfs COMMAND` cannot be benchmarked yet, or undefined when it can: the command must be
 * listed by `dfs --help` and its own help must show every flag in `flags`.
 */
export async function missingCli(command: string, flags: string[] = []): Promise<string | undefined> {
  const top = await help([]);
  if (top === undefined) return '`node bin/dfs.js --help` failed';
  // The block after "Commands:" (commander's layout) or "COMMANDS" (gh's, since issue 12) up to
  // the first blank line; a command starts its line after two spaces.
  const block = top.slice(top.search(/^(Commands:|COMMANDS)$/m)).split('\n\n')[0]!.split('\n').slice(1);
  const commands = block.flatMap((l) => /^ {2}([a-z][\w-]*)/.exec(l)?.[1] ?? []).filter((c) => c !== 'help');
  if (!commands.includes(command)) return `\`dfs ${command}\` does not exist yet (dfs --help lists: ${commands.join(', ') || 'no command'})`;
  const own = (await help([command])) ?? '';
  const absent = flags.filter((f) => !own.includes(f));
  return absent.length ? `\`dfs ${command}\` has no ${absent.join(', ')} yet` : undefined;
}

/** Runs `dfs ARGS` (bin/dfs.js, bundled on its first run) under /usr/bin/time. */
export function runDfs(args: string[], opts: CommandOptions = {}): Promise<CommandRun> {
  return runCommand(process.execPath, [DFS, ...args], { cwd: ROOT, ...opts });
}

/**
 * Runs `dfs ARGS` once as a trial; returns why it cannot be benchmarked (the command exists but
 * the API it talks to does not serve it yet, say), or undefined when it worked.
 */
export async function trialDfs(args: string[], opts: CommandOptions = {}): Promise<string | undefined> {
  try {
    await runDfs(args, opts);
    return undefined;
  } catch (err) {
    const text = (err as Error).message.replace(/^[\s\S]*? exited (\d+): /, 'exit $1: ');
    let detail = text;
    try {
      const json = JSON.parse(text.slice(text.indexOf('{'))) as { error?: string; message?: string };
      detail = `${text.slice(0, text.indexOf('{')).trim()} ${json.error ?? ''}: ${json.message ?? ''}`;
    } catch {
      // not JSON: keep the text
    }
    return `\`dfs ${args[0]}\` does not work against the local stack yet (${detail.replace(/\s+/g, ' ').slice(0, 300)})`;
  }
}

/**
 * runDfs, tried a second time when the first fails. The local stack rebuilds and reloads its
 * handlers whenever lib/ or handlers/ change (serverless-esbuild's watch), dropping requests in
 * flight; in a working tree others edit, a long command can lose its connection that way. The
 * first failure is returned so the row can say so.
 */
export async function runDfsRetried(args: string[], opts: CommandOptions = {}): Promise<{ run: CommandRun; failedOnce?: string }> {
  try {
    return { run: await runDfs(args, opts) };
  } catch (err) {
    const failedOnce = (err as Error).message.replace(/\s+/g, ' ').slice(0, 300);
    return { run: await runDfs(args, opts), failedOnce };
  }
}
