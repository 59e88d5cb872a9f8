import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/core/serde';
import { mockClient } from 'aws-sdk-client-mock';
import { ObjectChangedError, StoreUnavailableError, UnknownStoreError } from '../../lib/errors';
import {
  askEvery,
  certainlyNotDone,
  completeUpload,
  copyObject,
  deleteObject,
  getObject,
  headObject,
  listPage,
  putObject,
  storeNamed,
  toObjectHead,
  type ObjectHead,
  type Store,
} from '../../lib/stores';
import { T, testClient } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';

/*
 * The store adapter's contract: missing → null, a failed condition → ObjectChangedError, anything
 * else → StoreUnavailableError. Canned SDK answers (aws-sdk-client-mock) drive each row.
 */

const c1 = testClient();
const c2 = testClient('eu-west-1');
const m1 = mockClient(c1);
const m2 = mockClient(c2);
const s1: Store = { name: 'server1', bucket: 'bucket-1', s3: c1, flavor: 'aws' };
const s2: Store = { name: 'server2', bucket: 'bucket-2', s3: c1, flavor: 'aws' };
const far: Store = { name: 'server3', bucket: 'bucket-3', s3: c2, flavor: 'aws' };
const rver = (s: Store): Store => ({ ...s, flavor: 's3rver' });

beforeEach(() => {
  m1.reset();
  m2.reset();
});

/** An SDK error as a response after `attempts` tries. */
const sdkError = (name: string, status: number, attempts = 1) =>
  Object.assign(s3Error(name, status), { $metadata: { httpStatusCode: status, attempts } });

const head = (over: Partial<ObjectHead> = {}): ObjectHead => ({
  store: 'server1', size: 3, etag: '"src"', mtimeMs: T, lastModifiedMs: T, checksums: {}, etagIsMd5: true, metadata: {}, ...over,
});
const body = (text: string) => sdkStreamMixin(Readable.from([Buffer.from(text)]));
const caught = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

describe('storeNamed', () => {
  it('finds a store by name and names the configured ones otherwise', () => {
    expect(storeNamed([s1, s2], 'server2')).toBe(s2);
    expect(() => storeNamed([s1, s2], 'x')).toThrow(new UnknownStoreError('unknown store "x"; stores are: server1, server2'));
  });
});

describe('reads: headObject and getObject', () => {
  it('answers null for a missing object (HEAD: NotFound, GET: NoSuchKey)', async () => {
    m1.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    m1.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    expect(await headObject(s1, 'k')).toBeNull();
    expect(await getObject(s1, 'k')).toBeNull();
  });

  it.each([
    ['a missing bucket (NoSuchBucket)', () => s3Error('NoSuchBucket', 404, 'The specified bucket does not exist')],
    ['a network error', networkError],
    ['a 503', () => s3Error('ServiceUnavailable', 503)],
    ['throttling', () => s3Error('SlowDown', 503)],
    ['AccessDenied', () => s3Error('AccessDenied', 403)],
    ['a 500', () => s3Error('InternalError', 500)],
  ])('answers %s with StoreUnavailableError naming the store, never null', async (_, error) => {
    m1.on(HeadObjectCommand).rejects(error());
    m1.on(GetObjectCommand).rejects(error());
    for (const read of [headObject(s1, 'k'), getObject(s1, 'k')]) {
      const err = await caught(read);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err).toMatchObject({ store: 'server1' });
    }
  });

  it('reads a head: rclone mtime, stamp, LastModified, metadata, with checksums asked for', async () => {
    m1.on(HeadObjectCommand).resolves({
      ContentLength: 5, ETag: '"e"', LastModified: new Date(T), ContentType: 'text/plain',
      Metadata: { mtime: '1705309200.5', 'dfs-id': 'w1', 'dfs-made': String(T - 10), 'dfs-who': 'ann' },
      ChecksumCRC32: 'abc=', ChecksumType: 'FULL_OBJECT',
    });
    expect(await headObject(s1, 'k')).toEqual({
      store: 'server1', size: 5, etag: '"e"', mtimeMs: 1705309200500, stamp: { id: 'w1', madeMs: T - 10, who: 'ann' }, lastModifiedMs: T,
      contentType: 'text/plain', checksums: { CRC32: 'abc=' }, etagIsMd5: true,
      metadata: { mtime: '1705309200.5', 'dfs-id': 'w1', 'dfs-made': String(T - 10), 'dfs-who': 'ann' },
    });
    expect(m1).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: 'bucket-1', Key: 'k', ChecksumMode: 'ENABLED' });
  });

  it('opens a body stream with the head', async () => {
    m1.on(GetObjectCommand).resolves({ ContentLength: 2, ETag: '"e"', LastModified: new Date(T), Body: body('hi') });
    const got = await getObject(s1, 'k');
    expect(got).toMatchObject({ head: { size: 2, etag: '"e"' }, length: 2 });
    expect(Buffer.concat(await got!.body.toArray()).toString()).toBe('hi');
  });
});

describe('toObjectHead', () => {
  it('takes the mtime from metadata, else the stamp, else LastModified; LastModified is only lastModifiedMs', () => {
    const lm = new Date(T);
    expect(toObjectHead('s', { LastModified: lm, Metadata: { mtime: '1705309200' } }).mtimeMs).toBe(1705309200000);
    expect(toObjectHead('s', { LastModified: lm, Metadata: { mtime: 'bad', 'dfs-id': 'x', 'dfs-made': '77' } }).mtimeMs).toBe(77);
    expect(toObjectHead('s', { LastModified: lm, Metadata: {} }).mtimeMs).toBe(T);
    expect(toObjectHead('s', { LastModified: lm, Metadata: { mtime: '1705309200' } }).lastModifiedMs).toBe(T);
  });

  it('has no stamp for a version written without one', () => {
    expect(toObjectHead('s', { Metadata: { mtime: '1' } })).not.toHaveProperty('stamp');
  });

  it('keeps only full-object checksums, and knows a KMS ETag is no MD5', () => {
    expect(toObjectHead('s', { ETag: '"a-2"', ChecksumCRC32: 'x' }).checksums).toEqual({});
    expect(toObjectHead('s', { ETag: '"a-2"', ChecksumCRC32: 'x', ChecksumType: 'FULL_OBJECT' }).checksums).toEqual({ CRC32: 'x' });
    expect(toObjectHead('s', { ETag: '"a"', ChecksumSHA256: 'y', ChecksumType: 'COMPOSITE' }).checksums).toEqual({});
    expect(toObjectHead('s', { ServerSideEncryption: 'aws:kms' }).etagIsMd5).toBe(false);
    expect(toObjectHead('s', { ServerSideEncryption: 'AES256' }).etagIsMd5).toBe(true);
  });
});

describe('writes: the error mapping', () => {
  const put = (store = s1) => putObject(store, 'k', 'x', { metadata: {}, condition: { ifMatch: '"old"' } });

  it('turns 412 PreconditionFailed into ObjectChangedError naming the store and key', async () => {
    m1.on(PutObjectCommand).rejects(sdkError('PreconditionFailed', 412));
    const err = await caught(put());
    expect(err).toBeInstanceOf(ObjectChangedError);
    expect(err).toMatchObject({ store: 'server1', key: 'k' });
    expect(m1).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('retries 409 ConditionalRequestConflict, and succeeds when S3 lets it through', async () => {
    m1.on(PutObjectCommand)
      .rejectsOnce(sdkError('ConditionalRequestConflict', 409))
      .rejectsOnce(sdkError('ConditionalRequestConflict', 409))
      .resolves({ ETag: '"new"' });
    expect(await put()).toBe('"new"');
    expect(m1).toHaveReceivedCommandTimes(PutObjectCommand, 3);
  });

  it('gives up on 409 after three attempts with ObjectChangedError', async () => {
    m1.on(PutObjectCommand).rejects(sdkError('ConditionalRequestConflict', 409));
    expect(await caught(put())).toBeInstanceOf(ObjectChangedError);
    expect(m1).toHaveReceivedCommandTimes(PutObjectCommand, 3);
  });

  it('calls a 404 on a conditional write changed (the object conditioned on is gone)', async () => {
    m1.on(PutObjectCommand).rejects(sdkError('NoSuchKey', 404));
    m1.on(DeleteObjectCommand).rejects(sdkError('NoSuchKey', 404));
    expect(await caught(put())).toBeInstanceOf(ObjectChangedError);
    expect(await caught(deleteObject(s1, 'k', '"old"'))).toBeInstanceOf(ObjectChangedError);
  });

  it('calls a 404 on an unconditional write unavailable: it says nothing of the object', async () => {
    m1.on(PutObjectCommand).rejects(sdkError('NoSuchKey', 404));
    expect(await caught(putObject(s1, 'k', 'x', { metadata: {} }))).toBeInstanceOf(StoreUnavailableError);
  });

  it.each([
    ['a missing bucket', () => s3Error('NoSuchBucket', 404)],
    ['a network error', networkError],
    ['a 503', () => s3Error('ServiceUnavailable', 503)],
    ['AccessDenied', () => s3Error('AccessDenied', 403)],
  ])('turns %s on a conditional write into StoreUnavailableError', async (_, error) => {
    m1.on(PutObjectCommand).rejects(error());
    const err = await caught(put());
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ store: 'server1' });
  });

  it('sends the condition: If-Match, If-None-Match: *, or none', async () => {
    m1.on(PutObjectCommand).resolves({ ETag: '"n"' });
    await putObject(s1, 'k', 'x', { metadata: { a: '1' }, contentType: 'text/plain', condition: { ifMatch: '"old"' } });
    await putObject(s1, 'k', 'x', { metadata: {}, condition: { ifAbsent: true } });
    await putObject(s1, 'k', 'x', { metadata: {} });
    const inputs = m1.commandCalls(PutObjectCommand).map((x) => x.args[0].input);
    expect(inputs[0]).toMatchObject({ Bucket: 'bucket-1', Key: 'k', Metadata: { a: '1' }, ContentType: 'text/plain', IfMatch: '"old"' });
    expect(inputs[0]).not.toHaveProperty('IfNoneMatch');
    expect(inputs[1]).toMatchObject({ IfNoneMatch: '*' });
    expect(inputs[1]).not.toHaveProperty('IfMatch');
    expect(inputs[2]).not.toHaveProperty('IfMatch');
    expect(inputs[2]).not.toHaveProperty('IfNoneMatch');
  });

  it('deletes conditionally only when given an ETag', async () => {
    m1.on(DeleteObjectCommand).resolves({});
    await deleteObject(s1, 'k', '"e"');
    await deleteObject(s1, 'k');
    const inputs = m1.commandCalls(DeleteObjectCommand).map((x) => x.args[0].input);
    expect(inputs).toEqual([{ Bucket: 'bucket-1', Key: 'k', IfMatch: '"e"' }, { Bucket: 'bucket-1', Key: 'k' }]);
  });

  it('does not call a failed multipart completion (NoSuchUpload) a changed object', async () => {
    m1.on(CompleteMultipartUploadCommand).rejects(sdkError('NoSuchUpload', 404));
    expect(await caught(completeUpload(s1, 'k', 'u', [{ n: 1, etag: '"a"' }]))).toBeInstanceOf(StoreUnavailableError);
  });
});

describe('certainlyNotDone', () => {
  it('is true only for a condition S3 refused on the first attempt', async () => {
    m1.on(PutObjectCommand).rejectsOnce(sdkError('PreconditionFailed', 412, 1)).rejectsOnce(sdkError('PreconditionFailed', 412, 2));
    const put = () => caught(putObject(s1, 'k', 'x', { metadata: {}, condition: { ifMatch: '"e"' } }));
    expect(certainlyNotDone(await put())).toBe(true);
    expect(certainlyNotDone(await put())).toBe(false);
  });

  it('takes a refusal without attempt count as a first attempt', () => {
    expect(certainlyNotDone(new ObjectChangedError('s', 'k', { cause: s3Error('PreconditionFailed', 412) }))).toBe(true);
    expect(certainlyNotDone(new ObjectChangedError('s', 'k'))).toBe(true);
  });

  it('is false for anything but ObjectChangedError, even on a first attempt', () => {
    expect(certainlyNotDone(new StoreUnavailableError('s', { cause: sdkError('InternalError', 500, 1) }))).toBe(false);
    expect(certainlyNotDone(sdkError('PreconditionFailed', 412, 1))).toBe(false);
    expect(certainlyNotDone(new ObjectChangedError('s', 'k', { cause: sdkError('PreconditionFailed', 412, 3) }))).toBe(false);
  });
});

describe('copyObject', () => {
  const KEY = 'dir one/a+b%c#?€ & ü.txt';
  const meta = { mtime: '1705309200', 'dfs-id': 'w', 'dfs-replica-of': 'server1' };

  it('copies inside S3 on AWS: CopySource encoded per segment, metadata replaced, source pinned, target conditional', async () => {
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
    expect(await copyObject(s1, s2, KEY, head({ contentType: 'text/plain' }), meta, { ifAbsent: true })).toBe('"copy"');
    expect(m1.commandCalls(CopyObjectCommand).map((x) => x.args[0].input)).toEqual([{
      Bucket: 'bucket-2', Key: KEY, CopySource: 'bucket-1/dir%20one/a%2Bb%25c%23%3F%E2%82%AC%20%26%20%C3%BC.txt',
      CopySourceIfMatch: '"src"', MetadataDirective: 'REPLACE', Metadata: meta, ContentType: 'text/plain', IfNoneMatch: '*',
    }]);
  });

  it('encodes CopySource with encodeURI for s3rver, which decodes it with decodeURI', async () => {
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
    await copyObject(rver(s1), rver(s2), KEY, head(), meta, { ifAbsent: true });
    const source = m1.commandCalls(CopyObjectCommand)[0]!.args[0].input.CopySource!;
    expect(source).toBe('bucket-1/dir%20one/a+b%25c#?%E2%82%AC%20&%20%C3%BC.txt');
    expect(decodeURI(source.slice('bucket-1/'.length))).toBe(KEY);
  });

  it('replaces a target only while it is the version it was compared with (If-Match)', async () => {
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
    await copyObject(s1, s2, 'k', head(), meta, { ifMatch: '"old"' });
    expect(m1).toHaveReceivedCommandWith(CopyObjectCommand, { IfMatch: '"old"' });
    expect(m1.commandCalls(CopyObjectCommand)[0]!.args[0].input).not.toHaveProperty('IfNoneMatch');
  });

  it('re-stamps a version in place with CopyObject, on s3rver too (the bytes are the same)', async () => {
    const inPlace = rver(s1);
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"src"' } });
    await copyObject(inPlace, inPlace, 'k', head(), meta, { ifMatch: '"src"' });
    expect(m1).toHaveReceivedCommandWith(CopyObjectCommand, { Bucket: 'bucket-1', CopySource: 'bucket-1/k', IfMatch: '"src"', MetadataDirective: 'REPLACE' });
    expect(m1).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('turns a refused copy (412 on target or source) into ObjectChangedError naming the target', async () => {
    m1.on(CopyObjectCommand).rejects(sdkError('PreconditionFailed', 412));
    expect(await caught(copyObject(s1, s2, 'k', head(), meta, { ifAbsent: true }))).toMatchObject({ name: 'ObjectChangedError', store: 'server2' });
  });

  it('calls a copy whose source vanished (404 NoSuchKey) changed', async () => {
    m1.on(CopyObjectCommand).rejects(sdkError('NoSuchKey', 404));
    expect(await caught(copyObject(s1, s2, 'k', head(), meta, { ifMatch: '"old"' }))).toBeInstanceOf(ObjectChangedError);
  });

  it('streams through this process, conditional on both ends, when the stores are on different clients', async () => {
    m1.on(GetObjectCommand).resolves({ ContentLength: 3, ETag: '"src"', Body: body('abc') });
    m2.on(PutObjectCommand).resolves({ ETag: '"put"' });
    expect(await copyObject(s1, far, 'k', head({ contentType: 'text/plain' }), meta, { ifMatch: '"old"' })).toBe('"put"');
    expect(m1).not.toHaveReceivedCommand(CopyObjectCommand);
    expect(m1).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'bucket-1', Key: 'k', IfMatch: '"src"' });
    const put = m2.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(put).toMatchObject({ Bucket: 'bucket-3', Key: 'k', Metadata: meta, ContentType: 'text/plain', IfMatch: '"old"' });
  });

  it('names the source when the streamed source changed since its HEAD', async () => {
    m1.on(GetObjectCommand).rejects(sdkError('PreconditionFailed', 412));
    const err = await caught(copyObject(s1, far, 'k', head(), meta, { ifAbsent: true }));
    expect(err).toMatchObject({ name: 'ObjectChangedError', store: 'server1' });
    expect(m2).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('names the target when the streamed write is refused', async () => {
    m1.on(GetObjectCommand).resolves({ ContentLength: 3, ETag: '"src"', Body: body('abc') });
    m2.on(PutObjectCommand).rejects(sdkError('PreconditionFailed', 412));
    expect(await caught(copyObject(s1, far, 'k', head(), meta, { ifAbsent: true }))).toMatchObject({ name: 'ObjectChangedError', store: 'server3' });
  });

  it('on s3rver, copies over an existing object with CopyObject too (it stores a fresh MD5 on a REPLACE copy)', async () => {
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
    await copyObject(rver(s1), rver(s2), 'k', head(), meta, { ifMatch: '"old"' });
    expect(m1).toHaveReceivedCommandWith(CopyObjectCommand, { Bucket: 'bucket-2', Key: 'k', CopySource: 'bucket-1/k', IfMatch: '"old"', Metadata: meta });
    expect(m1).not.toHaveReceivedCommand(PutObjectCommand);
    expect(m1).not.toHaveReceivedCommand(GetObjectCommand);
  });

  it('on s3rver, still uses CopyObject onto a free key', async () => {
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
    await copyObject(rver(s1), rver(s2), 'k', head(), meta, { ifAbsent: true });
    expect(m1).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
  });

  it('copies from another key of the source bucket (fromKey) to the key it is given', async () => {
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
    await copyObject(s1, s2, 'a b.txt', head(), meta, { ifAbsent: true }, 'superseded/a b.txt/w1');
    expect(m1.commandCalls(CopyObjectCommand).map((x) => x.args[0].input)).toEqual([
      expect.objectContaining({ Bucket: 'bucket-2', Key: 'a b.txt', CopySource: 'bucket-1/superseded/a%20b.txt/w1', CopySourceIfMatch: '"src"', IfNoneMatch: '*' }),
    ]);
  });

  it('streams from another key (fromKey) when the stores are on different clients, pinned to its ETag', async () => {
    m1.on(GetObjectCommand).resolves({ ContentLength: 3, ETag: '"src"', Body: body('abc') });
    m2.on(PutObjectCommand).resolves({ ETag: '"put"' });
    await copyObject(s1, far, 'k', head(), meta, { ifMatch: '"old"' }, 'superseded/k/w1');
    expect(m1.commandCalls(GetObjectCommand).map((x) => x.args[0].input)).toEqual([{ Bucket: 'bucket-1', Key: 'superseded/k/w1', IfMatch: '"src"' }]);
    expect(m2).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'bucket-3', Key: 'k', IfMatch: '"old"' });
  });

  it('copies up to exactly 5 GiB inside S3 and streams anything larger', async () => {
    m1.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
    m1.on(GetObjectCommand).resolves({ ContentLength: 3, ETag: '"src"', Body: body('abc') });
    m1.on(PutObjectCommand).resolves({ ETag: '"put"' });
    await copyObject(s1, s2, 'k', head({ size: 5 * 1024 ** 3 }), meta, { ifAbsent: true });
    expect(m1).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
    expect(m1).not.toHaveReceivedCommand(GetObjectCommand);
    await copyObject(s1, s2, 'k', head({ size: 5 * 1024 ** 3 + 1 }), meta, { ifAbsent: true });
    expect(m1).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
    expect(m1).toHaveReceivedCommandTimes(GetObjectCommand, 1);
  });
});

describe('listPage', () => {
  it('answers the objects of one page and the token of the next', async () => {
    m1.on(ListObjectsV2Command).resolves({
      Contents: [{ Key: 'a', Size: 1, ETag: '"x"', LastModified: new Date(T) }], IsTruncated: true, NextContinuationToken: 'tok',
    });
    expect(await listPage(s1, { prefix: 'p', after: 'z', max: 5 })).toEqual({ objects: [{ key: 'a', size: 1, etag: '"x"', lastModifiedMs: T }], next: 'tok' });
    expect(m1).toHaveReceivedCommandWith(ListObjectsV2Command, { Bucket: 'bucket-1', Prefix: 'p', StartAfter: 'z', MaxKeys: 5 });
  });

  it('answers a store that cannot list with StoreUnavailableError', async () => {
    m1.on(ListObjectsV2Command).rejects(s3Error('NoSuchBucket', 404));
    expect(await caught(listPage(s1, { max: 5 }))).toBeInstanceOf(StoreUnavailableError);
  });
});

describe('askEvery', () => {
  it('answers every store that answered and names those that did not', async () => {
    const r = await askEvery([s1, s2, far], async (s) => {
      if (s === s2) throw new StoreUnavailableError(s.name);
      return s.bucket;
    });
    expect([...r.answers]).toEqual([['server1', 'bucket-1'], ['server3', 'bucket-3']]);
    expect(r.unavailable).toEqual(['server2']);
  });

  it('keeps a null answer (missing) apart from an unavailable store', async () => {
    const r = await askEvery([s1, s2], async () => null);
    expect([...r.answers]).toEqual([['server1', null], ['server2', null]]);
    expect(r.unavailable).toEqual([]);
  });

  it('throws any other error: that is a bug, not a store down', async () => {
    const bug = new TypeError('boom');
    await expect(askEvery([s1, s2], async (s) => {
      if (s === s2) throw bug;
      return 1;
    })).rejects.toBe(bug);
  });
});
