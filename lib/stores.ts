import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { InvalidKeyError, ObjectChangedError, StoreUnavailableError, UnknownStoreError } from './errors';
import { createS3Client, type Config, type S3Flavor } from './config';
import { META, parseMtime, stampOf, type Stamp } from './stamps';

/*
 * The store adapter: every request to a store's bucket goes through this module, and every
 * write and delete into a store goes through `putObject`, `copyObject`, `deleteObject` and
 * `completeUpload` (the write gate). Its contract, for every function:
 *   - a missing object is `null` (never an error);
 *   - a conditional write whose condition failed is ObjectChangedError (412; 404 on If-Match;
 *     S3's 409 ConditionalRequestConflict once our own retries are spent);
 *   - anything else (network, 5xx, throttling, access denied, a missing bucket) is
 *     StoreUnavailableError: none of them says whether the store holds the object.
 * Differences between S3 and s3rver (the local stack) live here and nowhere else.
 */

/** A store ready to use: its name, its bucket and the client that reaches it. */
export interface Store {
  name: string;
  bucket: string;
  s3: S3Client;
  /**
   * Client for presigned upload URLs: it must not add flexible checksums, or the SDK signs
   * the CRC of an empty body into the URL and S3 refuses the real part. Defaults to `s3`.
   */
  signer?: S3Client;
  /** Which S3 answers (s3rver decodes CopySource its own way). Default: `aws`. */
  flavor?: S3Flavor;
}

/** Builds one client per distinct (region, endpoint) and hands each store its own. */
export function connectStores(config: Pick<Config, 'stores' | 's3Endpoint' | 'flavor'>): Store[] {
  const clients = new Map<string, { s3: S3Client; signer: S3Client }>();
  return config.stores.map((s) => {
    const endpoint = s.endpoint ?? config.s3Endpoint;
    const id = `${s.region ?? ''}|${endpoint ?? ''}`;
    let pair = clients.get(id);
    if (!pair) {
      pair = {
        s3: createS3Client({ region: s.region, endpoint, system: true }),
        signer: createS3Client({ region: s.region, endpoint, requestChecksumCalculation: 'WHEN_REQUIRED', system: true }),
      };
      clients.set(id, pair);
    }
    return { name: s.name, bucket: s.bucket, flavor: config.flavor, ...pair };
  });
}

/** The store called `name`; throws UnknownStoreError listing the configured ones. */
export function storeNamed(stores: Store[], name: string): Store {
  const store = stores.find((s) => s.name === name);
  if (!store) throw new UnknownStoreError(`unknown store "${name}"; stores are: ${stores.map((s) => s.name).join(', ')}`);
  return store;
}

/** What a HEAD (or the headers of a GET) tells about one copy. */
export interface ObjectHead {
  store: string;
  size: number;
  etag: string;
  /** The file's mtime, ms: x-amz-meta-mtime when valid, else LastModified. Decides between live versions. */
  mtimeMs: number;
  /** The write this copy holds; absent for a version written without our metadata. */
  stamp?: Stamp;
  /** S3's LastModified, ms: when this copy was written, so never used to judge the write it holds. */
  lastModifiedMs: number;
  contentType?: string;
  /** Full-object checksums by algorithm, only when S3 says they are FULL_OBJECT. */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  /** False when the ETag is not the MD5 of the content (SSE-KMS, SSE-C). */
  etagIsMd5: boolean;
  metadata: Record<string, string>;
}

export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

interface HeadLike {
  ContentLength?: number;
  ContentType?: string;
  ETag?: string;
  LastModified?: Date;
  Metadata?: Record<string, string>;
  ChecksumCRC32?: string;
  ChecksumCRC32C?: string;
  ChecksumCRC64NVME?: string;
  ChecksumSHA1?: string;
  ChecksumSHA256?: string;
  ChecksumType?: string;
  ServerSideEncryption?: string;
  SSECustomerAlgorithm?: string;
}

export function toObjectHead(store: string, h: HeadLike): ObjectHead {
  const metadata = h.Metadata ?? {};
  const etag = h.ETag ?? '';
  const checksums: ObjectHead['checksums'] = {};
  // Without ChecksumType an object's checksum is full-object unless it was a multipart upload.
  const fullObject = h.ChecksumType === 'FULL_OBJECT' || (h.ChecksumType === undefined && !isMultipartEtag(etag));
  if (fullObject) {
    for (const alg of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
      const v = h[`Checksum${alg}`];
      if (v && !v.includes('-')) checksums[alg] = v;
    }
  }
  const lastModifiedMs = h.LastModified?.getTime() ?? 0;
  const stamp = stampOf(metadata);
  return {
    store,
    size: h.ContentLength ?? 0,
    etag,
    mtimeMs: parseMtime(metadata[META.mtime]) ?? stamp?.madeMs ?? lastModifiedMs,
    ...(stamp ? { stamp } : {}),
    lastModifiedMs,
    ...(h.ContentType ? { contentType: h.ContentType } : {}),
    checksums,
    etagIsMd5: h.ServerSideEncryption !== 'aws:kms' && h.ServerSideEncryption !== 'aws:kms:dsse' && !h.SSECustomerAlgorithm,
    metadata,
  };
}

/** An ETag without its quotes, as the API shows it and replica metadata records it. */
export const bareEtag = (etag: string) => etag.replace(/"/g, '');

export function isMultipartEtag(etag: string): boolean {
  return etag.includes('-');
}

type SdkError = { name?: string; message?: string; $metadata?: { httpStatusCode?: number; attempts?: number } };

/**
 * Error names and statuses that mean "this store has no such object". A missing bucket is a
 * broken store, not an empty one (a HEAD cannot tell them apart: it has no error body).
 */
export function isMissing(err: unknown): boolean {
  const e = err as SdkError;
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

const isPrecondition = (err: unknown) => {
  const e = err as SdkError;
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
};

/** S3 answers 409 ConditionalRequestConflict when two conditional writes to one key overlap. */
const isConditionalConflict = (err: unknown) => (err as SdkError)?.name === 'ConditionalRequestConflict';

/**
 * Runs one call against a store, translating every failure that is not "missing" into
 * StoreUnavailableError: network errors, timeouts, 5xx, throttling and access denied alike,
 * because none of them says anything about whether the store holds the object.
 */
export async function onStore<T>(store: Store, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isMissing(err)) throw err;
    throw new StoreUnavailableError(store.name, { cause: err });
  }
}

/** Like onStore, with a missing object answered as null. */
async function orNull<T>(store: Store, call: () => Promise<T>): Promise<T | null> {
  try {
    return await onStore(store, call);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

/** What a conditional write requires of the object it replaces. */
export type WriteCondition = { ifMatch: string } | { ifAbsent: true } | undefined;

const conditionHeaders = (c: WriteCondition) =>
  c === undefined ? {} : 'ifMatch' in c ? { IfMatch: c.ifMatch } : { IfNoneMatch: '*' };

const CONFLICT_RETRIES = 3;

/**
 * Runs a write. A failed condition becomes ObjectChangedError (and 409 ConditionalRequestConflict is
 * retried first: S3 asks for that when two conditional writes overlap); everything else
 * unavailable. `conditional` says whether a 404 means the object conditioned on is gone.
 */
async function write<T>(store: Store, key: string, conditional: boolean, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (isConditionalConflict(err) && attempt < CONFLICT_RETRIES) {
        await new Promise((r) => setTimeout(r, 50 * attempt));
        continue;
      }
      if (isPrecondition(err) || isConditionalConflict(err) || (conditional && isMissing(err))) {
        throw new ObjectChangedError(store.name, key, { cause: err });
      }
      throw new StoreUnavailableError(store.name, { cause: err });
    }
  }
}

/**
 * True when a failed write certainly did not happen: S3 refused it on the first attempt. After a
 * lost answer and an SDK retry, a 404 or 412 may be our own first attempt's doing.
 */
export function certainlyNotDone(err: unknown): boolean {
  if (!(err instanceof ObjectChangedError)) return false;
  return ((err.cause as SdkError)?.$metadata?.attempts ?? 1) <= 1;
}

/**
 * s3rver keeps each key segment as a file name, with a suffix on the last: a segment over 255
 * bytes (the last over 233) it cannot store, and refuses (scripts/s3rver-like-s3.ts). Such a key
 * cannot be on a local store, and writing it is the request's problem, not an unavailable store.
 */
function localKeyProblem(store: Store, key: string): string | undefined {
  if (store.flavor !== 's3rver') return undefined;
  const segments = key.split('/');
  const long = segments.some((s) => Buffer.byteLength(s) > 255) || Buffer.byteLength(segments[segments.length - 1]!) > 233;
  return long ? 'the local stack cannot store a path segment over 255 bytes (the last over 233); S3 can' : undefined;
}

/** Throws InvalidKeyError for a key `store` cannot hold (see localKeyProblem). */
function checkWritable(store: Store, key: string): void {
  const problem = localKeyProblem(store, key);
  if (problem) throw new InvalidKeyError(problem);
}

/** HEADs `key` on one store: its head, or null when the store does not hold it. */
export async function headObject(store: Store, key: string): Promise<ObjectHead | null> {
  if (localKeyProblem(store, key)) return null;
  const h = await orNull(store, () => store.s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key, ChecksumMode: 'ENABLED' })));
  if (!h) await bucketExists(store);
  return h && toObjectHead(store.name, h);
}

/** How long a bucket seen to exist is taken to still exist, before a miss asks again. */
const BUCKET_SEEN_MS = 30_000;
const bucketsSeen = new WeakMap<S3Client, Map<string, number>>();

/**
 * A HEAD answers a missing bucket with a bare 404, like a missing key: before a miss is taken
 * for "not held", the bucket must be there (HeadBucket, remembered for BUCKET_SEEN_MS). A
 * missing bucket is a broken store: StoreUnavailableError.
 */
async function bucketExists(store: Store): Promise<void> {
  const seen = bucketsSeen.get(store.s3) ?? new Map<string, number>();
  bucketsSeen.set(store.s3, seen);
  if ((seen.get(store.bucket) ?? -Infinity) > Date.now() - BUCKET_SEEN_MS) return;
  try {
    await store.s3.send(new HeadBucketCommand({ Bucket: store.bucket }));
  } catch (err) {
    throw new StoreUnavailableError(store.name, { cause: isMissing(err) ? Object.assign(new Error(`bucket ${store.bucket} does not exist`), { name: 'NoSuchBucket' }) : err });
  }
  seen.set(store.bucket, Date.now());
}

/**
 * GETs `key` whole: its head and an open body stream, or null when missing. The caller reads
 * the body (readBody) or destroys it.
 */
export async function getObject(store: Store, key: string): Promise<{ head: ObjectHead; body: Readable; length?: number } | null> {
  if (localKeyProblem(store, key)) return null;
  const res = await orNull(store, () => store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key, ChecksumMode: 'ENABLED' })));
  return res && { head: toObjectHead(store.name, res), body: res.Body as Readable, ...(res.ContentLength !== undefined ? { length: res.ContentLength } : {}) };
}

/**
 * Reads a copy (all of it, or `range` = [start, end] inclusive), pinned to `etag`: a copy
 * replaced or deleted meanwhile is ObjectChangedError, never read half old, half new.
 */
export async function getRange(
  store: Store,
  key: string,
  etag: string,
  opts: { range?: [number, number]; signal?: AbortSignal; into?: Buffer } = {},
): Promise<Buffer> {
  return write(store, key, true, async () => {
    const res = await store.s3.send(
      new GetObjectCommand({ Bucket: store.bucket, Key: key, IfMatch: etag, ...(opts.range ? { Range: `bytes=${opts.range[0]}-${opts.range[1]}` } : {}) }),
      { abortSignal: opts.signal },
    );
    return readBody(res.Body, res.ContentLength, opts.into);
  });
}

/**
 * Opens the whole copy `etag` names as a stream, pinned to that ETag: a copy replaced or
 * deleted before the read begins is ObjectChangedError; once the body flows, S3 serves that one
 * version to its end. The caller reads the body or destroys it; a failure while it flows comes
 * out of the stream untranslated (the caller knows which store it reads).
 */
export async function openPinned(
  store: Store,
  key: string,
  etag: string,
  signal?: AbortSignal,
): Promise<{ body: Readable; length: number | undefined; etag: string | undefined }> {
  return write(store, key, true, async () => {
    const res = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key, IfMatch: etag }), { abortSignal: signal });
    return { body: res.Body as Readable, length: res.ContentLength, etag: res.ETag };
  });
}

/**
 * Reads a whole response body into one buffer. With the length known (always, from S3) the
 * bytes are copied once into a buffer of that size: collecting chunks and concatenating them
 * would hold every byte two or three times at the peak of a large compare. With `into`, the
 * bytes land in (the start of) that buffer instead.
 */
export async function readBody(body: unknown, length: number | undefined, into?: Buffer): Promise<Buffer> {
  if (!(body instanceof Readable) || length === undefined) {
    return Buffer.from(await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  }
  // A caller reading chunk after chunk lends its own buffer, so nothing is left for the GC.
  const out = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  let at = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (at + chunk.length > length) throw new Error(`body longer than its Content-Length ${length}`);
    chunk.copy(out, at);
    at += chunk.length;
  }
  if (at !== length) throw new Error(`body ended after ${at} of ${length} bytes`);
  return out;
}

export interface PutOptions {
  metadata: Record<string, string>;
  contentType?: string;
  condition?: WriteCondition;
}

/** Writes a small body. Returns the new ETag (quoted, as S3 gives it). */
export async function putObject(store: Store, key: string, body: Buffer | string, opts: PutOptions): Promise<string> {
  checkWritable(store, key);
  const res = await write(store, key, opts.condition !== undefined, () =>
    store.s3.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: key,
        Body: body,
        Metadata: opts.metadata,
        ...(opts.contentType ? { ContentType: opts.contentType } : {}),
        ...conditionHeaders(opts.condition),
      }),
    ),
  );
  return res.ETag ?? '';
}

const MAX_COPY_OBJECT = 5 * 1024 ** 3;

/** CopySource is URL-encoded on AWS; s3rver decodes it with decodeURI, which spares reserved characters. */
function copySource(store: Store, bucket: string, key: string): string {
  const encoded = store.flavor === 's3rver' ? encodeURI(key) : key.split('/').map(encodeURIComponent).join('/');
  return `${bucket}/${encoded}`;
}

/**
 * Copies the version `src` (as HEADed on `from`) to `to` under the same key with `metadata`,
 * if `to`'s object still meets `condition`: a newer write landing meanwhile wins and this copy
 * fails with ObjectChangedError instead of overwriting it. The source is pinned to its ETag too.
 * Same-endpoint copies up to 5 GiB stay inside S3; others stream through this process with
 * bounded memory. `from` and `to` may be the same store (re-stamping a version in place), and the
 * source may sit under another key (`fromKey`: a version kept in the control bucket).
 */
export async function copyObject(
  from: Store,
  to: Store,
  key: string,
  src: ObjectHead,
  metadata: Record<string, string>,
  condition: WriteCondition,
  fromKey: string = key,
): Promise<string> {
  checkWritable(to, key);
  if (from.s3 === to.s3 && src.size <= MAX_COPY_OBJECT) {
    const res = await write(to, key, true, () =>
      to.s3.send(
        new CopyObjectCommand({
          Bucket: to.bucket,
          Key: key,
          CopySource: copySource(to, from.bucket, fromKey),
          CopySourceIfMatch: src.etag,
          MetadataDirective: 'REPLACE',
          Metadata: metadata,
          ...(src.contentType ? { ContentType: src.contentType } : {}),
          ...conditionHeaders(condition),
        }),
      ),
    );
    return res.CopyObjectResult?.ETag ?? '';
  }
  const got = await write(from, fromKey, true, () => from.s3.send(new GetObjectCommand({ Bucket: from.bucket, Key: fromKey, IfMatch: src.etag })));
  const res = await write(to, key, condition !== undefined, () =>
    new Upload({
      client: to.s3,
      params: { Bucket: to.bucket, Key: key, Body: got.Body as Readable, Metadata: metadata, ContentType: src.contentType, ...conditionHeaders(condition) },
      queueSize: 2,
      partSize: 16 * 1024 * 1024,
    }).done(),
  );
  return (res as { ETag?: string }).ETag ?? '';
}

/** Deletes `key`, only if it still is `ifMatch` when given. Deleting a missing key is not an error. */
export async function deleteObject(store: Store, key: string, ifMatch?: string): Promise<void> {
  if (localKeyProblem(store, key)) return;
  await write(store, key, ifMatch !== undefined, () =>
    store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key, ...(ifMatch ? { IfMatch: ifMatch } : {}) })),
  );
}

/** One object as a store's listing shows it. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  /** S3's LastModified in ms: a listing carries no user metadata, so no mtime or stamp. */
  lastModifiedMs: number;
}

export interface ListPage {
  objects: ListedObject[];
  /** Pass back as `token` for the next page; undefined on the last. */
  next?: string;
}

/** One page of `store`'s listing under `prefix`, after the key `after` or from `token`. */
export async function listPage(store: Store, opts: { prefix?: string; after?: string; token?: string; max: number }): Promise<ListPage> {
  const page = await onStore(store, () =>
    store.s3.send(
      new ListObjectsV2Command({
        Bucket: store.bucket,
        Prefix: opts.prefix || undefined,
        ...(opts.token ? { ContinuationToken: opts.token } : opts.after ? { StartAfter: opts.after } : {}),
        MaxKeys: opts.max,
      }),
    ),
  );
  return {
    objects: (page.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag ?? '', lastModifiedMs: o.LastModified?.getTime() ?? 0 })),
    ...(page.IsTruncated && page.NextContinuationToken ? { next: page.NextContinuationToken } : {}),
  };
}

/** A presigned GET of the current object, valid `seconds`. */
export function presignGet(store: Store, key: string, seconds: number): Promise<string> {
  return getSignedUrl(store.s3, new GetObjectCommand({ Bucket: store.bucket, Key: key }), { expiresIn: seconds });
}

/** Starts a multipart upload; returns its id. */
export async function createUpload(store: Store, key: string, metadata: Record<string, string>, contentType: string): Promise<string> {
  checkWritable(store, key);
  const res = await onStore(store, () =>
    store.s3.send(new CreateMultipartUploadCommand({ Bucket: store.bucket, Key: key, ContentType: contentType, Metadata: metadata })),
  );
  if (!res.UploadId) throw new StoreUnavailableError(store.name, { cause: new Error('CreateMultipartUpload answered without an UploadId') });
  return res.UploadId;
}

/** A presigned PUT for one part of an upload, valid `seconds`. */
export function presignPart(store: Store, key: string, uploadId: string, part: number, seconds: number): Promise<string> {
  return getSignedUrl(store.signer ?? store.s3, new UploadPartCommand({ Bucket: store.bucket, Key: key, UploadId: uploadId, PartNumber: part }), {
    expiresIn: seconds,
  });
}

/** Completes an upload from its parts (sorted here); returns the new ETag. */
export async function completeUpload(store: Store, key: string, uploadId: string, parts: { n: number; etag: string }[]): Promise<string> {
  const res = await write(store, key, false, () =>
    store.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: store.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: [...parts].sort((a, b) => a.n - b.n).map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
      }),
    ),
  );
  return res.ETag ?? '';
}

/** Aborts an upload so its parts are not billed. s3rver has no abort: its parts are local files. */
export async function abortUpload(store: Store, key: string, uploadId: string): Promise<void> {
  try {
    await store.s3.send(new AbortMultipartUploadCommand({ Bucket: store.bucket, Key: key, UploadId: uploadId }));
  } catch (err) {
    if (store.flavor === 's3rver' && (err as SdkError)?.name === 'MethodNotAllowed') return;
    // NoSuchUpload (a 404) is this store's answer about the upload, not a missing file.
    throw new StoreUnavailableError(store.name, { cause: err });
  }
}

/** Why one store did not do what was asked: a short code and our own words, never S3's text. */
export interface Failure {
  code: string;
  message: string;
  /** True when the request itself was at fault (a forged upload, a part never sent), not the store. */
  clientFault: boolean;
}

const FAILURES: Record<string, [string, boolean]> = {
  NoSuchBucket: ["the store's bucket does not exist", false],
  AccessDenied: ['the stack is not allowed to use this store', false],
  NoSuchUpload: ['no such upload: it was completed, aborted or never started', true],
  InvalidPart: ['a part was never uploaded, or is not the part uploaded', true],
  InvalidPartOrder: ['the parts are not in order', true],
  EntityTooSmall: ['a part other than the last is under 5 MiB', true],
  PreconditionFailed: ['the file changed on the store meanwhile', false],
  SlowDown: ['the store is throttling requests', false],
};

/** What went wrong with one store, in words a user can act on (the SDK's message is logged, not shown). */
export function describeFailure(err: unknown): Failure {
  const cause = (err instanceof StoreUnavailableError || err instanceof ObjectChangedError ? err.cause : err) as SdkError | undefined;
  const name = cause?.name ?? '';
  const known = FAILURES[name];
  if (known) return { code: name, message: known[0], clientFault: known[1] };
  const status = cause?.$metadata?.httpStatusCode;
  if (status === undefined) return { code: 'NoAnswer', message: 'the store did not answer', clientFault: false };
  if (status >= 500) return { code: 'StoreFailed', message: `the store failed (S3 answered ${status})`, clientFault: false };
  return { code: name || `Http${status}`, message: `the store refused the request (${name || status})`, clientFault: false };
}

/** Every store's answer, or its name among `unavailable`. */
export interface Answers<T> {
  answers: Map<string, T>;
  unavailable: string[];
}

/**
 * Asks every store at once and names those that did not answer (StoreUnavailableError); any
 * other error is a bug and is thrown.
 */
export async function askEvery<T>(stores: Store[], ask: (store: Store) => Promise<T>): Promise<Answers<T>> {
  const settled = await Promise.allSettled(stores.map(ask));
  const answers = new Map<string, T>();
  const unavailable: string[] = [];
  settled.forEach((r, i) => {
    const name = stores[i]!.name;
    if (r.status === 'fulfilled') answers.set(name, r.value);
    else if (r.reason instanceof StoreUnavailableError) unavailable.push(name);
    else throw r.reason;
  });
  return { answers, unavailable };
}
