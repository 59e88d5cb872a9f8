import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Store } from '../../lib/stores';
import type { JournalEvent } from '../../lib/types';
import type { LocalS3 } from './s3rver';

/** The part of an S3 notification record the tests look at; s3rver sends the rest too. */
export interface S3Record {
  eventName: string;
  eventTime: string;
  s3: { bucket: { name: string }; object: { key: string; eTag?: string } };
}
export interface S3Notification {
  Records: S3Record[];
}

/**
 * Collects every notification s3rver emits. s3rver emits before it answers the request, so
 * right after `await s3.send(put)` the put's event is already here: no waiting needed.
 */
export class EventTap {
  private seen: S3Notification[] = [];
  private listeners: ((e: S3Notification) => void)[] = [];

  constructor(s3: LocalS3) {
    s3.server.on('event', (e) => {
      const n = e as S3Notification;
      this.seen.push(n);
      for (const l of this.listeners) l(n);
    });
  }

  /** Events on `buckets` since the last take, oldest first; forgets them. */
  take(buckets?: string[]): S3Notification[] {
    const all = this.seen;
    this.seen = [];
    return buckets ? all.filter((n) => buckets.includes(n.Records[0]!.s3.bucket.name)) : all;
  }

  /** The one event on `bucket` since the last take; fails if there is not exactly one. */
  takeOne(bucket: string): S3Notification {
    const got = this.take([bucket]);
    if (got.length !== 1) throw new Error(`expected one event on ${bucket}, got ${got.length}: ${describeEvents(got)}`);
    return got[0]!;
  }

  onEvent(fn: (e: S3Notification) => void): void {
    this.listeners.push(fn);
  }
}

export const describeEvents = (ns: S3Notification[]) =>
  ns.map((n) => n.Records.map((r) => `${r.eventName} ${r.s3.bucket.name}/${r.s3.object.key}`).join()).join('; ') || 'none';

/**
 * Polls `probe` until it returns something other than undefined/false, or throws after
 * `timeoutMs` saying what it waited for. Bounded: a condition, not a sleep.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every object of a bucket with its prefix, all pages. */
export async function listAll(s3: S3Client, bucket: string, prefix?: string) {
  const out: { key: string; etag: string; lastModified: Date; size: number }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, etag: o.ETag!, lastModified: o.LastModified!, size: o.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** The whole journal, oldest first, read straight from the control bucket (no settle window). */
export async function readJournal(control: { s3: S3Client; bucket: string }): Promise<JournalEvent[]> {
  const objects = await listAll(control.s3, control.bucket, 'journal/');
  const events = await mapLimit(objects, 32, async (o) => {
    const res = await control.s3.send(new GetObjectCommand({ Bucket: control.bucket, Key: o.key }));
    return JSON.parse(await res.Body!.transformToString()) as JournalEvent;
  });
  return events.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Key → body text of every object in a store. */
export async function contents(store: Store): Promise<Map<string, string>> {
  const objects = await listAll(store.s3, store.bucket);
  const bodies = await mapLimit(objects, 32, async (o) => {
    const res = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: o.key }));
    return [o.key, await res.Body!.transformToString()] as const;
  });
  return new Map(bodies);
}

/** `fn` over `items` with at most `width` calls in flight (a thousand at once swamps s3rver); results in order. */
export async function mapLimit<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
    }),
  );
  return out;
}

/**
 * Moves an object's LastModified on s3rver (its file's mtime) to `when`. S3 dates writes to the
 * second; this lets a test say "written an hour ago" instead of waiting for the clock.
 */
export async function backdate(s3: LocalS3, bucket: string, key: string, when: Date): Promise<void> {
  const { utimes } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const parts = key.split('/');
  const name = `${parts.pop()}._S3rver_object`;
  await utimes(join(s3.directory, bucket, ...parts, name), when, when);
}

/** Runs `fn` over `items`, at most `width` at a time. */
export async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

/* eslint-disable @typescript-eslint/no-var-requires */
const S3Error = require('s3rver/lib/models/error') as new (code: string, message: string, detail?: object) => Error;

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string | undefined>;
  body: unknown;
  app: { store: { getMetadata(bucket: string, key: string): Promise<{ etag: string }> } };
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/**
 * Makes s3rver honour what real S3 does and s3rver ignores, so that concurrency tests exercise
 * the replication protocol as it runs on AWS:
 * - conditional writes: PUT/copy with `If-None-Match: *` (412 if the key exists) or `If-Match`
 *   (412 on another ETag, 404 if absent), `x-amz-copy-source-if-match`, DELETE with `If-Match`;
 * - `If-Match` on GET/HEAD (s3rver honours only If-None-Match there);
 * - atomic objects: requests on one key are serialised and a GET's body is read before the
 *   next request on that key, because s3rver rewrites an object's file in place (a concurrent
 *   reader could see half of each version) and its body, ETag and metadata in three steps.
 */
export function emulateS3Atomicity(s3: LocalS3): void {
  const tails = new Map<string, Promise<void>>();
  const locked = async <T>(names: string[], fn: () => Promise<T>): Promise<T> => {
    const sorted = [...new Set(names)].sort();
    const previous = sorted.map((n) => tails.get(n) ?? Promise.resolve());
    let release: () => void = () => undefined;
    const mine = new Promise<void>((r) => (release = r));
    for (const n of sorted) tails.set(n, mine);
    await Promise.all(previous);
    try {
      return await fn();
    } finally {
      for (const n of sorted) if (tails.get(n) === mine) tails.delete(n);
      release();
    }
  };
  const unquote = (etag: string) => etag.replace(/"/g, '');
  const etagOf = async (ctx: KoaContext, bucket: string, key: string) => {
    try {
      return unquote((await ctx.app.store.getMetadata(bucket, key)).etag);
    } catch {
      return undefined; // no such object
    }
  };
  const precondition = () => new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
  const noSuchKey = (key: string) => new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });

  const middleware: Middleware = async (ctx, next) => {
    const m = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    if (!m) return next();
    const [bucket, key] = [m[1]!, decodeURIComponent(m[2]!)];
    const names = [`${bucket}/${key}`];
    const copySource = ctx.headers['x-amz-copy-source'];
    let source: [string, string] | undefined;
    if (ctx.method === 'PUT' && copySource) {
      const raw = decodeURI(copySource).replace(/^\//, '');
      const slash = raw.indexOf('/');
      source = [raw.slice(0, slash), raw.slice(slash + 1)];
      names.push(source.join('/'));
    }
    await locked(names, async () => {
      const ifMatch = ctx.headers['if-match'];
      const ifNoneMatch = ctx.headers['if-none-match'];
      if (['PUT', 'DELETE', 'GET', 'HEAD'].includes(ctx.method) && ifMatch !== undefined) {
        const current = await etagOf(ctx, bucket, key);
        if (current === undefined) throw noSuchKey(key);
        if (ifMatch !== '*' && unquote(ifMatch) !== current) throw precondition();
      }
      if (ctx.method === 'PUT' && ifNoneMatch === '*' && (await etagOf(ctx, bucket, key)) !== undefined) throw precondition();
      if (source && ctx.headers['x-amz-copy-source-if-match'] !== undefined) {
        const current = await etagOf(ctx, source[0], source[1]);
        if (current === undefined) throw noSuchKey(source[1]);
        if (unquote(ctx.headers['x-amz-copy-source-if-match']!) !== current) throw precondition();
      }
      await next();
      const body = ctx.body as NodeJS.ReadableStream | undefined;
      if (body && typeof (body as { pipe?: unknown }).pipe === 'function') {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(Buffer.from(c as Buffer));
        ctx.body = Buffer.concat(chunks);
      }
    });
  };
  // Koa composes its middleware when the server starts listening: add ours, then recompose.
  const app = s3.server as unknown as { middleware: Middleware[]; callback(): (...a: unknown[]) => void; httpServer: import('node:http').Server };
  app.middleware.unshift(middleware);
  app.httpServer.removeAllListeners('request');
  app.httpServer.on('request', app.callback());
}

interface S3rverStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: object, md5: string): Promise<void>;
  putObject(object: { bucket: string; key: string; content: Buffer | NodeJS.ReadableStream; metadata: object }): Promise<{ size: number; md5: string }>;
}

/**
 * s3rver 3.7.1 answers a PUT (and emits its event) once the body has gone through its MD5
 * transform, before the file it writes is flushed: a GET, HEAD or CopyObject right after can
 * see the object empty or cut short. Replication reads right after the event, so on s3rver as it
 * is a replica is sometimes empty. This makes s3rver answer once the bytes are on disk, as S3 does.
 */
export function awaitS3rverWrites(s3: LocalS3): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const fs = require('node:fs') as typeof import('node:fs');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { dirname } = require('node:path') as typeof import('node:path');
  const store = (s3.server as unknown as { store: S3rverStore }).store;
  store.putObject = async function putObject(object) {
    const path = this.getResourcePath(object.bucket, object.key, 'object');
    await fs.promises.mkdir(dirname(path), { recursive: true });
    const hash = createHash('md5');
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      const file = fs.createWriteStream(path).on('error', reject).on('finish', resolve);
      if (Buffer.isBuffer(object.content)) {
        hash.update(object.content);
        size = object.content.length;
        file.end(object.content);
        return;
      }
      object.content
        .on('error', reject)
        .on('data', (chunk: Buffer) => {
          hash.update(chunk);
          size += chunk.length;
        })
        .pipe(file);
    });
    const md5 = hash.digest('hex');
    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };
  };
}
