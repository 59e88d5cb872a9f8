import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { InvalidKeyError, ObjectChangedError, StoreUnavailableError } from '../../lib/errors';
import {
  abortUpload,
  connectStores,
  createUpload,
  deleteObject,
  describeFailure,
  getObject,
  getRange,
  headObject,
  listPage,
  openPinned,
  presignGet,
  presignPart,
  putObject,
  readBody,
  toObjectHead,
  type Store,
} from '../../lib/stores';
import { caught, freshStore, textBody as body } from '../helpers/adapter';
import { T, testClient } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';

/*
 * The store adapter's edges that lib/stores.ts decides alone: a missing bucket told from a
 * missing key, keys the local stack cannot hold, pinned reads, bodies of the wrong length,
 * failures in a user's words, uploads, and the clients stores share.
 */

let m: AwsClientStub<S3Client>;
let store: Store;
beforeEach(() => ({ m, store } = freshStore()));
afterEach(() => jest.useRealTimers());

const streamOf = (...chunks: string[]) => Readable.from(chunks.map((c) => Buffer.from(c)));

describe('headObject: a missing key, or a missing bucket', () => {
  it('answers null once HeadBucket shows the bucket is there, and asks again only after 30 s', async () => {
    jest.useFakeTimers({ now: T });
    m.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    m.on(HeadBucketCommand).resolves({});
    expect(await headObject(store, 'k')).toBeNull();
    jest.setSystemTime(T + 30_000 - 1);
    expect(await headObject(store, 'k')).toBeNull();
    expect(m).toHaveReceivedCommandTimes(HeadBucketCommand, 1);
    jest.setSystemTime(T + 30_000);
    expect(await headObject(store, 'k')).toBeNull();
    expect(m).toHaveReceivedCommandTimes(HeadBucketCommand, 2);
    expect(m).toHaveReceivedCommandWith(HeadBucketCommand, { Bucket: 'bucket-1' });
  });

  it('remembers each bucket apart', async () => {
    m.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    m.on(HeadBucketCommand).resolves({});
    await headObject(store, 'k');
    await headObject({ ...store, name: 'server2', bucket: 'bucket-2' }, 'k');
    expect(m.commandCalls(HeadBucketCommand).map((c) => c.args[0].input.Bucket)).toEqual(['bucket-1', 'bucket-2']);
  });

  it('calls a store whose bucket is gone unavailable (NoSuchBucket), and does not remember it', async () => {
    m.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    m.on(HeadBucketCommand).rejects(s3Error('NotFound', 404));
    const err = (await caught(headObject(store, 'k'))) as StoreUnavailableError;
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err.store).toBe('server1');
    expect(describeFailure(err)).toEqual({ code: 'NoSuchBucket', message: "the store's bucket does not exist", clientFault: false });
    expect((err.cause as Error).message).toBe('bucket bucket-1 does not exist');
    await caught(headObject(store, 'k'));
    expect(m).toHaveReceivedCommandTimes(HeadBucketCommand, 2);
  });

  it('calls a store whose HeadBucket fails otherwise unavailable, with that failure', async () => {
    m.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    const denied = s3Error('AccessDenied', 403);
    m.on(HeadBucketCommand).rejects(denied);
    const err = (await caught(headObject(store, 'k'))) as StoreUnavailableError;
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err.cause).toBe(denied);
  });

  it('asks nothing more of a bucket when the key is there', async () => {
    m.on(HeadObjectCommand).resolves({ ETag: '"e"', ContentLength: 1 });
    expect(await headObject(store, 'k')).toMatchObject({ etag: '"e"', size: 1 });
    expect(m).not.toHaveReceivedCommand(HeadBucketCommand);
    expect(m).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: 'bucket-1', Key: 'k', ChecksumMode: 'ENABLED' });
  });

  it('calls a NoSuchBucket answer unavailable at once, never missing', async () => {
    m.on(HeadObjectCommand).rejects(s3Error('NoSuchBucket', 404));
    expect(await caught(headObject(store, 'k'))).toBeInstanceOf(StoreUnavailableError);
  });
});

describe('keys the local stack cannot hold (a segment over 255 bytes, the last over 233)', () => {
  const local = () => ({ ...store, flavor: 's3rver' as const });
  const dir = (n: number) => `${'d'.repeat(n)}/f`;
  const last = (n: number) => `d/${'f'.repeat(n)}`;

  it('are missing on s3rver without asking it, and refused as a write (InvalidKeyError)', async () => {
    for (const key of [dir(256), last(234)]) {
      expect(await headObject(local(), key)).toBeNull();
      expect(await getObject(local(), key)).toBeNull();
      await deleteObject(local(), key);
      expect(await caught(putObject(local(), key, 'x', { metadata: {} }))).toBeInstanceOf(InvalidKeyError);
      expect(await caught(createUpload(local(), key, {}, 'text/plain'))).toBeInstanceOf(InvalidKeyError);
    }
    expect(m.calls()).toHaveLength(0);
  });

  it('are asked of s3rver up to the limit, and always of S3', async () => {
    m.on(HeadObjectCommand).resolves({ ETag: '"e"' });
    m.on(PutObjectCommand).resolves({ ETag: '"p"' });
    for (const key of [dir(255), last(233)]) {
      expect(await headObject(local(), key)).not.toBeNull();
      expect(await putObject(local(), key, 'x', { metadata: {} })).toBe('"p"');
    }
    expect(await headObject(store, dir(256))).not.toBeNull();
    expect(await putObject(store, last(234), 'x', { metadata: {} })).toBe('"p"');
    m.on(DeleteObjectCommand).resolves({});
    await deleteObject(store, dir(300));
    expect(m).toHaveReceivedCommandTimes(DeleteObjectCommand, 1);
  });
});

describe('getObject', () => {
  it('answers the length only when S3 gave one', async () => {
    m.on(GetObjectCommand).resolvesOnce({ ETag: '"e"', ContentLength: 3, Body: body('abc') }).resolvesOnce({ ETag: '"e"', Body: body('abc') });
    expect(await getObject(store, 'k')).toMatchObject({ length: 3 });
    expect(await getObject(store, 'k')).not.toHaveProperty('length');
  });
});

describe('pinned reads: getRange and openPinned', () => {
  it('reads the bytes of one version, a range of it when asked', async () => {
    m.on(GetObjectCommand).callsFake(() => ({ ContentLength: 3, Body: body('bcd') }));
    expect((await getRange(store, 'k', '"e"', { range: [1, 3] })).toString()).toBe('bcd');
    expect(m.commandCalls(GetObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'bucket-1', Key: 'k', IfMatch: '"e"', Range: 'bytes=1-3' });
    await getRange(store, 'k', '"e"');
    expect(m.commandCalls(GetObjectCommand)[1]!.args[0].input).toEqual({ Bucket: 'bucket-1', Key: 'k', IfMatch: '"e"' });
  });

  it('calls a version replaced (412) or deleted (404) since changed, and anything else unavailable', async () => {
    m.on(GetObjectCommand).rejectsOnce(s3Error('PreconditionFailed', 412)).rejectsOnce(s3Error('NoSuchKey', 404)).rejectsOnce(networkError());
    expect(await caught(getRange(store, 'k', '"e"'))).toBeInstanceOf(ObjectChangedError);
    expect(await caught(openPinned(store, 'k', '"e"'))).toBeInstanceOf(ObjectChangedError);
    expect(await caught(getRange(store, 'k', '"e"'))).toBeInstanceOf(StoreUnavailableError);
  });

  it('opens the version as a stream with its length and ETag', async () => {
    m.on(GetObjectCommand).resolves({ ContentLength: 3, ETag: '"e"', Body: body('abc') });
    const opened = await openPinned(store, 'k', '"e"');
    expect([opened.length, opened.etag, (await readBody(opened.body, opened.length)).toString()]).toEqual([3, '"e"', 'abc']);
    expect(m).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'bucket-1', Key: 'k', IfMatch: '"e"' });
  });
});

describe('readBody', () => {
  it('reads a body of its Content-Length, in chunks', async () => {
    expect((await readBody(streamOf('ab', 'cd', 'e'), 5)).toString()).toBe('abcde');
    expect((await readBody(streamOf(), 0)).length).toBe(0);
  });

  it('refuses a body longer or shorter than its Content-Length', async () => {
    expect(await caught(readBody(streamOf('abc', 'd'), 3))).toMatchObject({ message: 'body longer than its Content-Length 3' });
    expect(await caught(readBody(streamOf('ab'), 3))).toMatchObject({ message: 'body ended after 2 of 3 bytes' });
  });

  it('reads into a lent buffer when it is large enough, else into a new one', async () => {
    const lent = Buffer.alloc(4);
    const got = await readBody(streamOf('abc'), 3, lent);
    expect([got.toString(), got.buffer === lent.buffer, lent.subarray(0, 3).toString()]).toEqual(['abc', true, 'abc']);
    const exact = Buffer.alloc(3);
    expect((await readBody(streamOf('xyz'), 3, exact)).buffer).toBe(exact.buffer);
    const small = Buffer.alloc(2);
    const big = await readBody(streamOf('abc'), 3, small);
    expect([big.toString(), big.buffer === small.buffer, small.toString()]).toEqual(['abc', false, '\0\0']);
  });

  it('reads a body that is no stream, or has no length, through the SDK', async () => {
    const sdkBody = { transformToByteArray: async () => new Uint8Array([104, 105]) };
    expect((await readBody(sdkBody, 2)).toString()).toBe('hi');
    expect((await readBody(body('hey'), undefined)).toString()).toBe('hey');
  });
});

describe('describeFailure: what went wrong, in our words', () => {
  const wrapped = (name: string, status?: number) =>
    new StoreUnavailableError('server1', { cause: status === undefined ? Object.assign(new Error('x'), { name }) : s3Error(name, status) });

  it('names the failures a user can act on, and whether the request was at fault', () => {
    expect(describeFailure(wrapped('NoSuchUpload', 404))).toEqual({ code: 'NoSuchUpload', message: 'no such upload: it was completed, aborted or never started', clientFault: true });
    expect(describeFailure(wrapped('InvalidPart', 400)).clientFault).toBe(true);
    expect(describeFailure(wrapped('InvalidPartOrder', 400)).clientFault).toBe(true);
    expect(describeFailure(wrapped('EntityTooSmall', 400)).clientFault).toBe(true);
    expect(describeFailure(wrapped('AccessDenied', 403))).toEqual({ code: 'AccessDenied', message: 'the stack is not allowed to use this store', clientFault: false });
    expect(describeFailure(wrapped('SlowDown', 503))).toEqual({ code: 'SlowDown', message: 'the store is throttling requests', clientFault: false });
    expect(describeFailure(new ObjectChangedError('server1', 'k', { cause: s3Error('PreconditionFailed', 412) }))).toEqual({
      code: 'PreconditionFailed', message: 'the file changed on the store meanwhile', clientFault: false,
    });
  });

  it('tells no answer, a failing store (5xx) and a refusal (4xx) apart', () => {
    expect(describeFailure(new StoreUnavailableError('server1', { cause: networkError() }))).toEqual({ code: 'NoAnswer', message: 'the store did not answer', clientFault: false });
    expect(describeFailure(wrapped('InternalError', 500))).toEqual({ code: 'StoreFailed', message: 'the store failed (S3 answered 500)', clientFault: false });
    expect(describeFailure(wrapped('Teapot', 499))).toEqual({ code: 'Teapot', message: 'the store refused the request (Teapot)', clientFault: false });
    const nameless = Object.assign(new Error('x'), { name: '', $metadata: { httpStatusCode: 403 } });
    expect(describeFailure(nameless)).toEqual({ code: 'Http403', message: 'the store refused the request (403)', clientFault: false });
    expect(describeFailure(undefined)).toEqual({ code: 'NoAnswer', message: 'the store did not answer', clientFault: false });
  });
});

describe('uploads', () => {
  it('starts one with its metadata and content type, and answers its id', async () => {
    m.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    expect(await createUpload(store, 'k', { a: '1' }, 'text/plain')).toBe('u1');
    expect(m).toHaveReceivedCommandWith(CreateMultipartUploadCommand, { Bucket: 'bucket-1', Key: 'k', ContentType: 'text/plain', Metadata: { a: '1' } });
  });

  it('calls a store that answers no upload id, or fails, unavailable', async () => {
    m.on(CreateMultipartUploadCommand).resolvesOnce({}).rejectsOnce(s3Error('ServiceUnavailable', 503));
    expect(await caught(createUpload(store, 'k', {}, 'text/plain'))).toMatchObject({ name: 'StoreUnavailableError', cause: { message: 'CreateMultipartUpload answered without an UploadId' } });
    expect(await caught(createUpload(store, 'k', {}, 'text/plain'))).toBeInstanceOf(StoreUnavailableError);
  });

  it('aborts one; an abort s3rver does not know is done, any other failure unavailable', async () => {
    m.on(AbortMultipartUploadCommand).resolvesOnce({}).rejects(s3Error('MethodNotAllowed', 405));
    await abortUpload(store, 'k', 'u1');
    expect(m).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { Bucket: 'bucket-1', Key: 'k', UploadId: 'u1' });
    await abortUpload({ ...store, flavor: 's3rver' }, 'k', 'u1');
    expect(await caught(abortUpload(store, 'k', 'u1'))).toBeInstanceOf(StoreUnavailableError);
    m.on(AbortMultipartUploadCommand).rejects(s3Error('NoSuchUpload', 404));
    expect(await caught(abortUpload({ ...store, flavor: 's3rver' }, 'k', 'u1'))).toBeInstanceOf(StoreUnavailableError);
  });

  it('presigns a part for the signer client when the store has one, valid for the seconds asked', async () => {
    const signer = testClient('eu-west-1');
    const url = new URL(await presignPart({ ...store, signer }, 'dir/k', 'u1', 3, 600));
    expect([url.hostname, url.pathname, url.searchParams.get('uploadId'), url.searchParams.get('partNumber'), url.searchParams.get('X-Amz-Expires')]).toEqual([
      'bucket-1.s3.eu-west-1.amazonaws.com', '/dir/k', 'u1', '3', '600',
    ]);
    expect(new URL(await presignPart(store, 'k', 'u1', 1, 60)).hostname).toBe('bucket-1.s3.us-east-1.amazonaws.com');
    const get = new URL(await presignGet(store, 'k', 120));
    expect([get.pathname, get.searchParams.get('X-Amz-Expires')]).toEqual(['/k', '120']);
  });
});

describe('listPage', () => {
  it('continues from a token before a start key, and asks for no prefix when given none', async () => {
    m.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'a' }], IsTruncated: true });
    expect(await listPage(store, { prefix: '', after: 'z', token: 't', max: 2 })).toEqual({ objects: [{ key: 'a', size: 0, etag: '', lastModifiedMs: 0 }] });
    expect(m.commandCalls(ListObjectsV2Command)[0]!.args[0].input).toEqual({ Bucket: 'bucket-1', Prefix: undefined, ContinuationToken: 't', MaxKeys: 2 });
  });

  it('has no next page when S3 says it is not truncated, whatever token it sends', async () => {
    m.on(ListObjectsV2Command).resolves({ Contents: [], IsTruncated: false, NextContinuationToken: 'stale' });
    expect(await listPage(store, { max: 2 })).toEqual({ objects: [] });
  });
});

describe('toObjectHead: checksums', () => {
  const h = (over: object) => toObjectHead('server1', { ETag: '"e-2"', ChecksumCRC32: 'c', ChecksumSHA256: 's', ...over });

  it('keeps the checksums of a multipart object only when S3 says they cover the whole object', () => {
    expect(h({}).checksums).toEqual({});
    expect(h({ ChecksumType: 'FULL_OBJECT' }).checksums).toEqual({ CRC32: 'c', SHA256: 's' });
    expect(h({ ChecksumType: 'COMPOSITE', ETag: '"e"' }).checksums).toEqual({});
    expect(h({ ETag: '"e"', ChecksumCRC32: 'c-3' }).checksums).toEqual({ SHA256: 's' });
  });

  it('knows an ETag is no MD5 under KMS or a customer key', () => {
    expect([h({}).etagIsMd5, h({ ServerSideEncryption: 'AES256' }).etagIsMd5]).toEqual([true, true]);
    expect([h({ ServerSideEncryption: 'aws:kms' }), h({ ServerSideEncryption: 'aws:kms:dsse' }), h({ SSECustomerAlgorithm: 'AES256' })].map((x) => x.etagIsMd5)).toEqual([false, false, false]);
  });
});

describe('connectStores', () => {
  it('gives stores on one region and endpoint one client, others their own, each with a signer of its own', () => {
    const [a, b, c, d] = connectStores({
      stores: [
        { name: 'a', bucket: 'ba' },
        { name: 'b', bucket: 'bb' },
        { name: 'c', bucket: 'bc', region: 'eu-west-1' },
        { name: 'd', bucket: 'bd', endpoint: 'http://127.0.0.1:9' },
      ],
      s3Endpoint: undefined,
      flavor: 'aws',
    });
    expect([a!.s3 === b!.s3, a!.s3 === c!.s3, a!.s3 === d!.s3, c!.s3 === d!.s3, a!.signer === b!.signer, a!.signer === a!.s3]).toEqual([true, false, false, false, true, false]);
    expect([a, b, c, d].map((s) => [s!.name, s!.bucket, s!.flavor])).toEqual([['a', 'ba', 'aws'], ['b', 'bb', 'aws'], ['c', 'bc', 'aws'], ['d', 'bd', 'aws']]);
  });
});
