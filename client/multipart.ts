/**
 * The presigned multipart upload, one client for `dfs put` and the web page. Where the bytes come
 * from (a PartSource) and how one part reaches a presigned URL (a PartSender) are injected, so
 * this holds no Node or DOM API: the CLI reads a file handle and PUTs with node:http, the page
 * slices a File and PUTs with XMLHttpRequest.
 *
 *   client                       API                         stores (presigned URLs)
 *   POST /uploads ─────────────► CreateMultipartUpload ×N
 *   POST /uploads/sign (≤100) ─► URLs per store and part
 *   read part n once ──────────────────────────────────────► PUT part n to each store (4 parts in flight)
 *   POST /uploads/complete ────► CompleteMultipartUpload per store that has every part
 *   on error or interruption: POST /uploads/abort, so no orphaned parts are billed
 */
import type { StoreOutcome, UploadPlan, UploadTarget, WriteAnswer } from '../lib/types';
import { signedUrlsOf, uploadPlanOf, writeAnswerOf, AnswerError } from './answers';
import { pause } from './pause';
import type { ApiSender, DonePart } from './routes';

/** The server's default inline limit (lib/config.ts putInlineLimit); a 413 still falls back to the upload. */
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

/**
 * The size POST /uploads is told for a source whose size is known only at its end (a pipe). The
 * server plans its smallest parts (8 MiB) for it, 10,000 of them; the upload completes with the
 * parts actually sent, so this is only a ceiling (as for `aws s3 cp -` without --expected-size).
 */
export const STREAM_SIZE_CEILING = 8 * 1024 * 1024 * 10_000;

/** The operations an upload sends. */
export type UploadOp =
  | { op: 'startUpload'; key: string; size: number; mtime: number; to: string; touch?: boolean }
  | { op: 'signParts'; key: string; uploads: UploadTarget[]; parts: number[] }
  | { op: 'completeUpload'; key: string; uploads: Array<UploadTarget & { parts: DonePart[] }> }
  | { op: 'abortUpload'; key: string; uploads: UploadTarget[] };

/** What one PUT of a part to a presigned URL came to. `status` is absent when no answer came. */
export type PartOutcome = { ok: true; etag: string } | { ok: false; status?: number; why: string };

/**
 * Sends one part to a presigned UploadPart URL. Resolves with the outcome, also for a failed
 * upload (the client retries or gives up on that store); rejects only when `signal` aborts.
 */
export type PartSender<B> = (url: string, body: B, signal: AbortSignal) => Promise<PartOutcome>;

/**
 * Where the bytes come from. `B` is whatever the PartSender sends: a Buffer for the CLI, a Blob
 * slice for the page.
 *
 * Parts are asked for in increasing `n`, at most `concurrency` at a time; `slot` (0 … concurrency-1)
 * is the worker asking, whose previous part has been sent by then, so a source may keep one
 * buffer per slot. A sequential source (a stream) can therefore serve each call after the one
 * before.
 */
export interface PartSource<B> {
  /**
   * Bytes in all: the plan asked for covers exactly this many. `undefined` for a stream whose
   * size is known only at its end (`dfs put -`): the plan is then asked for STREAM_SIZE_CEILING
   * bytes, parts are read until the source says it ended, and `progress` is not called.
   */
  readonly size: number | undefined;
  /**
   * `length` bytes from `position`: part `n` (1-based). Throws when they cannot be read whole.
   * With `size` undefined, `length` is the part size and the most to give: a shorter part is the
   * last one, and `null` says the source ended before part `n` (never for part 1: an empty
   * source is one empty part).
   */
  readPart(n: number, position: number, length: number, slot: number): Promise<B | null>;
  /** The bytes a part holds; needed when `size` is undefined. */
  bytesIn?(body: B): number;
  /** Throws when the source changed while it was sent (a file written to meanwhile); called once every part is sent. */
  verify?(): Promise<void>;
}

export interface UploadRequest {
  key: string;
  /** `all` or one store's name. */
  to: string;
  /** The logical mtime, ms. */
  mtime: number;
  /** Make this the newest version: the server stamps now as its mtime. */
  touch?: boolean;
}

export interface MultipartIo<B> {
  sendPart: PartSender<B>;
  /** Stops the upload (Ctrl-C, a Cancel button): parts in flight are cancelled and the upload aborted. */
  signal: AbortSignal;
  /** Called once the plan is known; `update` gets the bytes sent to every store so far, `stop` when the parts are over. */
  progress?: (total: number) => { update(sent: number): void; stop(): void };
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

export interface MultipartResult {
  /** Bytes sent: the source's size, also when it was known only at its end. */
  size: number;
  /** Every target store's outcome, sorted by store name. */
  results: StoreOutcome[];
  /** The API's answer to POST /uploads/complete (absent when no store got every part). */
  answer?: WriteAnswer;
  multipart: MultipartReport;
}

/** The upload was stopped through its signal. */
export class UploadInterrupted extends Error {
  override readonly name = 'UploadInterrupted';
  constructor() {
    super('interrupted');
  }
}

/**
 * An upload that failed once started, after it was aborted: `cause` is what failed. `stage`
 * says what that means: `parts`, nothing was stored; `complete`, the completion may have run
 * before its answer was lost, so the file may be stored.
 */
export class UploadAborted extends Error {
  override readonly name = 'UploadAborted';
  constructor(
    cause: unknown,
    readonly stage: 'parts' | 'complete',
    readonly report: MultipartReport,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

const byStore = (results: StoreOutcome[]) => [...results].sort((a, b) => (a.store < b.store ? -1 : a.store > b.store ? 1 : 0));

/**
 * Uploads `source` under `req.key` through the presigned multipart flow. Stores failing are a
 * result (their outcome says why); throws UploadInterrupted when stopped before anything
 * started, the AnswerError of a refused or malformed POST /uploads, and UploadAborted for
 * anything that failed once the upload started (after aborting it everywhere it started).
 */
export async function uploadMultipart<B>(api: ApiSender<UploadOp>, source: PartSource<B>, req: UploadRequest, io: MultipartIo<B>): Promise<MultipartResult> {
  if (io.signal.aborted) throw new UploadInterrupted();
  const { key } = req;
  if (source.size === undefined && !source.bytesIn) throw new TypeError('a PartSource without a size needs bytesIn');
  const size = source.size ?? STREAM_SIZE_CEILING;
  const plan = uploadPlanOf(await api.send({ op: 'startUpload', key, size, mtime: req.mtime, to: req.to, ...(req.touch ? { touch: true } : {}) }), size);
  const started: StoreOutcome[] = plan.failed.map((f) => ({ store: f.store, ok: false, error: `could not start the upload: ${f.error ?? 'failed'}` }));
  const report: MultipartReport = { partSize: plan.partSize, parts: plan.parts, uploads: plan.uploads, aborted: [], abortFailed: [] };
  if (plan.uploads.length === 0) return { size: source.size ?? 0, results: byStore(started), multipart: report };

  const abort = async (uploads: UploadTarget[]) => {
    if (uploads.length === 0) return;
    const stores = uploads.map((u) => u.store);
    try {
      const answer = writeAnswerOf(await api.send({ op: 'abortUpload', key, uploads }), 'nothing was aborted');
      for (const s of stores) (answer.results.find((r) => r.store === s)?.ok ? report.aborted : report.abortFailed).push(s);
    } catch {
      report.abortFailed.push(...stores);
    }
  };

  const bar = source.size !== undefined ? io.progress?.(source.size) : undefined;
  let parts: PartsResult;
  try {
    parts = await uploadParts(api, key, source, plan, io, bar);
    report.parts = parts.count;
    await source.verify?.();
  } catch (err) {
    await abort(plan.uploads);
    throw new UploadAborted(err, 'parts', report);
  } finally {
    bar?.stop();
  }

  const dropped = plan.uploads.filter((u) => parts.dropped.has(u.store));
  const complete = plan.uploads.filter((u) => !parts.dropped.has(u.store));
  let answer: WriteAnswer | undefined;
  if (complete.length > 0) {
    try {
      const uploads = complete.map((u) => ({ ...u, parts: parts.etags.get(u.store)!.sort((a, b) => a.n - b.n) }));
      answer = writeAnswerOf(await api.send({ op: 'completeUpload', key, uploads }), 'nothing was stored');
    } catch (err) {
      // The completion may have run before the answer was lost: aborting then changes nothing.
      await abort(plan.uploads);
      throw new UploadAborted(err, 'complete', report);
    }
  }
  const failedToComplete = complete.filter((u) => !answer?.results.find((r) => r.store === u.store)?.ok);
  await abort([...dropped, ...failedToComplete]);

  const results = [
    ...started,
    ...dropped.map((u) => ({ store: u.store, ok: false, error: parts.dropped.get(u.store)! })),
    ...(answer?.results ?? []),
  ];
  return { size: parts.bytes, results: byStore(results), ...(answer ? { answer } : {}), multipart: report };
}

interface PartsResult {
  /** Parts sent (fewer than planned when a stream ended early). */
  count: number;
  bytes: number;
  /** Per store still in the upload: the ETag of every part. */
  etags: Map<string, DonePart[]>;
  /** Stores dropped from the upload, with why. */
  dropped: Map<string, string>;
}

/**
 * Sends every part to every store of the plan. Each part is read from the source once and PUT
 * to all stores at once, `concurrency` parts at a time. A part that fails `attempts` times on a
 * store drops that store (the others go on); a 403 re-signs the part first, since an expired
 * link answers 403. Throws when the source cannot be read, signing fails, or the signal aborts;
 * every store dropped is a result, not an error.
 */
async function uploadParts<B>(
  api: ApiSender<UploadOp>,
  key: string,
  source: PartSource<B>,
  plan: UploadPlan,
  io: MultipartIo<B>,
  bar: { update(sent: number): void } | undefined,
): Promise<PartsResult> {
  const { signBatch, attempts } = UPLOAD_DEFAULTS;
  const retryDelayMs = io.retryDelayMs ?? UPLOAD_DEFAULTS.retryDelayMs;
  const concurrency = Math.max(1, Math.min(UPLOAD_DEFAULTS.concurrency, Math.floor(UPLOAD_DEFAULTS.memoryBudget / plan.partSize), plan.parts));
  const active = new Map(plan.uploads.map((u) => [u.store, u]));
  const etags = new Map(plan.uploads.map((u): [string, DonePart[]] => [u.store, []]));
  const dropped = new Map<string, string>();
  // Stops every worker on the first error or on interruption; part PUTs in flight are cancelled.
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  io.signal.addEventListener('abort', onInterrupt, { once: true });

  const sign = async (uploads: UploadTarget[], parts: number[]): Promise<Record<string, string[]>> =>
    signedUrlsOf(await api.send({ op: 'signParts', key, uploads, parts }, { signal: stop.signal }), uploads, parts);
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
    if (!url) throw new AnswerError('malformed', 200, undefined, `no URL was signed for part ${n} on ${store}`);
    return url;
  };

  const sendPart = async (store: string, n: number, body: B): Promise<void> => {
    let url = await urlFor(store, n);
    let why = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (stop.signal.aborted || !active.has(store)) return;
      const out = await io.sendPart(url, body, stop.signal);
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
  // The number of the last part: the plan's for a known size, found by reading for a stream.
  let last = source.size !== undefined ? plan.parts : Infinity;
  const worker = async (slot: number) => {
    for (;;) {
      if (stop.signal.aborted || active.size === 0) return;
      const n = next++;
      if (n > plan.parts || n > last) return;
      const start = (n - 1) * plan.partSize;
      const length = source.size !== undefined ? Math.min(plan.partSize, source.size - start) : plan.partSize;
      const body = await source.readPart(n, start, length, slot);
      if (body === null) {
        if (n === 1) throw new Error('the source gave no first part');
        last = Math.min(last, n - 1);
        return;
      }
      const bytes = source.size !== undefined ? length : source.bytesIn!(body);
      if (bytes < length) last = Math.min(last, n); // only the last part of a stream is short
      await Promise.all([...active.keys()].map((store) => sendPart(store, n, body)));
      sent += bytes;
      bar?.update(sent);
    }
  };

  // The first error is the cause; what the other workers throw once stopped is its echo.
  let firstError: unknown;
  if (io.signal.aborted) stop.abort();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, (_, slot) =>
        worker(slot).catch((err: unknown) => {
          firstError ??= err;
          stop.abort();
        }),
      ),
    );
    if (io.signal.aborted) throw new UploadInterrupted();
    if (firstError !== undefined) throw firstError;
    // Every planned part was full and the stream had not ended: it is over the ceiling.
    if (last === Infinity && active.size > 0) throw new Error(`the stream is longer than the ${plan.parts * plan.partSize} bytes an upload of unknown size can take`);
    return { count: Math.min(last, next - 1), bytes: sent, etags, dropped };
  } finally {
    io.signal.removeEventListener('abort', onInterrupt);
  }
}
