/**
 * `dfs get PREFIX/`: every file whose name starts with PREFIX/, each saved as `dfs get NAME`
 * saves it (cli/get.ts, cli/save.ts: inside DIR, never over a file without --force), a few at a
 * time. Existing files are looked for before anything is fetched, so a refusal writes nothing.
 * No printing here.
 */
import { lstat } from 'node:fs/promises';
import type { FileEntry } from '../lib/types';
import { keyProblem } from '../lib/keys';
import type { Transport } from './client';
import { CliError, EXIT, usageError, type ExitCode } from './exit';
import { getFile, type GetResult, type Skipped } from './get';
import { listAll } from './ls';
import { sameContent } from './local';
import type { WriteOptions } from './save';
import { targetPath, toTargets } from './save';

export interface PrefixOptions {
  /** Ends with "/". */
  prefix: string;
  dir: string;
  force: boolean;
  skipExisting: boolean;
  resolve?: string;
  jobs: number;
}

export type GetOutcome = { name: string; result: GetResult; error?: undefined } | { name: string; result?: undefined; error: CliError };

export interface PrefixResult {
  /** Names listed under the prefix. */
  listed: number;
  outcomes: GetOutcome[];
  /** Left alone by --skip-existing, without a request. */
  skipped: Skipped[];
  notStarted: string[];
  unavailable: string[];
  exitCode: ExitCode;
}

/** True for a NAME that asks for a folder's files: it ends with "/". */
export const isPrefix = (name: string) => name.endsWith('/');

/**
 * Lists PREFIX and saves each file. Throws a usage CliError for an invalid prefix, and the
 * Exists CliError (exit 1, nothing written) when, without --force or --skip-existing, any file
 * to save exists already. Per-file failures are outcomes; the exit code is 130 when interrupted,
 * else the first failure's, else 4 when some file's copies differ (saved side by side), else 0;
 * 3 when nothing is listed under PREFIX.
 */
export interface PrefixIo extends Omit<WriteOptions, 'force'> {
  signal: AbortSignal;
  /** Once the listing is read: the files to fetch and their bytes. */
  onPlan?: (files: number, bytes: number) => void;
  /** Each name once done, saved or not. */
  onDone?: (outcome: GetOutcome) => void;
}

export async function getPrefix(connect: () => Transport, opts: PrefixOptions, io: PrefixIo): Promise<PrefixResult> {
  const folder = opts.prefix.slice(0, -1);
  const problem = folder === '' ? 'it is empty' : keyProblem(folder);
  if (problem !== undefined) throw usageError(`invalid prefix ${JSON.stringify(opts.prefix)}: ${problem}`, 'InvalidKey');
  const entries: FileEntry[] = [];
  const unavailable = new Set<string>();
  await listAll(connect, { prefix: opts.prefix, verify: false }, { page: (rows) => entries.push(...rows), unavailable: (s) => s.forEach((x) => unavailable.add(x)) });
  const result = (outcomes: GetOutcome[], skipped: Skipped[], notStarted: string[]): PrefixResult => ({
    listed: entries.length,
    outcomes,
    skipped,
    notStarted,
    unavailable: [...unavailable],
    exitCode: prefixExit(entries.length, outcomes, io.signal.aborted),
  });
  if (entries.length === 0) return result([], [], []);

  // The file each name becomes when its copies agree; differing copies are checked when fetched.
  const todo: string[] = [];
  const skipped: Skipped[] = [];
  const existing: string[] = [];
  for (const e of entries) {
    const [t] = toTargets(opts.dir, [{ name: e.name, size: e.size, mtime: e.mtime, stores: [], newest: true, content: { base64: '' } }]);
    targetPath(opts.dir, e.name); // throws for a name that would land outside DIR
    const st = await lstat(t!.path).catch(() => null);
    if (!st || opts.force) todo.push(e.name);
    else if (opts.skipExisting && st.isFile()) skipped.push({ shown: t!.shown, upToDate: await sameAsListed(t!.path, e) });
    else if (opts.skipExisting) todo.push(e.name); // a folder in the way: getFile says so
    else existing.push(t!.shown);
  }
  if (existing.length > 0) {
    const shown = existing.slice(0, 5).join(', ') + (existing.length > 5 ? ` and ${existing.length - 5} more` : '');
    throw new CliError(EXIT.error, 'Exists', `not overwriting ${shown}; nothing written (add --force to replace, or --skip-existing to leave them)`, { existing });
  }

  const sizes = new Map(entries.map((e) => [e.name, e.size]));
  io.onPlan?.(todo.length, todo.reduce((n, name) => n + (sizes.get(name) ?? 0), 0));
  const outcomes: GetOutcome[] = [];
  let next = 0;
  const worker = async () => {
    while (!io.signal.aborted && next < todo.length) {
      const name = todo[next++]!;
      try {
        const got = await getFile(connect, { name, dir: opts.dir, force: opts.force, skipExisting: opts.skipExisting, ...(opts.resolve !== undefined ? { resolve: opts.resolve } : {}) }, io);
        outcomes.push({ name, result: got });
      } catch (err) {
        outcomes.push({ name, error: err instanceof CliError ? err : new CliError(EXIT.error, 'FileSystem', `${name}: ${(err as Error).message}`, {}, { cause: err }) });
      }
      io.onDone?.(outcomes[outcomes.length - 1]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, todo.length)) }, worker));
  return result(outcomes, skipped, todo.slice(next));
}

/** The listing's evidence: the size and a single-part ETag that every store holding it agrees on. */
async function sameAsListed(path: string, e: FileEntry): Promise<boolean | undefined> {
  const etags = new Set(Object.values(e.stores).flatMap((s) => (s ? [s.etag] : [])));
  const [etag] = etags;
  return sameContent(path, { size: e.size, ...(etags.size === 1 && etag !== undefined ? { etag } : {}) });
}

function prefixExit(listed: number, outcomes: GetOutcome[], interrupted: boolean): ExitCode {
  if (interrupted) return EXIT.interrupted;
  if (listed === 0) return EXIT.notFound;
  const failed = outcomes.find((o) => o.error !== undefined);
  if (failed?.error) return failed.error.exitCode;
  const notOk = outcomes.find((o) => o.result && o.result.exitCode !== EXIT.ok);
  return notOk?.result?.exitCode ?? EXIT.ok;
}
