import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type CopyObjectCommandInput,
  type DeleteObjectCommandInput,
  type ListObjectsV2CommandInput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { writeMetadata } from '../../lib/stamps';
import { FakeS3, s3Error, type FakeObject } from './mock-s3';

/*
 * Real S3 behaviour that s3rver lacks: conditional writes. ConditionalS3 answers CopyObject,
 * PutObject, DeleteObject and ListObjectsV2 as S3 does with If-None-Match / If-Match /
 * x-amz-copy-source-if-match, so tests can show that nothing overwrites a write that landed
 * after its HEAD, and that the control bucket's records merge instead of overwriting.
 */

export const T = Date.UTC(2026, 0, 2, 3, 4, 5);

export const precondition = () => s3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
export const noSuchKey = () => s3Error('NoSuchKey', 404, 'The specified key does not exist.');
const unquote = (etag: string) => etag.replace(/^"|"$/g, '');
const md5Etag = (bytes: Buffer) => `"${createHash('md5').update(bytes).digest('hex')}"`;
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export type WriteCommand = 'CopyObject' | 'PutObject' | 'DeleteObject';
export type WriteHook = (command: WriteCommand, input: { Bucket?: string; Key?: string; IfMatch?: string; IfNoneMatch?: string }) => void;

/** FakeS3 plus the writes and listings the domain makes, each honouring its conditions as S3 does. */
export class ConditionalS3 extends FakeS3 {
  /** Runs before each write is decided: the place for a concurrent write to land. */
  readonly beforeWrite: WriteHook[] = [];
  /** Every write that S3 accepted, in order: `PutObject control/tombstones/a.txt`. */
  readonly writes: string[] = [];
  /** LastModified of the next write. */
  now = T;
  /** When each object was first PUT, by `bucket/key`: see written(). */
  private readonly putOrder = new Map<string, number>();

  protected override answerMock(): void {
    super.answerMock();
    this.mock.on(CopyObjectCommand).callsFake(async (i: CopyObjectCommandInput) => this.copy(i));
    this.mock.on(PutObjectCommand).callsFake(async (i: PutObjectCommandInput) => this.putObject(i));
    this.mock.on(DeleteObjectCommand).callsFake(async (i: DeleteObjectCommandInput) => this.deleteObject(i));
    this.mock.on(ListObjectsV2Command).callsFake(async (i: ListObjectsV2CommandInput) => this.list(i));
  }

  override reset(): void {
    super.reset();
    this.beforeWrite.length = 0;
    this.writes.length = 0;
    this.now = T;
    this.putOrder.clear();
  }

  async putObject(i: PutObjectCommandInput) {
    this.fault('PutObject', i);
    this.beforeWrite.forEach((h) => h('PutObject', i));
    this.checkTarget(i);
    const body = typeof i.Body === 'string' || i.Body instanceof Uint8Array ? Buffer.from(i.Body) : Buffer.concat(await (i.Body as Readable).toArray());
    const o = this.put(i.Bucket!, i.Key!, body, { metadata: i.Metadata ?? {}, lastModified: new Date(this.now) });
    this.writes.push(`PutObject ${i.Bucket}/${i.Key}`);
    if (!this.putOrder.has(`${i.Bucket}/${i.Key}`)) this.putOrder.set(`${i.Bucket}/${i.Key}`, this.putOrder.size);
    return { ETag: o.etag };
  }

  copy(i: CopyObjectCommandInput) {
    this.fault('CopyObject', i);
    this.beforeWrite.forEach((h) => h('CopyObject', i));
    const slash = i.CopySource!.indexOf('/');
    const src = this.buckets.get(i.CopySource!.slice(0, slash))?.get(decodeURIComponent(i.CopySource!.slice(slash + 1)));
    if (!src) throw noSuchKey();
    if (i.CopySourceIfMatch !== undefined && unquote(i.CopySourceIfMatch) !== unquote(src.etag)) throw precondition();
    this.checkTarget(i);
    // A CopyObject result is one part: a multipart source's ETag becomes the MD5 of the bytes.
    const etag = src.etag.includes('-') ? md5Etag(src.bytes) : src.etag;
    const metadata = i.MetadataDirective === 'REPLACE' ? (i.Metadata ?? {}) : { ...src.metadata };
    this.put(i.Bucket!, i.Key!, src.bytes, { etag, metadata, lastModified: new Date(this.now) });
    this.writes.push(`CopyObject ${i.Bucket}/${i.Key}`);
    return { CopyObjectResult: { ETag: etag } };
  }

  deleteObject(i: DeleteObjectCommandInput) {
    this.fault('DeleteObject', i);
    this.beforeWrite.forEach((h) => h('DeleteObject', i));
    const cur = this.buckets.get(i.Bucket!)?.get(i.Key!);
    if (i.IfMatch !== undefined) {
      if (!cur) throw noSuchKey();
      if (unquote(i.IfMatch) !== unquote(cur.etag)) throw precondition();
    }
    this.delete(i.Bucket!, i.Key!);
    this.writes.push(`DeleteObject ${i.Bucket}/${i.Key}`);
    return {};
  }

  /** ListObjectsV2 in UTF-8 byte order; the continuation token is the last key of the page. */
  list(i: ListObjectsV2CommandInput) {
    this.fault('ListObjectsV2', i);
    const prefix = i.Prefix ?? '';
    const after = i.ContinuationToken ?? i.StartAfter ?? '';
    const max = i.MaxKeys ?? 1000;
    const keys = [...(this.buckets.get(i.Bucket!)?.keys() ?? [])]
      .filter((k) => k.startsWith(prefix) && utf8Order(k, after) > 0)
      .sort(utf8Order);
    const page = keys.slice(0, max);
    const truncated = keys.length > max;
    return {
      Contents: page.map((k) => {
        const o = this.buckets.get(i.Bucket!)!.get(k)!;
        return { Key: k, Size: o.bytes.length, ETag: o.etag, LastModified: o.lastModified };
      }),
      KeyCount: page.length,
      IsTruncated: truncated,
      ...(truncated ? { NextContinuationToken: page[page.length - 1] } : {}),
    };
  }

  private checkTarget(i: { Bucket?: string; Key?: string; IfMatch?: string; IfNoneMatch?: string }) {
    const cur = this.buckets.get(i.Bucket!)?.get(i.Key!);
    if (i.IfNoneMatch === '*' && cur) throw precondition();
    if (i.IfMatch !== undefined) {
      if (!cur) throw noSuchKey();
      if (unquote(i.IfMatch) !== unquote(cur.etag)) throw precondition();
    }
  }

  has(bucket: string, key: string): FakeObject | undefined {
    return this.buckets.get(bucket)?.get(key);
  }

  textOf(bucket: string, key: string): string | undefined {
    return this.has(bucket, key)?.bytes.toString();
  }

  /** The JSON records under `prefix` in the control bucket, in key order. */
  records<T = Record<string, unknown>>(prefix: string, bucket = 'control'): T[] {
    return [...(this.buckets.get(bucket) ?? new Map<string, FakeObject>()).entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => utf8Order(a, b))
      .map(([, o]) => JSON.parse(o.bytes.toString()) as T);
  }

  /**
   * The JSON records under `prefix` in the order PutObject first wrote them (those written
   * otherwise, as a test's setup does, first, in key order). For the journal: its ids order
   * events by millisecond only, and two events of one millisecond by a random suffix.
   */
  written<T = Record<string, unknown>>(prefix: string, bucket = 'control'): T[] {
    const order = (k: string) => this.putOrder.get(`${bucket}/${k}`) ?? -1;
    return [...(this.buckets.get(bucket) ?? new Map<string, FakeObject>()).entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => order(a) - order(b) || utf8Order(a, b))
      .map(([, o]) => JSON.parse(o.bytes.toString()) as T);
  }

  /** A write that entered through dfs: stamped with its identity and made-at time. */
  stamped(bucket: string, key: string, text: string, opts: { mtime: number; made?: number; id?: string; who?: string; lastModified?: number; etag?: string; extra?: Record<string, string> }): FakeObject {
    const made = opts.made ?? opts.mtime;
    const metadata = { ...opts.extra, ...writeMetadata({ id: opts.id ?? `id-${bucket}-${text}`, madeMs: made, who: opts.who ?? 'alice' }, opts.mtime) };
    return this.put(bucket, key, text, { metadata, lastModified: new Date(opts.lastModified ?? made), ...(opts.etag ? { etag: opts.etag } : {}) });
  }

  /** A write straight into the bucket, without dfs: no stamp, maybe an mtime. */
  direct(bucket: string, key: string, text: string, opts: { mtime?: number; lastModified?: number; etag?: string; metadata?: Record<string, string> } = {}): FakeObject {
    return this.put(bucket, key, text, {
      ...(opts.mtime !== undefined ? { mtime: opts.mtime } : {}),
      metadata: opts.metadata ?? {},
      lastModified: new Date(opts.lastModified ?? T),
      ...(opts.etag ? { etag: opts.etag } : {}),
    });
  }
}

/** A client with test credentials, for a store or the control bucket. */
export const testClient = (region = 'us-east-1') => new S3Client({ region, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });

/**
 * For a test file: mocks `client` with a ConditionalS3 behind it; before each test both are
 * reset (no calls, no objects, no hooks, faults or writes).
 */
export function useConditionalS3(client: S3Client): { s3mock: AwsClientStub<S3Client>; fake: ConditionalS3 } {
  const s3mock = mockClient(client);
  const fake = new ConditionalS3(s3mock);
  beforeEach(() => {
    s3mock.reset();
    fake.reset();
  });
  return { s3mock, fake };
}
