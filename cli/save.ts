/**
 * Which files a read answer becomes, and writing them safely:
 *  - every target is resolved and checked to stay inside DIR, following symlinks that exist;
 *  - all targets are checked before anything is written, so a refusal writes nothing;
 *  - each file is filled under a temporary name in its own folder, then moved into place
 *    (without --force by a hard link, which fails rather than replace a file that appeared
 *    meanwhile), so a failure or Ctrl-C never leaves a half file.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, realpath, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { createWriteStream, unlinkSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Content, ReadAnswer } from '../lib/types';
import { CliError, EXIT, usageError } from './exit';
import type { ProgressFactory } from './progress';

/** One file to write, named relative to DIR with "/" separators. */
export interface PlannedFile {
  name: string;
  size: number;
  mtime: string;
  stores: string[];
  newest: boolean;
  content: Content;
  /** The version's ETag, for telling whether a local file is the same. */
  etag?: string;
}

export interface Target extends PlannedFile {
  /** Absolute path. */
  path: string;
  /** The path as printed and listed in `saved`: DIR as the user wrote it, then the name. */
  shown: string;
}

// Store names end up in file names: only plain ones (the server allows [a-z0-9-]).
const SAFE_STORE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** Most file systems cap one path segment at 255 bytes. */
const MAX_SEGMENT_BYTES = 255;

/**
 * The file name of one version: the stores holding it, joined by "+", inserted before the
 * extension of the last segment. `fileB.txt` → `fileB.server1.txt`, `README` → `README.server1`,
 * `.env` → `.env.server1`, `a/b.tar.gz` → `a/b.tar.server1.gz`.
 */
export function versionFileName(name: string, stores: string[]): string {
  const slash = name.lastIndexOf('/');
  const folder = name.slice(0, slash + 1);
  const base = name.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  const tag = stores.join('+');
  return dot > 0 ? `${folder}${base.slice(0, dot)}.${tag}${base.slice(dot)}` : `${folder}${base}.${tag}`;
}

/**
 * The files to write for an answer. SINGLE → NAME. DIFFERENT → one file per version, or only the
 * version picked by `resolve` ("newest" or a store name) saved as NAME.
 * Throws a usage CliError when `resolve` names a store that holds no copy, and an exit-1 CliError
 * when the answer is malformed (no content, unsafe store name).
 */
export function planFiles(answer: Exclude<ReadAnswer, { status: 'NOT_FOUND' }>, name: string, resolveWith?: string): PlannedFile[] {
  if (answer.status === 'SINGLE') {
    const stores = answer.copies.map((c) => c.store);
    stores.forEach(checkStoreName);
    if (resolveWith !== undefined && resolveWith !== 'newest' && !stores.includes(resolveWith)) throw unknownStore(resolveWith, name, stores);
    const first = answer.copies[0];
    if (!first || !answer.content) throw badAnswer(`the answer for ${name} carries no content`);
    const mtime = answer.copies.map((c) => c.mtime).reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a));
    return [{ name, size: first.size, mtime, stores, newest: true, content: answer.content, etag: first.etag }];
  }
  answer.versions.forEach((v) => v.stores.forEach(checkStoreName));
  const all = answer.versions.map((v): PlannedFile => {
    if (!v.content) throw badAnswer(`the version of ${name} on ${v.stores.join('+')} carries no content`);
    return { name: versionFileName(name, v.stores), size: v.size, mtime: v.mtime, stores: v.stores, newest: v.newest, content: v.content, etag: v.etag };
  });
  if (resolveWith === undefined) return all;
  const chosen = resolveWith === 'newest' ? newestOf(all) : all.find((v) => v.stores.includes(resolveWith));
  if (!chosen) throw unknownStore(resolveWith, name, all.flatMap((v) => v.stores));
  return [{ ...chosen, name }];
}

function newestOf(files: PlannedFile[]): PlannedFile | undefined {
  // The server marks the newest; should it mark none, the latest mtime decides.
  return files.find((f) => f.newest) ?? [...files].sort((a, b) => Date.parse(b.mtime) - Date.parse(a.mtime))[0];
}

function checkStoreName(store: string): void {
  if (!SAFE_STORE.test(store)) throw badAnswer(`the server named a store ${JSON.stringify(store)}, which cannot be part of a file name`);
}

const badAnswer = (message: string) => new CliError(EXIT.error, 'BadResponse', message);

const unknownStore = (store: string, name: string, present: string[]) =>
  usageError(`${store} holds no copy of ${name}; stores present: ${[...new Set(present)].sort().join(', ')}`, 'UnknownStore');

/**
 * The absolute path of `name` inside `dir`. Throws an exit-1 CliError when it would land outside
 * `dir` or on `dir` itself (valid keys never do; this guards against a bug or a hostile server).
 */
export function targetPath(dir: string, name: string): string {
  const root = resolve(dir);
  const target = resolve(root, name);
  if (!isInside(root, target)) throw new CliError(EXIT.error, 'UnsafePath', `refusing to write ${JSON.stringify(name)}: it is outside ${dir}`);
  return target;
}

/** True when `p` is strictly below `root` (both absolute and normalised). */
export function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** Targets for planned files, `shown` as `DIR/NAME` with DIR spelled as the user gave it. */
export function toTargets(dir: string, files: PlannedFile[]): Target[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return files.map((f) => ({ ...f, path: targetPath(dir, f.name), shown: prefix + f.name }));
}

/**
 * Checks every target before anything is written. Throws an exit-1 CliError when a target would
 * escape DIR through a symlink, a file stands where a folder must be, a name is too long, or —
 * without `force` — targets exist already (listed in `details.existing`).
 */
export async function checkTargets(dir: string, targets: Target[], force: boolean): Promise<void> {
  const root = resolve(dir);
  // DIR itself, or when it does not exist yet the nearest ancestor that does, must be a folder.
  let base = root;
  let baseStat = await statOrNull(base);
  while (!baseStat && dirname(base) !== base) {
    base = dirname(base);
    baseStat = await statOrNull(base);
  }
  if (baseStat && !baseStat.isDirectory()) {
    throw new CliError(EXIT.error, 'NotAFolder', base === root ? `${dir} is not a folder` : `cannot create ${dir}: ${base} is not a folder`);
  }
  const existing: string[] = [];
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t.path)) throw badAnswer(`two versions would both be saved as ${t.shown}`);
    seen.add(t.path);
    const tooLong = t.path.split(sep).find((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES);
    if (tooLong !== undefined) throw new CliError(EXIT.error, 'NameTooLong', `cannot save ${t.shown}: a path segment is over ${MAX_SEGMENT_BYTES} bytes`);
    await assertPhysicallyInside(root, t);
    const st = await lstatOrNull(t.path);
    if (st?.isDirectory()) throw new CliError(EXIT.error, 'Exists', `cannot save ${t.shown}: a folder has that name`);
    if (st) existing.push(t.shown);
  }
  if (existing.length > 0 && !force) {
    throw new CliError(EXIT.error, 'Exists', `not overwriting ${existing.join(', ')}; nothing written (add --force to replace)`, { existing });
  }
}

/**
 * Follows the part of the target's folder chain that exists: its real path must stay inside DIR's
 * real path, so a symlinked subfolder cannot carry a write elsewhere.
 */
async function assertPhysicallyInside(root: string, t: Target): Promise<void> {
  let p = dirname(t.path);
  while (p !== root && isInside(root, p) && !(await lstatOrNull(p))) p = dirname(p);
  if (p === root || !isInside(root, p)) return; // nothing between DIR and the file exists yet
  const st = await statOrNull(p);
  if (!st?.isDirectory()) throw new CliError(EXIT.error, 'NotAFolder', `cannot save ${t.shown}: ${relative(process.cwd(), p) || p} is not a folder`);
  if (!isInside(await realpath(root), await realpath(p))) {
    throw new CliError(EXIT.error, 'UnsafePath', `refusing to save ${t.shown}: a symlink on the way leads outside ${root}`);
  }
}

export interface WriteOptions {
  force: boolean;
  /** Opens a presigned URL as a stream. */
  download: (url: string) => Promise<Readable>;
  progress: ProgressFactory;
  /**
   * Ctrl-C: the download in flight stops, the temporary files go, and writeTargets throws the
   * interrupted CliError. Without it, SIGINT/SIGTERM remove the temporary files and exit.
   */
  signal?: AbortSignal;
}

/**
 * mkdir -p, one level at a time. Node's recursive mkdir never returns where a folder cannot be
 * made yet its parent exists (procfs answers ENOENT there), so it is not used.
 */
async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    await makeDirs(parent);
    await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
  }
}

/**
 * Writes all targets (checked by `checkTargets`): each is filled under a temporary name, its
 * mtime set to the version's, and only when all are complete are they moved into place. On any
 * failure, or SIGINT/SIGTERM, the temporary files are removed and nothing half-written remains.
 * Throws an exit-1 CliError on a short download or a target that appeared meanwhile.
 */
export async function writeTargets(dir: string, targets: Target[], opts: WriteOptions): Promise<void> {
  const root = resolve(dir);
  const temps = new Set<string>();
  const removeTemps = () => temps.forEach(unlinkQuietly);
  const onSignal = (signal: NodeJS.Signals) => {
    removeTemps();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  if (!opts.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  process.once('exit', removeTemps);
  try {
    const filled: string[] = [];
    for (const t of targets) {
      if (opts.signal?.aborted) throw interrupted();
      await makeDirs(dirname(t.path)).catch((err: NodeJS.ErrnoException) => {
        const why = err.message.replace(/, mkdir .*$/, '');
        throw new CliError(EXIT.error, 'FileSystem', `cannot create the folder ${err.path ?? dirname(t.path)} (${why}); nothing written`, {}, { cause: err });
      });
      await assertPhysicallyInside(root, t); // again: the folders may have changed since the check
      const tmp = join(dirname(t.path), `.dfs-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
      temps.add(tmp);
      const bytes = await fill(tmp, t, opts);
      if (bytes !== t.size) {
        throw new CliError(EXIT.error, 'DownloadFailed', `${t.shown}: received ${bytes} bytes, expected ${t.size}; nothing written`);
      }
      const mtime = new Date(t.mtime);
      if (!Number.isNaN(mtime.getTime())) await utimes(tmp, new Date(), mtime);
      filled.push(tmp);
    }
    for (const [i, t] of targets.entries()) {
      const tmp = filled[i] as string;
      await commit(tmp, t, opts.force);
      temps.delete(tmp);
    }
  } catch (err) {
    removeTemps();
    throw err;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('exit', removeTemps);
  }
}

/**
 * Fills `tmp` (created exclusively, flushed to disk before close) with the target's bytes;
 * returns how many were written.
 */
async function fill(tmp: string, t: Target, opts: WriteOptions): Promise<number> {
  if ('base64' in t.content) {
    const buf = Buffer.from(t.content.base64, 'base64');
    await writeFile(tmp, buf, { flag: 'wx', flush: true });
    return buf.length;
  }
  const body = await opts.download(t.content.url);
  const bar = opts.progress(basename(t.shown), t.size);
  let bytes = 0;
  const stop = () => body.destroy(interrupted());
  opts.signal?.addEventListener('abort', stop, { once: true });
  if (opts.signal?.aborted) stop(); // Ctrl-C came while the download was being opened
  const file = createWriteStream(tmp, { flags: 'wx', flush: true });
  try {
    await pipeline(
      body,
      async function* count(source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          bar.update(bytes);
          yield chunk;
        }
      },
      file,
    );
  } catch (err) {
    // The pipeline may reject while the file's open is still under way; the caller removes `tmp`
    // as soon as this throws, so it must exist (or never will) by then. Not events.once: it
    // would reject on the stream's own error, which comes before its close.
    if (!file.closed) await new Promise<void>((closed) => file.once('close', () => closed()));
    if (err instanceof CliError) throw err;
    throw new CliError(EXIT.error, 'DownloadFailed', `download of ${t.shown} failed after ${bytes} bytes (${(err as Error).message}); nothing written`, {}, { cause: err });
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    bar.stop();
  }
  return bytes;
}

const interrupted = () => new CliError(EXIT.interrupted, 'Interrupted', 'interrupted');

/** Moves a complete temporary file into place; without `force` never replaces an existing file. */
async function commit(tmp: string, t: Target, force: boolean): Promise<void> {
  if (force) return rename(tmp, t.path);
  try {
    await link(tmp, t.path); // atomic "create if absent"
    await unlink(tmp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CliError(EXIT.error, 'Exists', `not overwriting ${t.shown}: it appeared while downloading`, { existing: [t.shown] });
    // File systems without hard links: check, then rename (a small race, but no link support).
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK'].includes(code ?? '')) throw err;
    if (await lstatOrNull(t.path)) throw new CliError(EXIT.error, 'Exists', `not overwriting ${t.shown}: it appeared while downloading`, { existing: [t.shown] });
    await rename(tmp, t.path);
  }
}

async function lstatOrNull(p: string) {
  return lstat(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
    throw err;
  });
}

async function statOrNull(p: string) {
  return stat(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
    throw err;
  });
}

function unlinkQuietly(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // already gone
  }
}
