/**
 * `dfs put FILE`: uploads one local file under KEY, its logical mtime the file's own.
 * Up to the inline limit the body goes in one PUT; above it (or when the server says 413) the
 * multipart flow of client/multipart.ts runs, fed by the file: each part is read once into a
 * buffer of its worker and PUT to every store with node:http.
 * No printing here; the caller formats the result (cli/output.ts).
 */
import type { Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { StoreOutcome, WriteAnswer } from '../lib/types';
import { keyProblem } from '../lib/keys';
import { uploadPlanOf as sharedUploadPlanOf } from '../client/answers';
import { INLINE_LIMIT, uploadMultipart, UploadAborted, UploadInterrupted, type MultipartReport, type PartSource } from '../client/multipart';
import { interruptedError, uploadPart, type PartSender, type Transport } from './client';
import { readHead, streamParts } from './stream';
import { CliError, EXIT, cliErrorOf, cliGuard, exitForResults, usageError, writeAnswerOf, type ExitCode } from './exit';
import type { ProgressFactory } from './progress';

export { INLINE_LIMIT, UPLOAD_DEFAULTS, type MultipartReport } from '../client/multipart';

export interface PutOptions {
  file: string;
  /** The key; default the file's base name. */
  as?: string;
  /** `all` or one store's name. */
  to: string;
  /** Make this the newest version: the server stamps now as its mtime. */
  touch?: boolean;
}

export interface PutIo {
  progress: ProgressFactory;
  /** Ctrl-C: stops the upload and aborts it on the server. */
  signal: AbortSignal;
  /** Sends one part to a presigned URL; default `uploadPart`. */
  sendPart?: PartSender;
  retryDelayMs?: number;
}

export interface PutResult {
  file: string;
  key: string;
  size: number;
  /** The file's mtime (ISO-8601), sent as the logical mtime. */
  mtime: string;
  via: 'inline' | 'multipart';
  /** Every target store's outcome, by store name. */
  results: StoreOutcome[];
  /** The API's answer to the PUT or to POST /uploads/complete (absent when nothing completed). */
  answer?: WriteAnswer;
  multipart?: MultipartReport;
  exitCode: ExitCode;
}

interface Source {
  handle: FileHandle;
  key: string;
  size: number;
  mtimeMs: number;
}

/**
 * Uploads FILE. Checks the file and the key before `connect` is called, so nothing is sent for
 * a bad argument. Throws CliError: usage (2) for a missing file, a folder, anything that is not
 * a regular file, an unreadable file or an invalid key; 130 when interrupted (the upload is
 * aborted first); the mapped error of a refused request. Stores failing is a result: exit 6
 * when some took the file, 5 when none did.
 */
export async function putFile(connect: () => Transport, opts: PutOptions, io: PutIo): Promise<PutResult> {
  const src = await openSource(opts);
  try {
    const api = connect();
    const base = { file: opts.file, key: src.key, size: src.size, mtime: new Date(src.mtimeMs).toISOString() };
    if (src.size <= INLINE_LIMIT) {
      const body = await readAll(src);
      if (io.signal.aborted) throw interruptedError();
      const reply = await api.send({ op: 'put', key: src.key, to: opts.to, mtime: src.mtimeMs, body, ...(opts.touch ? { touch: true } : {}) }, { signal: io.signal });
      // 413: this server's inline limit is lower than the default; the upload flow takes any size.
      if (reply.status !== 413) {
        const answer = writeAnswerOf(reply, 'nothing was stored');
        return { ...base, via: 'inline', results: byStore(answer.results), answer, exitCode: exitForResults(answer.results) };
      }
    }
    return { ...base, via: 'multipart', ...(await putMultipart(api, fileParts(src), src, opts.to, io, opts.touch ?? false)) };
  } finally {
    await src.handle.close();
  }
}

export interface StreamOptions {
  /** The key: a stream has no name of its own. */
  as: string;
  to: string;
  touch?: boolean;
}

/**
 * `dfs put - --as NAME`: uploads what `stream` yields (stdin), its size unknown until it ends.
 * Up to the inline limit it goes in one PUT; beyond, through the multipart flow part by part
 * (client/multipart.ts with a size-less source). The logical mtime is now. Throws like putFile;
 * `onBytes` hears how many bytes were read so far.
 */
export async function putStream(
  connect: () => Transport,
  stream: AsyncIterable<Uint8Array>,
  opts: StreamOptions,
  io: PutIo & { onBytes?: (bytes: number) => void },
): Promise<PutResult> {
  const problem = keyProblem(opts.as);
  if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(opts.as)}: ${problem}`, 'InvalidKey');
  const api = connect();
  const { head, ended, rest } = await readHead(stream, INLINE_LIMIT);
  if (io.signal.aborted) throw interruptedError();
  const mtimeMs = Date.now();
  const base = { file: '-', key: opts.as, mtime: new Date(mtimeMs).toISOString() };
  if (ended) {
    io.onBytes?.(head.length);
    const reply = await api.send({ op: 'put', key: opts.as, to: opts.to, mtime: mtimeMs, body: head, ...(opts.touch ? { touch: true } : {}) }, { signal: io.signal });
    if (reply.status !== 413) {
      const answer = writeAnswerOf(reply, 'nothing was stored');
      return { ...base, size: head.length, via: 'inline', results: byStore(answer.results), answer, exitCode: exitForResults(answer.results) };
    }
  }
  const parts = streamParts(head, rest, io.onBytes);
  const done = await putMultipart(api, parts, { key: opts.as, mtimeMs }, opts.to, io, opts.touch ?? false);
  return { ...base, via: 'multipart', ...done };
}

/**
 * Opens FILE and reads its size and mtime from the open handle, so both describe what is read.
 * The type is checked before opening too: opening a FIFO for reading would wait for a writer.
 */
async function openSource(opts: PutOptions): Promise<Source> {
  if (opts.file === '') throw usageError('FILE is empty; name a file to upload', 'NoSuchFile');
  let handle: FileHandle;
  try {
    checkRegular(opts.file, await stat(opts.file));
    handle = await open(opts.file, 'r');
  } catch (err) {
    throw err instanceof CliError ? err : fileError(opts.file, err);
  }
  try {
    const st = await handle.stat();
    checkRegular(opts.file, st);
    const key = opts.as ?? basename(opts.file);
    const problem = keyProblem(key);
    if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(key)}: ${problem}`, 'InvalidKey');
    return { handle, key, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function checkRegular(file: string, st: Stats): void {
  if (st.isDirectory()) throw usageError(`${file} is a folder; dfs put uploads one file`, 'NotAFile');
  if (!st.isFile()) throw usageError(`${file} is not a regular file`, 'NotAFile');
}

function fileError(file: string, err: unknown): CliError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return usageError(`no such file: ${file}`, 'NoSuchFile');
  if (code === 'EISDIR') return usageError(`${file} is a folder; dfs put uploads one file`, 'NotAFile');
  if (code === 'EACCES' || code === 'EPERM') return usageError(`cannot read ${file}: permission denied`, 'NoSuchFile');
  return new CliError(EXIT.error, 'FileSystem', `cannot read ${file}: ${(err as Error).message}`, {}, { cause: err });
}

/** Reads a small file whole. One byte more than its size is asked for, to see whether it grew. */
async function readAll(src: Source): Promise<Buffer> {
  const buf = Buffer.alloc(src.size + 1);
  let got = 0;
  for (;;) {
    const { bytesRead } = await src.handle.read(buf, got, buf.length - got, got);
    got += bytesRead;
    if (bytesRead === 0 || got === buf.length) break;
  }
  if (got !== src.size) throw new CliError(EXIT.error, 'FileChanged', `${src.key}: the file changed while it was being read; nothing was sent`);
  return buf.subarray(0, got);
}

const byStore = (results: StoreOutcome[]) => [...results].sort((a, b) => (a.store < b.store ? -1 : a.store > b.store ? 1 : 0));

/** The plan of a POST /uploads answer (client/answers.ts), its refusals as CliErrors. */
export const uploadPlanOf = cliGuard(sharedUploadPlanOf);

async function putMultipart(
  api: Transport,
  parts: PartSource<Uint8Array>,
  src: { key: string; mtimeMs: number },
  to: string,
  io: PutIo,
  touch: boolean,
): Promise<Omit<PutResult, 'key' | 'file' | 'mtime' | 'via'>> {
  try {
    const { size, results, answer, multipart } = await uploadMultipart(
      api,
      parts,
      { key: src.key, to, mtime: src.mtimeMs, ...(touch ? { touch: true } : {}) },
      {
        sendPart: io.sendPart ?? uploadPart,
        signal: io.signal,
        progress: (total) => io.progress(src.key, total, 'bytes'),
        ...(io.retryDelayMs !== undefined ? { retryDelayMs: io.retryDelayMs } : {}),
      },
    );
    return { size, results, ...(answer ? { answer } : {}), multipart, exitCode: exitForResults(results) };
  } catch (err) {
    throw putError(err);
  }
}

/** The CliError of what the multipart client threw, saying what became of the upload. */
function putError(err: unknown): unknown {
  if (err instanceof UploadInterrupted) return interruptedError(err);
  if (!(err instanceof UploadAborted)) return cliErrorOf(err);
  const cause = err.cause instanceof UploadInterrupted ? interruptedError(err.cause) : cliErrorOf(err.cause);
  if (!(cause instanceof CliError)) return cause;
  const { aborted, abortFailed } = err.report;
  const outcome = err.stage === 'parts' ? 'nothing was stored' : 'check with dfs ls whether it was stored';
  const left = abortFailed.length > 0 ? `; could not abort it on ${abortFailed.join(', ')}, where its parts stay until aborted` : '';
  const what = cause.exitCode === EXIT.interrupted ? 'interrupted' : cause.message;
  return new CliError(cause.exitCode, cause.code, `${what}; the upload was aborted, ${outcome}${left}`, { ...cause.details, aborted, abortFailed }, { cause });
}

/**
 * The file as parts: each worker reads into a buffer of its own of `partSize` bytes (all the
 * memory an upload takes), reused for its next part once this one is sent.
 */
function fileParts(src: Source): PartSource<Uint8Array> {
  const buffers: Buffer[] = [];
  return {
    size: src.size,
    async readPart(_n, position, length, slot) {
      const buf = (buffers[slot] ??= Buffer.allocUnsafe(length));
      await readPart(src, buf, position, length);
      return buf.subarray(0, length);
    },
    async verify() {
      checkUnchanged(src, await src.handle.stat());
    },
  };
}

function checkUnchanged(src: Source, now: { size: number; mtimeMs: number }): void {
  if (now.size !== src.size || Math.trunc(now.mtimeMs) !== src.mtimeMs) {
    throw new CliError(EXIT.error, 'FileChanged', 'the file changed while it was being uploaded');
  }
}

/** Reads exactly `length` bytes at `position`; a short read means the file shrank meanwhile. */
async function readPart(src: Source, buf: Buffer, position: number, length: number): Promise<void> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await src.handle.read(buf, got, length - got, position + got);
    if (bytesRead === 0) {
      throw new CliError(EXIT.error, 'FileChanged', 'the file got shorter while it was being uploaded');
    }
    got += bytesRead;
  }
}
