/**
 * `dfs put FILE`: uploads one local file under KEY, its logical mtime the file's own.
 * Up to the inline limit the body goes in one PUT; above it (or when the server says 413) the
 * multipart flow runs: the API starts an upload on every target store and signs part URLs, the
 * CLI reads each part once and PUTs it to every store, then the API completes the uploads.
 * No printing here; the caller formats the result (cli/output.ts).
 *
 *   CLI                          API                         stores (presigned URLs)
 *   POST /uploads ─────────────► CreateMultipartUpload ×N
 *   POST /uploads/sign (≤100) ─► URLs per store and part
 *   read part n once ──────────────────────────────────────► PUT part n to each store (4 parts in flight)
 *   POST /uploads/complete ────► CompleteMultipartUpload per store that has every part
 *   on error or Ctrl-C: POST /uploads/abort, so no orphaned parts are billed
 */
import type { Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { StoreOutcome, UploadPlan, UploadTarget, WriteAnswer } from '../lib/types';
import { keyProblem } from '../lib/keys';
import { interruptedError, pause, uploadPart, type ApiResult, type DonePart, type PartSender, type Transport } from './client';
import { CliError, EXIT, errorForResponse, exitForResults, usageError, writeAnswerOf, type ExitCode } from './exit';
import type { Progress, ProgressFactory } from './progress';

/** The server's default inline limit (lib/config.ts putInlineLimit); a 413 still falls back. */
export const INLINE_LIMIT = 4 * 1024 * 1024;

export const UPLOAD_DEFAULTS = Object.freeze({
  /** Parts read and sent at once. */
  concurrency: 4,
  /** Part buffers never take more than this together (a huge part size lowers the concurrency). */
  memoryBudget: 256 * 1024 * 1024,
  /**
   * Part URLs asked for per POST /uploads/sign (the API takes up to 1,000). Signed when first
   * needed, so a URL is used well within its lifetime (15 min by default) even on a slow link.
   */
  signBatch: 100,
  /** Tries per part and store before that store is dropped from the upload. */
  attempts: 3,
  /** Wait before the second try; the third waits twice as long. */
  retryDelayMs: 200,
});

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

export interface MultipartReport {
  partSize: number;
  parts: number;
  /** The stores the upload started on. */
  uploads: UploadTarget[];
  /** Stores whose uploads were aborted (dropped, failed to complete). */
  aborted: string[];
  /** Stores whose abort failed too: their parts stay in the bucket (and are billed) until aborted. */
  abortFailed: string[];
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
      const reply = await api.send({ op: 'put', key: src.key, to: opts.to, mtime: src.mtimeMs, body, ...(opts.touch ? { touch: true } : {}) });
      // 413: this server's inline limit is lower than the default; the upload flow takes any size.
      if (reply.status !== 413) {
        const answer = writeAnswerOf(reply, 'nothing was stored');
        return { ...base, via: 'inline', results: byStore(answer.results), answer, exitCode: exitForResults(answer.results) };
      }
    }
    return { ...base, via: 'multipart', ...(await putMultipart(api, src, opts.to, io, opts.touch ?? false)) };
  } finally {
    await src.handle.close();
  }
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

const badAnswer = (message: string) => new CliError(EXIT.error, 'BadResponse', message);

/** The plan of a POST /uploads answer, checked so that a bad one cannot make the CLI misread the file. */
export function uploadPlanOf({ status, body }: ApiResult, size: number): UploadPlan {
  if (status !== 200) throw errorForResponse(status, body, 'nothing was stored');
  const p = body as Partial<UploadPlan> | null;
  if (
    typeof p !== 'object' || p === null ||
    !Number.isSafeInteger(p.partSize) || (p.partSize as number) < 1 ||
    !Number.isSafeInteger(p.parts) || (p.parts as number) < 1 || (p.parts as number) > 10_000 ||
    !Array.isArray(p.uploads) || !p.uploads.every((u) => typeof u?.store === 'string' && typeof u.uploadId === 'string')
  ) {
    throw badAnswer('the server answered POST /uploads with something that is not an upload plan');
  }
  if (p.parts !== Math.max(1, Math.ceil(size / (p.partSize as number)))) {
    throw badAnswer(`the upload plan's ${p.parts} parts of ${p.partSize} bytes do not cover ${size} bytes`);
  }
  return { ...(p as UploadPlan), failed: Array.isArray(p.failed) ? p.failed : [] };
}

async function putMultipart(api: Transport, src: Source, to: string, io: PutIo, touch: boolean): Promise<Omit<PutResult, keyof Source | 'file' | 'mtime' | 'via'>> {
  if (io.signal.aborted) throw interruptedError();
  const plan = uploadPlanOf(await api.send({ op: 'startUpload', key: src.key, size: src.size, mtime: src.mtimeMs, to, ...(touch ? { touch: true } : {}) }), src.size);
  const started: StoreOutcome[] = plan.failed.map((f) => ({ store: f.store, ok: false, error: `could not start the upload: ${f.error ?? 'failed'}` }));
  const report: MultipartReport = { partSize: plan.partSize, parts: plan.parts, uploads: plan.uploads, aborted: [], abortFailed: [] };
  if (plan.uploads.length === 0) return { results: byStore(started), multipart: report, exitCode: EXIT.unavailable };

  const abort = async (uploads: UploadTarget[]) => {
    if (uploads.length === 0) return;
    const stores = uploads.map((u) => u.store);
    try {
      const reply = await api.send({ op: 'abortUpload', key: src.key, uploads });
      const answer = writeAnswerOf(reply, 'nothing was aborted');
      for (const s of stores) (answer.results.find((r) => r.store === s)?.ok ? report.aborted : report.abortFailed).push(s);
    } catch {
      report.abortFailed.push(...stores);
    }
  };

  const bar = io.progress(src.key, src.size, 'bytes');
  let parts: PartsResult;
  try {
    parts = await uploadParts(api, src, plan, io, bar);
    checkUnchanged(src, await src.handle.stat());
  } catch (err) {
    await abort(plan.uploads);
    throw explainAbort(err, report, 'nothing was stored');
  } finally {
    bar.stop();
  }

  const dropped = plan.uploads.filter((u) => parts.dropped.has(u.store));
  const complete = plan.uploads.filter((u) => !parts.dropped.has(u.store));
  let answer: WriteAnswer | undefined;
  if (complete.length > 0) {
    try {
      const uploads = complete.map((u) => ({ ...u, parts: parts.etags.get(u.store)!.sort((a, b) => a.n - b.n) }));
      answer = writeAnswerOf(await api.send({ op: 'completeUpload', key: src.key, uploads }), 'nothing was stored');
    } catch (err) {
      // The completion may have run before the answer was lost: aborting then changes nothing.
      await abort(plan.uploads);
      throw explainAbort(err, report, 'check with dfs ls whether it was stored');
    }
  }
  const failedToComplete = complete.filter((u) => !answer?.results.find((r) => r.store === u.store)?.ok);
  await abort([...dropped, ...failedToComplete]);

  const results = [
    ...started,
    ...dropped.map((u) => ({ store: u.store, ok: false, error: parts.dropped.get(u.store)! })),
    ...(answer?.results ?? []),
  ];
  return { results: byStore(results), ...(answer ? { answer } : {}), multipart: report, exitCode: exitForResults(results) };
}

/** Says what became of the upload in the error that ended it. */
function explainAbort(err: unknown, report: MultipartReport, outcome: string): unknown {
  if (!(err instanceof CliError)) return err;
  const left = report.abortFailed.length > 0 ? `; could not abort it on ${report.abortFailed.join(', ')}, where its parts stay until aborted` : '';
  const what = err.exitCode === EXIT.interrupted ? 'interrupted' : err.message;
  const message = `${what}; the upload was aborted, ${outcome}${left}`;
  return new CliError(err.exitCode, err.code, message, { ...err.details, aborted: report.aborted, abortFailed: report.abortFailed }, { cause: err });
}

function checkUnchanged(src: Source, now: { size: number; mtimeMs: number }): void {
  if (now.size !== src.size || Math.trunc(now.mtimeMs) !== src.mtimeMs) {
    throw new CliError(EXIT.error, 'FileChanged', 'the file changed while it was being uploaded');
  }
}

interface PartsResult {
  /** Per store still in the upload: the ETag of every part. */
  etags: Map<string, DonePart[]>;
  /** Stores dropped from the upload, with why. */
  dropped: Map<string, string>;
}

/**
 * Sends every part to every store of the plan. Each part is read from the file once, into one
 * of `concurrency` buffers of `partSize` bytes (all memory this takes), and PUT to all stores at
 * once. A part that fails `attempts` times on a store drops that store (the others go on); a
 * 403 re-signs the part first, since an expired link answers 403. Throws when the file cannot
 * be read, signing fails, or the user interrupts; every store dropped is a result, not an error.
 */
async function uploadParts(api: Transport, src: Source, plan: UploadPlan, io: PutIo, bar: Progress): Promise<PartsResult> {
  const { signBatch, attempts } = UPLOAD_DEFAULTS;
  const retryDelayMs = io.retryDelayMs ?? UPLOAD_DEFAULTS.retryDelayMs;
  const concurrency = Math.max(1, Math.min(UPLOAD_DEFAULTS.concurrency, Math.floor(UPLOAD_DEFAULTS.memoryBudget / plan.partSize), plan.parts));
  const active = new Map(plan.uploads.map((u) => [u.store, u]));
  const etags = new Map(plan.uploads.map((u): [string, DonePart[]] => [u.store, []]));
  const dropped = new Map<string, string>();
  // Stops every worker on the first error or on Ctrl-C; part PUTs in flight are cancelled.
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  io.signal.addEventListener('abort', onInterrupt, { once: true });

  const sign = async (uploads: UploadTarget[], parts: number[]): Promise<Record<string, string[]>> => {
    const reply = await api.send({ op: 'signParts', key: src.key, uploads, parts }, { signal: stop.signal });
    if (reply.status !== 200) throw errorForResponse(reply.status, reply.body, 'no part URL could be signed');
    const urls = (reply.body as { urls?: unknown } | null)?.urls as Record<string, unknown> | undefined;
    for (const u of uploads) {
      const list = urls?.[u.store];
      if (!Array.isArray(list) || list.length !== parts.length || !list.every((x) => typeof x === 'string')) {
        throw badAnswer(`POST /uploads/sign answered without ${parts.length} URLs for ${u.store}`);
      }
    }
    return urls as Record<string, string[]>;
  };
  // Batch b holds parts b*signBatch+1 …; signed once, when a worker first needs one of its parts.
  const batches = new Map<number, Promise<Record<string, string[]>>>();
  const urlFor = async (store: string, n: number): Promise<string> => {
    const b = Math.floor((n - 1) / signBatch);
    let batch = batches.get(b);
    if (!batch) {
      const first = b * signBatch + 1;
      const numbers = Array.from({ length: Math.min(signBatch, plan.parts - first + 1) }, (_, i) => first + i);
      batch = sign([...active.values()], numbers);
      batches.set(b, batch);
      for (const old of batches.keys()) if (old < b - 1) batches.delete(old); // parts go in order: no worker is that far behind
    }
    const url = (await batch)[store]?.[(n - 1) % signBatch];
    if (!url) throw badAnswer(`no URL was signed for part ${n} on ${store}`);
    return url;
  };

  const sendPart = async (store: string, n: number, body: Uint8Array): Promise<void> => {
    let url = await urlFor(store, n);
    let why = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (stop.signal.aborted || !active.has(store)) return;
      const out = await (io.sendPart ?? uploadPart)(url, body, stop.signal);
      if (out.ok) {
        etags.get(store)!.push({ n, etag: out.etag });
        return;
      }
      why = out.why;
      if (attempt === attempts) break;
      await pause(retryDelayMs * attempt, stop.signal);
      const upload = active.get(store);
      if (out.status === 403 && upload) url = (await sign([upload], [n]))[store]![0]!;
    }
    if (stop.signal.aborted || !active.has(store)) return;
    active.delete(store);
    etags.delete(store);
    dropped.set(store, `part ${n} of ${plan.parts} failed ${attempts} times (${why}); the upload there was given up`);
  };

  let next = 1;
  let sent = 0;
  const worker = async () => {
    const buf = Buffer.allocUnsafe(Math.min(plan.partSize, Math.max(src.size, 1)));
    for (;;) {
      if (stop.signal.aborted || active.size === 0) return;
      const n = next++;
      if (n > plan.parts) return;
      const start = (n - 1) * plan.partSize;
      const length = Math.min(plan.partSize, src.size - start);
      await readPart(src, buf, start, length);
      const body = buf.subarray(0, length);
      await Promise.all([...active.keys()].map((store) => sendPart(store, n, body)));
      sent += length;
      bar.update(sent);
    }
  };

  // The first error is the cause; what the other workers throw once stopped is its echo.
  let firstError: unknown;
  if (io.signal.aborted) stop.abort();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, () =>
        worker().catch((err: unknown) => {
          firstError ??= err;
          stop.abort();
        }),
      ),
    );
    if (io.signal.aborted) throw interruptedError();
    if (firstError !== undefined) throw firstError;
    return { etags, dropped };
  } finally {
    io.signal.removeEventListener('abort', onInterrupt);
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
