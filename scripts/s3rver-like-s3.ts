/**
 * s3rver 3.7.1 made to keep the promises of S3 that s3-dfs relies on. One module for every
 * s3rver we run: the local stack's (serverless-s3-local's, inside `sls offline`, patched by
 * infra/s3rver-like-s3.js), the one that seeds it (scripts/stack.ts) and the tests'
 * (test/helpers/s3rver.ts). What S3 does and s3rver does not:
 *
 * - Conditional requests: `If-Match` / `If-None-Match: *` on PUT, copy and
 *   CompleteMultipartUpload, `If-Match` on DELETE, GET and HEAD, `x-amz-copy-source-if-match`.
 *   s3rver ignores them all but If-None-Match on reads; replication and locks depend on them.
 * - One version at a time per key: requests on one key run one after another (a copy holds its
 *   source too), writes replace an object's file whole (written aside, then renamed) and a PUT is
 *   answered once its bytes are on disk. s3rver rewrites the file in place and answers before
 *   flushing, so a reader could see an empty or half-written object.
 * - CompleteMultipartUpload checks the parts it is given (InvalidPart, InvalidPartOrder,
 *   NoSuchUpload) instead of crashing on a missing one.
 * - Exact event sequencers, strictly increasing, never shared; copy events carry the ETag, as
 *   S3's do (replication dates a version by its event only when the event names its bytes).
 * - An event names who made the request (`userIdentity.principalId`, `AWS:` and the access key
 *   id here); s3rver makes up a random one. Replication tells its own deletes from users' by it.
 * - Keys s3rver cannot store as themselves (a path segment too long for a file name, a `.`/`..`
 *   or empty segment) are refused with an S3 error, and no filesystem error crashes the process.
 *
 * Not covered: s3rver's form POST and multi-object delete learn their keys from the body, so
 * they are not serialised (they are still refused on keys s3rver cannot store), and a
 * multi-object delete still emits no events.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, type Stats } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { LOCAL_SYSTEM_ACCESS_KEY } from '../lib/config';

// s3rver ships no types. Its error class is what its error handler answers as S3's XML error.
/* eslint-disable @typescript-eslint/no-var-requires */
const S3Error = require('s3rver/lib/models/error') as new (code: string, message: string, detail?: object) => Error;
const S3Object = require('s3rver/lib/models/object') as new (bucket: string, key: string, content: unknown, metadata: object) => StoredObject;
const account = require('s3rver/lib/models/account') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
// The query parameters s3rver routes an object request by (?uploadId, ?tagging, …).
const SUBRESOURCES = new Set<string>([...require('s3rver/lib/controllers/object').METHODS, ...require('s3rver/lib/controllers/bucket').METHODS]);
/* eslint-enable @typescript-eslint/no-var-requires */
// Every s3rver of the process knows the system's key, patched or not (s3rver checks the key).
account.DUMMY_ACCOUNT.createKeyPair(LOCAL_SYSTEM_ACCESS_KEY, LOCAL_SYSTEM_ACCESS_KEY);

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Longest file or folder name on the filesystems we run on (ext4, APFS, tmpfs). */
export const MAX_SEGMENT_BYTES = 255;
/** s3rver names an object's files `<last segment>._S3rver_<resource>`; the longest suffix. */
const LONGEST_SUFFIX = '._S3rver_metadata.json'.length;
/** Files written aside before they replace an object; s3rver's listing skips them. */
const TEMP_PREFIX = '._S3rver_tmp-';

const APPLIED = Symbol.for('s3-dfs.s3rver-like-s3');

interface StoredObject {
  bucket: string;
  key: string;
  content: Buffer | NodeJS.ReadableStream;
  metadata: Record<string, string>;
}

/** An object's metadata as s3rver's store answers it: its ETag, dates, length and headers. */
type StoredMetadata = { etag: string } & Record<string, unknown>;

/** The parts of s3rver's FilesystemStore this module replaces or uses. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<StoredMetadata>;
  putMetadata(bucket: string, key: string, metadata: object, md5?: string): Promise<void>;
  deleteObject(bucket: string, key: string): Promise<void>;
  putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
  copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, replacement: object | null): Promise<object>;
  putPart(bucket: string, uploadId: string, partNumber: number | string, content: NodeJS.ReadableStream): Promise<{ size: number; md5: string }>;
  putObjectMultipart(bucket: string, uploadId: string, parts: { number: number; etag: string }[]): Promise<{ size: number; md5: string }>;
  getSubresource(bucket: string, key: string | undefined, type: string): Promise<unknown>;
  putSubresource(bucket: string, key: string | undefined, resource: { type: string }): Promise<void>;
  deleteSubresource(bucket: string, key: string | undefined, type: string): Promise<void>;
  putBucket(bucket: string): Promise<unknown>;
  deleteBucket(bucket: string): Promise<void>;
}

interface Context {
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string | undefined>;
  app: { store: FilesystemStore };
  /** Sets a response header. */
  set(name: string, value: string): void;
}
type Middleware = (ctx: Context, next: () => Promise<void>) => Promise<void>;

/** An s3rver instance, before or after run(): a Koa app with a store. */
interface S3rverApp {
  middleware: Middleware[];
  silent?: boolean;
  store: FilesystemStore;
  httpServer?: Server;
  callback(): (...args: unknown[]) => void;
  emit(name: string | symbol, ...args: unknown[]): boolean;
  [APPLIED]?: true;
}

/**
 * Makes an s3rver instance keep S3's promises (see the top of this file). Call it before or
 * after `run()`; a second call on the same instance does nothing.
 */
export function makeS3rverLikeS3(server: unknown): void {
  const app = server as S3rverApp;
  if (app[APPLIED]) return;
  app[APPLIED] = true;
  refuseUnstorableKeys(app.store);
  replaceObjectsWhole(app.store);
  metadataKeptInMemory(app.store);
  exactSequencers(app);
  etagsOnCopyEvents(app);
  requestIds(app);
  requesterPrincipals(app);
  lessWorkPerRequest(app);
  addMiddleware(app, likeS3Requests());
}

/* ------------------------------------------------------------------ requests */

/**
 * The local stack runs s3rver on one thread beside the emulated Lambdas, and replication's
 * latency there is mostly queueing for it. Two costs of every request that change nothing:
 * - a silent s3rver still runs koa-logger, which formats a line per request and response for
 *   winston to drop;
 * - s3rver reads a bucket's CORS and website configuration from disk on every request. They are
 *   kept in memory here, replaced when s3rver writes or deletes them (S3's own API, or
 *   `configureBuckets`), and forgotten with the bucket.
 */
function lessWorkPerRequest(app: S3rverApp): void {
  if (app.silent) app.middleware = app.middleware.filter((m) => m.name !== 'logger');
  const store = app.store;
  const configs = new Map<string, Promise<unknown>>();
  const id = (bucket: string, type: string) => `${bucket}\0${type}`;
  const forgetBucket = (bucket: string) => {
    for (const k of configs.keys()) if (k.startsWith(`${bucket}\0`)) configs.delete(k);
  };
  const { getSubresource, putSubresource, deleteSubresource, putBucket, deleteBucket } = store;
  store.getSubresource = function cachedSubresource(bucket, key, type) {
    if (key !== undefined) return getSubresource.call(this, bucket, key, type);
    let config = configs.get(id(bucket, type));
    if (!config) {
      config = getSubresource.call(this, bucket, key, type);
      configs.set(id(bucket, type), config);
      config.catch(() => configs.delete(id(bucket, type))); // a failed read is not remembered
    }
    return config;
  };
  store.putSubresource = async function storedSubresource(bucket, key, resource) {
    if (key === undefined) configs.delete(id(bucket, resource.type));
    await putSubresource.call(this, bucket, key, resource);
    if (key === undefined) configs.delete(id(bucket, resource.type));
  };
  store.deleteSubresource = async function deletedSubresource(bucket, key, type) {
    if (key === undefined) configs.delete(id(bucket, type));
    await deleteSubresource.call(this, bucket, key, type);
    if (key === undefined) configs.delete(id(bucket, type));
  };
  store.putBucket = function createdBucket(bucket) {
    forgetBucket(bucket);
    return putBucket.call(this, bucket);
  };
  store.deleteBucket = async function deletedBucket(bucket) {
    forgetBucket(bucket);
    await deleteBucket.call(this, bucket);
    forgetBucket(bucket);
  };
}

/**
 * One middleware, after s3rver's logger and vhost rewrite and before its router: refuses what
 * s3rver cannot store, serialises each key, checks the conditions, and turns filesystem errors
 * into S3 errors (a stream error nobody handled would take the whole `sls offline` down).
 */
function likeS3Requests(): Middleware {
  const locks = new KeyLocks();
  return async function s3rverLikeS3(ctx, next) {
    const target = parseTarget(ctx.path);
    if (!target?.key) return guarded(next);
    const { bucket, key } = target;
    const query = ctx.query;
    const source = ctx.method === 'PUT' && !hasSubresource(query) ? copySourceOf(ctx.headers['x-amz-copy-source']) : undefined;
    if ('uploadId' in query) checkUpload(query);
    // Parts are no object yet: uploading them in parallel is the point of a multipart upload.
    if ('uploads' in query || (ctx.method === 'PUT' && 'uploadId' in query)) return guarded(next);

    const writes = (ctx.method === 'PUT' && !hasSubresource(query)) || (ctx.method === 'POST' && 'uploadId' in query);
    const names = [`${bucket}/${key}`, ...(source ? [`${source.bucket}/${source.key}`] : [])];
    await locks.hold(names, async () => {
      const store = ctx.app.store;
      // s3rver completes an upload under the key it was started with, whatever the URL says;
      // S3 knows the upload only under its own key. Checked, the lock held is the key written.
      if (ctx.method === 'POST' && 'uploadId' in query) {
        const uploadId = query.uploadId as string;
        const started = await fs.readFile(join(uploadDir(store, bucket, uploadId), 'key'), 'utf8').catch(() => undefined);
        if (started !== key) throw noSuchUpload(uploadId);
      }
      const ifMatch = ctx.headers['if-match'];
      if (ifMatch !== undefined && (writes || ['DELETE', 'GET', 'HEAD'].includes(ctx.method))) {
        const current = await etagOf(store, bucket, key);
        if (current === undefined) throw noSuchKey(key);
        if (ifMatch !== '*' && unquote(ifMatch) !== current) throw preconditionFailed('If-Match');
      }
      if (writes && ctx.headers['if-none-match'] === '*' && (await etagOf(store, bucket, key)) !== undefined) {
        throw preconditionFailed('If-None-Match');
      }
      const sourceIfMatch = ctx.headers['x-amz-copy-source-if-match'];
      if (source && sourceIfMatch !== undefined) {
        const current = await etagOf(store, source.bucket, source.key);
        if (current === undefined) throw noSuchKey(source.key);
        if (unquote(sourceIfMatch) !== current) throw preconditionFailed('x-amz-copy-source-If-Match');
      }
      // A GET's body streams after this returns, from the file it opened: a later write
      // replaces that file by a rename, so the reader still gets one whole version.
      await guarded(next);
    });
  };
}

/** Bucket and key of a path-style request; the key is undefined for bucket and service requests. */
function parseTarget(path: string): { bucket: string; key?: string } | undefined {
  const m = /^\/([^/]+)(?:\/(.*))?$/.exec(path);
  if (!m) return undefined;
  const bucket = decode(m[1]!);
  // The store joins paths: bucket ".." would be the folder above the buckets.
  if (bucket === '.' || bucket === '..') throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', { BucketName: bucket });
  if (m[2] === undefined || m[2] === '') return { bucket };
  const key = decode(m[2]);
  checkStorable(key);
  return { bucket, key };
}

/** `x-amz-copy-source` read the way s3rver reads it (decodeURI, optional leading slash). */
function copySourceOf(header: string | undefined): { bucket: string; key: string } | undefined {
  if (header === undefined) return undefined;
  let raw: string;
  try {
    raw = decodeURI(header).replace(/^\//, '');
  } catch {
    throw new S3Error('InvalidArgument', 'Invalid copy source encoding.', { ArgumentName: 'x-amz-copy-source' });
  }
  const slash = raw.indexOf('/');
  if (slash <= 0) return undefined; // s3rver answers that one itself
  const source = { bucket: raw.slice(0, slash), key: raw.slice(slash + 1) };
  checkStorable(source.key);
  return source;
}

/** s3rver makes a folder of the upload id and a file of the part number: only its own ids pass. */
function checkUpload(query: Record<string, unknown>): void {
  const uploadId = query.uploadId;
  if (typeof uploadId !== 'string' || !/^[0-9a-f]{32}$/.test(uploadId)) throw noSuchUpload(String(uploadId));
  if ('partNumber' in query) {
    const n = Number(query.partNumber);
    if (!Number.isInteger(n) || n < 1 || n > 10_000 || String(n) !== query.partNumber) {
      throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
        ArgumentName: 'partNumber',
        ArgumentValue: String(query.partNumber),
      });
    }
  }
}

function hasSubresource(query: Record<string, unknown>): boolean {
  return Object.keys(query).some((q) => SUBRESOURCES.has(q));
}

async function guarded(next: () => Promise<void>): Promise<void> {
  try {
    await next();
  } catch (err) {
    throw asS3Error(err);
  }
}

/**
 * s3rver's errors pass as they are. A filesystem error becomes an S3 error, so that it is
 * answered like one: a name the disk refuses is the key's fault (400), anything else is ours (500).
 */
function asS3Error(err: unknown): unknown {
  if (err instanceof S3Error) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENAMETOOLONG') return Object.assign(keyTooLong(), { cause: err });
  if (typeof code === 'string' && (err as NodeJS.ErrnoException).syscall !== undefined) {
    return Object.assign(new S3Error('InternalError', 'We encountered an internal error. Please try again.'), { cause: err });
  }
  return err;
}

/* ---------------------------------------------------------------------- keys */

/**
 * Refuses a key s3rver cannot store as itself. Its store keeps `a/b/c` as the file
 * `<bucket>/a/b/c._S3rver_object` (and `._S3rver_metadata.json`, `._S3rver_object.md5`):
 * - a segment longer than a file name may be (255 bytes; the last one loses 22 bytes to the
 *   suffix) made s3rver throw ENAMETOOLONG from a stream nobody listened to, which ended the
 *   process, and with it `sls offline`;
 * - `.` and `..` segments are resolved by the path join: `x/./y` was stored as `x/y`, `p/../q` as
 *   `q` and `../other/k` in another bucket, while the event named the key as sent;
 * - an empty segment (`a//b`, a leading `/`) would be joined away the same way (s3rver's router
 *   answered those with a bare, non-XML 404).
 * A key ending in `/` (a folder marker, `a/`) is stored and listed as itself: allowed.
 */
function checkStorable(key: string): void {
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', 'Your key is too long', { Size: Buffer.byteLength(key), MaxSizeAllowed: MAX_KEY_BYTES });
  }
  const segments = key.split('/');
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES - (last ? LONGEST_SUFFIX : 0)) throw keyTooLong();
    if (last) return;
    if (segment === '' || segment === '.' || segment === '..') {
      throw new S3Error(
        'InvalidArgument',
        `The local stack cannot store a key with ${segment === '' ? 'an empty' : `a "${segment}"`} path segment (s3rver keeps keys as file paths, where it would name another key).`,
        { ArgumentName: 'key', ArgumentValue: key },
      );
    }
  });
}

/** Keys reaching the store another way (form POST, multi-object delete) pass the same check. */
function refuseUnstorableKeys(store: FilesystemStore): void {
  const getResourcePath = store.getResourcePath;
  store.getResourcePath = function checkedResourcePath(bucket, key, resource) {
    if (key) checkStorable(key);
    return getResourcePath.call(this, bucket, key, resource);
  };
}

const keyTooLong = () =>
  new S3Error(
    'KeyTooLongError',
    `The local stack cannot store a path segment over ${MAX_SEGMENT_BYTES} bytes (the last segment over ${MAX_SEGMENT_BYTES - LONGEST_SUFFIX}): s3rver keeps each segment of a key as a file or folder name.`,
  );
const noSuchKey = (key: string) => new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
const noSuchUpload = (uploadId: string) =>
  new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: uploadId });
const preconditionFailed = (condition: string) =>
  new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: condition });
const invalidPart = (n: number) =>
  new S3Error('InvalidPart', 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.', { PartNumber: n });

/* ------------------------------------------------------------------ metadata */

/** Objects whose metadata is kept at most; past it, all is dropped and read again. */
const KEPT_METADATA = 50_000;

/**
 * s3rver reads an object's metadata from three files (nine filesystem calls, each a round trip
 * to libuv's thread pool from the thread everything shares) on every HEAD, GET, copy and
 * condition. What it read is kept here and used again while the object's file and its metadata
 * file are the ones it was read from (inode, size and mtime, in two stats), and dropped whenever
 * this store writes the metadata or deletes the object. Every write of an object's bytes
 * replaces its file (replaceObjectsWhole), so new bytes are a new inode.
 */
function metadataKeptInMemory(store: FilesystemStore): void {
  const kept = new Map<string, { version: string; metadata: StoredMetadata }>();
  const { getMetadata, putMetadata, deleteObject } = store;
  const versionOf = (s: Stats | undefined) => (s ? `${s.ino}:${s.size}:${s.mtimeMs}` : '-');
  store.getMetadata = async function keptMetadata(this: FilesystemStore, bucket, key) {
    const objectPath = this.getResourcePath(bucket, key, 'object');
    // Throws ENOENT for a missing object, as s3rver's own does.
    const [object, meta] = await Promise.all([fs.stat(objectPath), fs.stat(this.getResourcePath(bucket, key, 'metadata.json')).catch(() => undefined)]);
    const version = `${versionOf(object)}|${versionOf(meta)}`;
    const hit = kept.get(objectPath);
    if (hit?.version === version) return { ...hit.metadata, 'last-modified': object.mtime.toUTCString(), 'content-length': object.size };
    const metadata = await getMetadata.call(this, bucket, key);
    if (kept.size >= KEPT_METADATA) kept.clear();
    // Read after the stats: if the files changed in between, the version never matches again.
    kept.set(objectPath, { version, metadata });
    return metadata;
  };
  store.putMetadata = async function writtenMetadata(this: FilesystemStore, bucket, key, metadata, md5) {
    const objectPath = this.getResourcePath(bucket, key, 'object');
    kept.delete(objectPath);
    try {
      await putMetadata.call(this, bucket, key, metadata, md5);
    } finally {
      kept.delete(objectPath);
    }
  };
  store.deleteObject = async function deletedObject(this: FilesystemStore, bucket, key) {
    const objectPath = this.getResourcePath(bucket, key, 'object');
    kept.delete(objectPath);
    try {
      await deleteObject.call(this, bucket, key);
    } finally {
      kept.delete(objectPath);
    }
  };
}

/* ------------------------------------------------------------- whole objects */

/**
 * Every write of an object's bytes goes to a file beside it, then replaces it by a rename, once
 * written. A reader that opened the old file keeps reading the old version (POSIX rename), and
 * the write is answered only once its bytes are in the file, as S3 answers once stored.
 */
function replaceObjectsWhole(store: FilesystemStore): void {
  store.putObject = async function putObject(this: FilesystemStore, object) {
    const path = this.getResourcePath(object.bucket, object.key, 'object');
    await fs.mkdir(dirname(path), { recursive: true });
    const { size, md5 } = await writeWhole(path, object.content);
    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };
  };

  // s3rver's copy rewrote the target in place and, with REPLACE metadata, kept the target's old
  // MD5 beside the new bytes: a copy over another object answered the old content's ETag.
  store.copyObject = async function copyObject(this: FilesystemStore, srcBucket, srcKey, destBucket, destKey, replacement) {
    const src = this.getResourcePath(srcBucket, srcKey, 'object');
    const dest = this.getResourcePath(destBucket, destKey, 'object');
    if (src !== dest) {
      const md5 = unquote((await this.getMetadata(srcBucket, srcKey)).etag);
      const metadata = replacement ?? (await readJson(this.getResourcePath(srcBucket, srcKey, 'metadata.json'))) ?? {};
      await fs.mkdir(dirname(dest), { recursive: true });
      const temp = tempBeside(dest);
      try {
        await fs.copyFile(src, temp);
        await fs.rename(temp, dest);
      } finally {
        await fs.rm(temp, { force: true });
      }
      await this.putMetadata(destBucket, destKey, metadata, md5);
    } else if (replacement) {
      await this.putMetadata(destBucket, destKey, replacement);
    }
    return this.getMetadata(destBucket, destKey);
  };

  store.putPart = async function putPart(this: FilesystemStore, bucket, uploadId, partNumber, content) {
    const dir = uploadDir(this, bucket, uploadId);
    await fs.stat(dir).catch(() => {
      throw noSuchUpload(uploadId);
    });
    const path = join(dir, String(partNumber));
    const { size, md5 } = await writeWhole(path, content);
    await fs.writeFile(`${path}.md5`, md5);
    return { size, md5 };
  };

  // S3 assembles exactly the parts named, in ascending order, each with its ETag. s3rver took
  // any list, and a part never uploaded crashed it (a read stream's error nobody listened to).
  store.putObjectMultipart = async function putObjectMultipart(this: FilesystemStore, bucket, uploadId, parts) {
    const dir = uploadDir(this, bucket, uploadId);
    const [key, metadata] = await Promise.all([
      fs.readFile(join(dir, 'key'), 'utf8'),
      fs.readFile(join(dir, 'metadata'), 'utf8').then((m) => JSON.parse(m) as Record<string, string>),
    ]).catch(() => {
      throw noSuchUpload(uploadId);
    });
    parts.forEach((p, i) => {
      if (i > 0 && p.number <= parts[i - 1]!.number) {
        throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
      }
    });
    for (const p of parts) {
      const md5 = await fs.readFile(join(dir, `${p.number}.md5`), 'utf8').catch(() => undefined);
      if (md5 !== p.etag) throw invalidPart(p.number);
    }
    const files = parts.map((p) => join(dir, String(p.number)));
    const content = Readable.from(
      (async function* concat() {
        for (const file of files) yield* createReadStream(file);
      })(),
    );
    const result = await this.putObject(new S3Object(bucket, key, content, metadata));
    await fs.rm(dir, { recursive: true, force: true });
    return result;
  };
}

/** Writes `content` to `path` whole, through a file beside it; its size and MD5. */
async function writeWhole(path: string, content: Buffer | NodeJS.ReadableStream): Promise<{ size: number; md5: string }> {
  const temp = tempBeside(path);
  const hash = createHash('md5');
  let size = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const file = createWriteStream(temp);
      let failed = false;
      file.on('error', (err) => {
        failed = true;
        if (!Buffer.isBuffer(content)) {
          // Read the rest of the request, so that the client gets our error and not a reset.
          content.unpipe(file);
          content.resume();
        }
        reject(err);
      });
      file.on('close', () => (failed ? undefined : resolve()));
      if (Buffer.isBuffer(content)) {
        hash.update(content);
        size = content.length;
        file.end(content);
        return;
      }
      content
        .on('error', (err) => file.destroy(err))
        // A client gone mid-body: without this the write, and the key's lock, would wait forever.
        .on('close', () => {
          if (!(content as Readable).readableEnded) file.destroy(new Error('the body ended early'));
        })
        .on('data', (chunk: Buffer) => {
          hash.update(chunk);
          size += chunk.length;
        })
        .pipe(file);
    });
    await fs.rename(temp, path);
  } finally {
    await fs.rm(temp, { force: true });
  }
  return { size, md5: hash.digest('hex') };
}

/** A temporary name in the same folder (so the rename stays on one filesystem), short enough for any key. */
const tempBeside = (path: string) => join(dirname(path), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);

const uploadDir = (store: FilesystemStore, bucket: string, uploadId: string) => join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);

async function readJson(path: string): Promise<object | undefined> {
  try {
    return JSON.parse(await fs.readFile(path, 'utf8')) as object;
  } catch {
    return undefined;
  }
}

async function etagOf(store: FilesystemStore, bucket: string, key: string): Promise<string | undefined> {
  try {
    return unquote((await store.getMetadata(bucket, key)).etag);
  } catch {
    return undefined; // no such object
  }
}

const unquote = (etag: string) => etag.replace(/"/g, '');

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new S3Error('InvalidURI', "Couldn't parse the specified URI.", { URI: part });
  }
}

/* ---------------------------------------------------------------- sequencers */

/**
 * s3rver's `s3.object.sequencer` is Date.now() in hex: two events in one millisecond share one,
 * and its width changes with the clock. S3 promises that, for one key, the later event has the
 * greater sequencer. Every event gets the next value of one counter, 20 upper-case hex digits,
 * which starts from the clock (milliseconds × 2^32), so that it keeps increasing across
 * restarts of the local stack, whose data outlives it. Events are emitted under the key's lock,
 * so for one key emission order is the order in which the writes were applied.
 */
function exactSequencers(app: S3rverApp): void {
  let last = 0n;
  const next = () => {
    const fromClock = BigInt(Date.now()) << 32n;
    last = last < fromClock ? fromClock : last + 1n;
    return last.toString(16).toUpperCase().padStart(20, '0');
  };
  const emit = app.emit;
  app.emit = function emitWithSequencer(this: S3rverApp, name, ...args) {
    if (name === 'event') {
      for (const record of (args[0] as { Records?: { s3?: { object?: { sequencer?: string } } }[] })?.Records ?? []) {
        if (record.s3?.object) record.s3.object.sequencer = next();
      }
    }
    return emit.call(this, name, ...args);
  };
}

/**
 * s3rver's ObjectCreated:Copy events carry no eTag, where S3's do. A copy's event is emitted
 * right after its store call, under the key's lock: the ETag that call returned is the one.
 */
function etagsOnCopyEvents(app: S3rverApp): void {
  const copied = new Map<string, string>();
  const store = app.store;
  const copy = store.copyObject.bind(store);
  store.copyObject = async (srcBucket, srcKey, destBucket, destKey, replacement) => {
    const metadata = (await copy(srcBucket, srcKey, destBucket, destKey, replacement)) as { etag?: string };
    if (metadata?.etag) copied.set(`${destBucket}/${destKey}`, metadata.etag.replace(/"/g, ''));
    return metadata;
  };
  const emit = app.emit;
  app.emit = function emitWithEtag(this: S3rverApp, name, ...args) {
    if (name === 'event') {
      for (const record of (args[0] as { Records?: { eventName?: string; s3?: { bucket?: { name?: string }; object?: { key?: string; eTag?: string } } }[] })?.Records ?? []) {
        const id = `${record.s3?.bucket?.name}/${record.s3?.object?.key}`;
        if (record.eventName === 'ObjectCreated:Copy' && record.s3?.object && !record.s3.object.eTag && copied.has(id)) {
          record.s3.object.eTag = copied.get(id)!;
          copied.delete(id);
        }
      }
    }
    return emit.call(this, name, ...args);
  };
}

/**
 * S3 answers every request with an `x-amz-request-id` and puts the same id in the events the
 * request caused (`responseElements`): who caused an event can be told. s3rver makes up a new
 * id for each event. Each request gets one id, answered and carried into its events.
 */
function requestIds(app: S3rverApp): void {
  const current = new AsyncLocalStorage<string>();
  app.middleware.unshift(async (ctx, next) => {
    const id = randomBytes(8).toString('hex').toUpperCase();
    ctx.set('x-amz-request-id', id);
    return current.run(id, next);
  });
  const emit = app.emit;
  app.emit = function emitWithRequestId(this: S3rverApp, name, ...args) {
    const id = current.getStore();
    if (name === 'event' && id) {
      for (const record of (args[0] as { Records?: { responseElements?: Record<string, string> }[] })?.Records ?? []) {
        record.responseElements = { ...record.responseElements, 'x-amz-request-id': id };
      }
    }
    return emit.call(this, name, ...args);
  };
}

/**
 * S3 names the requester of each event (`userIdentity.principalId`: `AWS:` and the IAM user's
 * or role session's id); s3rver makes up a random id per event. Here it is `AWS:` and the
 * request's access key id, and the system's own key is known too (LOCAL_SYSTEM_ACCESS_KEY).
 */
function requesterPrincipals(app: S3rverApp): void {
  const current = new AsyncLocalStorage<string>();
  app.middleware.unshift(async (ctx, next) => {
    const credential = /Credential=([^/,\s]+)\//.exec(ctx.headers.authorization ?? '')?.[1] ?? String(ctx.query['X-Amz-Credential'] ?? '').split('/')[0];
    return credential ? current.run(credential, next) : next();
  });
  const emit = app.emit;
  app.emit = function emitWithPrincipal(this: S3rverApp, name, ...args) {
    const key = current.getStore();
    if (name === 'event' && key) {
      for (const record of (args[0] as { Records?: { userIdentity?: { principalId?: string } }[] })?.Records ?? []) {
        record.userIdentity = { principalId: `AWS:${key}` };
      }
    }
    return emit.call(this, name, ...args);
  };
}

/* -------------------------------------------------------------------- plumbing */

/**
 * Puts `mw` after s3rver's vhost middleware (so it sees path-style paths) and before its router.
 * Koa composes its middleware when it starts listening: a server already running is recomposed.
 */
function addMiddleware(app: S3rverApp, mw: Middleware): void {
  const vhost = app.middleware.findIndex((m) => m.name === 'vhost');
  app.middleware.splice(vhost + 1, 0, mw);
  if (app.httpServer) {
    app.httpServer.removeAllListeners('request');
    app.httpServer.on('request', app.callback());
  }
}

/**
 * Runs work on a set of names one holder at a time. A holder registers for all its names at
 * once and waits for every earlier holder of any of them, so two holders never wait on each
 * other (no deadlock) and each name's holders run in arrival order.
 */
class KeyLocks {
  private tails = new Map<string, Promise<void>>();

  async hold<T>(names: string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(names)];
    const earlier = unique.map((n) => this.tails.get(n) ?? Promise.resolve());
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => (release = resolve));
    for (const n of unique) this.tails.set(n, mine);
    await Promise.all(earlier);
    try {
      return await fn();
    } finally {
      for (const n of unique) if (this.tails.get(n) === mine) this.tails.delete(n);
      release();
    }
  }
}
