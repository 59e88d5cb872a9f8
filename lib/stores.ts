import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { StoreUnavailableError, UnknownStoreError } from './errors';
import { createS3Client, type Config } from './config';

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
}

/** Builds one client per distinct (region, endpoint) and hands each store its own. */
export function connectStores(config: Pick<Config, 'stores' | 's3Endpoint'>): Store[] {
  const clients = new Map<string, { s3: S3Client; signer: S3Client }>();
  return config.stores.map((s) => {
    const endpoint = s.endpoint ?? config.s3Endpoint;
    const id = `${s.region ?? ''}|${endpoint ?? ''}`;
    let pair = clients.get(id);
    if (!pair) {
      pair = {
        s3: createS3Client({ region: s.region, endpoint }),
        signer: createS3Client({ region: s.region, endpoint, requestChecksumCalculation: 'WHEN_REQUIRED' }),
      };
      clients.set(id, pair);
    }
    return { name: s.name, bucket: s.bucket, ...pair };
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
  /** Logical mtime in ms: x-amz-meta-mtime when valid, else LastModified. */
  mtimeMs: number;
  /** When S3 wrote this copy (LastModified), ms: what tombstones are compared with. */
  writtenMs: number;
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

/** The largest time a JS Date can hold; a larger x-amz-meta-mtime is garbage, not the future. */
const MAX_DATE_MS = 8.64e15;

export function toObjectHead(store: string, h: HeadLike): ObjectHead {
  const metadata = h.Metadata ?? {};
  const metaMtime = Number(metadata.mtime);
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
  return {
    store,
    size: h.ContentLength ?? 0,
    etag,
    mtimeMs: Number.isFinite(metaMtime) && metaMtime > 0 && metaMtime <= MAX_DATE_MS ? metaMtime : (h.LastModified?.getTime() ?? 0),
    writtenMs: h.LastModified?.getTime() ?? 0,
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

/**
 * Error names and statuses that mean "this store has no such object". A missing bucket is a
 * broken store, not an empty one (a HEAD cannot tell them apart: it has no error body).
 */
export function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

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

/** A store failure in words for a per-store outcome: the S3 error's name and message. */
export function describeFailure(err: unknown): string {
  const cause = (err instanceof StoreUnavailableError ? err.cause : err) as { name?: string; message?: string } | undefined;
  return cause?.name ? `${cause.name}: ${cause.message ?? ''}`.trim() : String((err as Error).message);
}

/**
 * HEADs `key` on one store. Returns the head, `null` when the store does not hold it,
 * or throws StoreUnavailableError.
 */
export async function headObject(store: Store, key: string): Promise<ObjectHead | null> {
  try {
    const h = await onStore(store, () =>
      store.s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key, ChecksumMode: 'ENABLED' })),
    );
    return toObjectHead(store.name, h);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}
