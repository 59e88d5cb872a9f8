import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  S3ServiceException,
  type GetObjectCommandInput,
  type HeadObjectCommandInput,
} from '@aws-sdk/client-s3';
// @smithy/util-stream is not installed on its own; the SDK bundles the same mixin in @smithy/core.
import { sdkStreamMixin } from '@smithy/core/serde';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import type { Store } from '../../lib/stores';
import { formatMtime } from '../../lib/stamps';

/** One object as S3 holds it. */
export interface FakeObject {
  bytes: Buffer;
  /** Quoted, as S3 sends it: `"<md5>"` or `"<md5 of md5s>-N"`. */
  etag: string;
  metadata: Record<string, string>;
  lastModified: Date;
  checksums: Partial<Record<'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256', string>>;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
  sse?: 'AES256' | 'aws:kms';
}

export interface PutOptions {
  /** Quoted or not; defaults to the quoted MD5 of the bytes. */
  etag?: string;
  /** Logical mtime in ms, stored as `x-amz-meta-mtime` in rclone's format. */
  mtime?: number;
  metadata?: Record<string, string>;
  lastModified?: Date;
  checksums?: FakeObject['checksums'];
  checksumType?: FakeObject['checksumType'];
  sse?: FakeObject['sse'];
}

/** Requests FakeS3 answers, and those a subclass (test/helpers/conditional-s3.ts) adds. */
export type Command = 'HeadObject' | 'GetObject' | 'PutObject' | 'CopyObject' | 'DeleteObject' | 'ListObjectsV2';
type Input = HeadObjectCommandInput | GetObjectCommandInput;

interface Fault {
  bucket: string;
  command?: Command;
  when?: (input: Input) => boolean;
  error: () => Error;
}

/** Builds an error shaped like the ones the SDK throws for an S3 error response. */
export function s3Error(name: string, status: number, message = name): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

/** What a network failure looks like: no response, so no $metadata status. */
export const networkError = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { name: 'TimeoutError' });

const md5Etag = (bytes: Buffer) => `"${createHash('md5').update(bytes).digest('hex')}"`;
const quote = (etag: string) => (etag.startsWith('"') ? etag : `"${etag}"`);
const unquote = (etag: string) => etag.replace(/^"|"$/g, '');

/**
 * A small S3 that answers HeadObject and GetObject the way the real one does, so that tests
 * assert outcomes (what the read answered, how many bytes it pulled) rather than call order.
 * Buckets are told apart by name, so each store can have its own S3Client or share one.
 *
 * - HEAD of a missing key throws `NotFound` (404), GET throws `NoSuchKey` (404).
 * - `Range: bytes=a-b` (inclusive, `b` clamped) serves that slice; a start past the end is 416.
 * - `IfMatch` that does not match the current ETag throws `PreconditionFailed` (412).
 * - Checksums come back only with `ChecksumMode: 'ENABLED'` and only on whole-object answers.
 * - Bodies are lazy streams: `served` counts the bytes a caller actually pulled.
 */
export class FakeS3 {
  readonly buckets = new Map<string, Map<string, FakeObject>>();
  /** Body bytes pulled by callers, per bucket. */
  readonly served = new Map<string, number>();
  private readonly faults: Fault[] = [];
  private readonly hooks: ((command: Command, input: Input) => void)[] = [];
  private readonly cuts = new Map<string, Cut>();
  private readonly gates: ((command: Command, input: Input) => Promise<void> | undefined)[] = [];

  constructor(protected readonly mock: AwsClientStub<S3Client>) {
    this.answerMock();
  }

  /** Empties every bucket, forgets faults, hooks and counts, and answers the mock again (after its `reset()`). */
  reset(): void {
    this.buckets.clear();
    this.served.clear();
    this.faults.length = 0;
    this.hooks.length = 0;
    this.cuts.clear();
    this.gates.length = 0;
    this.answerMock();
  }

  protected answerMock(): void {
    this.mock.on(HeadObjectCommand).callsFake(async (input: HeadObjectCommandInput) => {
      await this.passGates('HeadObject', input);
      return this.head(input);
    });
    this.mock.on(GetObjectCommand).callsFake(async (input: GetObjectCommandInput) => {
      await this.passGates('GetObject', input);
      return this.get(input);
    });
  }

  put(bucket: string, key: string, content: string | Buffer, opts: PutOptions = {}): FakeObject {
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const metadata = { ...opts.metadata, ...(opts.mtime !== undefined ? { mtime: formatMtime(opts.mtime) } : {}) };
    const obj: FakeObject = {
      bytes,
      etag: opts.etag ? quote(opts.etag) : md5Etag(bytes),
      metadata,
      lastModified: opts.lastModified ?? new Date('2026-01-01T00:00:00Z'),
      checksums: opts.checksums ?? {},
      ...(opts.checksumType ? { checksumType: opts.checksumType } : {}),
      ...(opts.sse ? { sse: opts.sse } : {}),
    };
    let objects = this.buckets.get(bucket);
    if (!objects) this.buckets.set(bucket, (objects = new Map()));
    objects.set(key, obj);
    return obj;
  }

  delete(bucket: string, key: string): void {
    this.buckets.get(bucket)?.delete(key);
  }

  /** Every matching request to `bucket` throws a fresh `error()` from now on. */
  fail(bucket: string, error: () => Error, opts: { command?: Command; when?: (input: Input) => boolean } = {}): void {
    this.faults.push({ bucket, error, ...opts });
  }

  /**
   * Bodies of GETs on `bucket` break off after `afterBytes` from now on: with an error (a
   * connection reset) or, with `end: true`, by ending early as if the object were shorter.
   */
  cutBody(bucket: string, afterBytes: number, opts: { end?: boolean } = {}): void {
    this.cuts.set(bucket, { afterBytes, end: opts.end ?? false });
  }

  /**
   * Holds HEADs and GETs for which `gate` returns a promise until it settles, then answers them
   * as usual: the place to keep one request unanswered while others go on.
   */
  hold(gate: (command: Command, input: Input) => Promise<void> | undefined): void {
    this.gates.push(gate);
  }

  private async passGates(command: Command, input: Input): Promise<void> {
    for (const gate of this.gates) await gate(command, input);
  }

  /** Runs before each request is answered (after faults): the place to change an object mid-read. */
  onRequest(hook: (command: Command, input: Input) => void): void {
    this.hooks.push(hook);
  }

  servedTotal(): number {
    return [...this.served.values()].reduce((a, b) => a + b, 0);
  }

  /** Throws the first fault registered for this request, if any. */
  protected fault(command: Command, input: { Bucket?: string }): void {
    for (const f of this.faults) {
      if (f.bucket === input.Bucket && (!f.command || f.command === command) && (!f.when || f.when(input as Input))) throw f.error();
    }
  }

  private check(command: Command, input: Input): FakeObject {
    this.fault(command, input);
    for (const hook of this.hooks) hook(command, input);
    const obj = this.buckets.get(input.Bucket!)?.get(input.Key!);
    if (!obj) {
      throw command === 'HeadObject' ? s3Error('NotFound', 404, 'Not Found') : s3Error('NoSuchKey', 404, 'The specified key does not exist.');
    }
    if (input.IfMatch !== undefined && unquote(input.IfMatch) !== unquote(obj.etag)) {
      throw s3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
    }
    return obj;
  }

  private headers(obj: FakeObject, input: Input, whole: boolean) {
    const withChecksums = whole && input.ChecksumMode === 'ENABLED';
    const checksums = withChecksums
      ? Object.fromEntries(Object.entries(obj.checksums).map(([alg, v]) => [`Checksum${alg}`, v]))
      : {};
    return {
      $metadata: { httpStatusCode: 200 },
      ETag: obj.etag,
      LastModified: obj.lastModified,
      Metadata: { ...obj.metadata },
      ...checksums,
      ...(withChecksums && obj.checksumType ? { ChecksumType: obj.checksumType } : {}),
      ...(obj.sse ? { ServerSideEncryption: obj.sse } : {}),
    };
  }

  private head(input: HeadObjectCommandInput) {
    const obj = this.check('HeadObject', input);
    return { ...this.headers(obj, input, true), ContentLength: obj.bytes.length };
  }

  private get(input: GetObjectCommandInput) {
    const obj = this.check('GetObject', input);
    const size = obj.bytes.length;
    let slice = obj.bytes;
    let contentRange: string | undefined;
    if (input.Range !== undefined) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(input.Range);
      if (!m) throw new Error(`fake S3 does not understand Range ${input.Range}`);
      const start = Number(m[1]);
      const end = Math.min(m[2] === '' ? size - 1 : Number(m[2]), size - 1);
      if (start >= size) throw s3Error('InvalidRange', 416, 'The requested range is not satisfiable');
      slice = obj.bytes.subarray(start, end + 1);
      contentRange = `bytes ${start}-${end}/${size}`;
    }
    const bucket = input.Bucket!;
    return {
      ...this.headers(obj, input, contentRange === undefined),
      ContentLength: slice.length,
      ...(contentRange ? { ContentRange: contentRange } : {}),
      Body: lazyBody(slice, (n) => this.served.set(bucket, (this.served.get(bucket) ?? 0) + n), this.cuts.get(bucket)),
    };
  }
}

interface Cut {
  afterBytes: number;
  end: boolean;
}

/** A body that hands out its bytes only as they are read, like a socket would. */
function lazyBody(bytes: Buffer, onServe: (n: number) => void, cut?: Cut) {
  let pos = 0;
  const stream = new Readable({
    read() {
      if (cut && pos >= cut.afterBytes) {
        if (cut.end) this.push(null);
        else this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
        return;
      }
      if (pos >= bytes.length) {
        this.push(null);
        return;
      }
      const piece = bytes.subarray(pos, Math.min(pos + 16 * 1024, cut ? Math.max(cut.afterBytes, pos + 1) : Infinity));
      pos += piece.length;
      onServe(piece.length);
      this.push(piece);
    },
  });
  return sdkStreamMixin(stream);
}

/**
 * For a test file: mocks every S3Client with one FakeS3 behind it; before each test both are
 * reset (no recorded calls, no objects, faults or hooks).
 */
export function useFakeS3(): { s3mock: AwsClientStub<S3Client>; fake: FakeS3 } {
  const s3mock = mockClient(S3Client);
  const fake = new FakeS3(s3mock);
  beforeEach(() => {
    s3mock.reset();
    fake.reset();
  });
  return { s3mock, fake };
}

/** Stores `server1..serverN` on buckets `bucket-1..bucket-N`, each with its own client. */
export function makeStores(n: number): Store[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `server${i + 1}`,
    bucket: `bucket-${i + 1}`,
    s3: new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } }),
  }));
}
