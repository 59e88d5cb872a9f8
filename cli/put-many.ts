/**
 * `dfs put` of several files or of folders: which keys the files get (planUploads, pure but for
 * reading the folders), then each file through putFile, a few at a time. Every key is checked
 * before the first request, so a bad name sends nothing. No printing here.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { keyProblem } from '../lib/keys';
import type { PartSender, Transport } from './client';
import { CliError, EXIT, usageError, type ExitCode } from './exit';
import type { ProgressFactory } from './progress';
import { putFile, type PutResult } from './put';

export interface Upload {
  file: string;
  key: string;
  size: number;
}

export interface Planned {
  uploads: Upload[];
  /** What was left out of the folders, with why (a symlink to a folder, a socket…). */
  skipped: string[];
}

/**
 * The uploads for FILE… arguments:
 *  - one file: its base name, or `--as NAME` (`--as DIR/` puts it under DIR/);
 *  - a folder: every regular file below it as `BASENAME/relative/path`, or under `--as PREFIX/`;
 *  - several: each as above, `--as` then being a prefix that must end with "/".
 * Throws a usage CliError (nothing sent) for a missing source, `-` among several, an invalid or
 * duplicate key, or `--as` without a final "/" for several sources.
 */
export async function planUploads(sources: string[], as?: string): Promise<Planned> {
  if (sources.includes('-') && sources.length > 1) throw usageError('"-" (stdin) cannot be uploaded with other files; put it alone, with --as NAME', 'Usage');
  // All looked at together, but the first bad source named is the first in the command line.
  const looked = await Promise.allSettled(sources.map(async (s) => [s, await kindOf(s)] as const));
  const kinds = looked.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
  const single = sources.length === 1 && kinds[0]![1] === 'file';
  if (!single && as !== undefined && as !== '' && !as.endsWith('/')) {
    throw usageError(`--as ${JSON.stringify(as)} must end with "/" for a folder or several files: it is the prefix their names go under`, 'Usage');
  }
  const uploads: Upload[] = [];
  const skipped: string[] = [];
  for (const [source, kind] of kinds) {
    if (kind === 'file') {
      const name = basename(source);
      const key = single && as !== undefined && !as.endsWith('/') ? as : `${as ?? ''}${name}`;
      uploads.push({ file: source, key, size: (await stat(source)).size });
    } else {
      const prefix = `${as ?? ''}${basename(resolve(source))}/`;
      await walk(source, prefix, uploads, skipped);
    }
  }
  const problems = uploads.flatMap((u) => {
    const p = keyProblem(u.key);
    return p === undefined ? [] : [`${JSON.stringify(u.key)} (${u.file}): ${p}`];
  });
  if (single && problems.length > 0) throw usageError(`invalid name ${JSON.stringify(uploads[0]!.key)}: ${keyProblem(uploads[0]!.key)}`, 'InvalidKey');
  if (problems.length > 0) {
    throw usageError(`invalid name${problems.length > 1 ? 's' : ''}, nothing sent: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`, 'InvalidKey');
  }
  const seen = new Map<string, string>();
  for (const u of uploads) {
    const other = seen.get(u.key);
    if (other !== undefined) throw usageError(`${other} and ${u.file} would both be stored as ${JSON.stringify(u.key)}; nothing sent`, 'DuplicateName');
    seen.set(u.key, u.file);
  }
  return { uploads, skipped };
}

async function kindOf(source: string): Promise<'file' | 'folder'> {
  if (source === '') throw usageError('FILE is empty; name a file to upload', 'NoSuchFile');
  try {
    const st = await stat(source);
    // A link to a folder could lead anywhere (and loop): the folder itself must be named.
    if (st.isDirectory() && (await lstat(source)).isSymbolicLink()) throw usageError(`${source} is a symlink to a folder; name the folder itself`, 'NotAFile');
    if (st.isDirectory()) return 'folder';
    if (st.isFile()) return 'file';
    throw usageError(`${source} is not a regular file or a folder`, 'NotAFile');
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw usageError(`no such file: ${source}`, 'NoSuchFile');
    throw usageError(`cannot read ${source}: ${(err as Error).message}`, 'NoSuchFile');
  }
}

/**
 * Every regular file below `dir`, in name order, keys `prefix` + the path below `dir` with "/".
 * A symlink to a file is followed; one to a folder is left out (it could loop), as is anything
 * that is neither a file nor a folder.
 */
async function walk(dir: string, prefix: string, into: Upload[], skipped: string[]): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = join(dir, e.name);
    const key = prefix + e.name;
    if (e.isDirectory()) await walk(path, `${key}/`, into, skipped);
    else if (e.isFile()) into.push({ file: path, key, size: (await lstat(path)).size });
    else if (e.isSymbolicLink()) {
      const target = await stat(path).catch(() => undefined);
      if (target?.isFile()) into.push({ file: path, key, size: target.size });
      else skipped.push(`${path} (a symlink to ${target?.isDirectory() ? 'a folder' : 'nothing readable'})`);
    } else skipped.push(`${path} (not a regular file)`);
  }
}

export interface ManyOptions {
  to: string;
  touch: boolean;
  /** Files in flight at once. */
  jobs: number;
}

export interface ManyIo {
  signal: AbortSignal;
  progress: ProgressFactory;
  sendPart?: PartSender;
  /** Hears each file once it is done, stored or not. */
  onDone?: (outcome: FileOutcome) => void;
}

export type FileOutcome = { upload: Upload; result: PutResult; error?: undefined } | { upload: Upload; result?: undefined; error: CliError };

export interface ManyResult {
  outcomes: FileOutcome[];
  /** Files not started: interrupted, or stopped by an error every file would meet. */
  notStarted: Upload[];
  exitCode: ExitCode;
}

/** Errors every other file would meet too: stop starting new ones. */
const FATAL: number[] = [EXIT.notAllowed, EXIT.interrupted, EXIT.usage];

/**
 * Uploads each file with putFile, `jobs` at a time. A file that fails is an outcome, and the
 * others go on, unless its error would stop them all (not allowed, interrupted, refused as
 * usage). The exit code: 0 when every file was stored on every store; 130 when interrupted; 6
 * when all were stored but some only partly; else the first failure's.
 */
export async function putMany(connect: () => Transport, uploads: Upload[], opts: ManyOptions, io: ManyIo): Promise<ManyResult> {
  const outcomes: FileOutcome[] = [];
  let next = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && !io.signal.aborted && next < uploads.length) {
      const upload = uploads[next++]!;
      let outcome: FileOutcome;
      try {
        const result = await putFile(connect, { file: upload.file, as: upload.key, to: opts.to, touch: opts.touch }, { progress: io.progress, signal: io.signal, ...(io.sendPart ? { sendPart: io.sendPart } : {}) });
        outcome = { upload, result };
      } catch (err) {
        const error = err instanceof CliError ? err : new CliError(EXIT.error, 'FileSystem', `${upload.file}: ${(err as Error).message}`, {}, { cause: err });
        if (FATAL.includes(error.exitCode)) stopped = true;
        outcome = { upload, error };
      }
      outcomes.push(outcome);
      io.onDone?.(outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, uploads.length)) }, worker));
  const notStarted = uploads.slice(next);
  return { outcomes, notStarted, exitCode: manyExit(outcomes, io.signal.aborted) };
}

function manyExit(outcomes: FileOutcome[], interrupted: boolean): ExitCode {
  if (interrupted) return EXIT.interrupted;
  const failed = outcomes.find((o) => o.error !== undefined || o.result.exitCode !== EXIT.ok && o.result.exitCode !== EXIT.partial);
  if (failed) return failed.error?.exitCode ?? failed.result!.exitCode;
  return outcomes.some((o) => o.result?.exitCode === EXIT.partial) ? EXIT.partial : EXIT.ok;
}
