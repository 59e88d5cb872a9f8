import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/core/serde';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { LOCAL_SYSTEM_ACCESS_KEY } from '../../lib/config';
import { ObjectChangedError, StoreUnavailableError } from '../../lib/errors';
import {
  abortUpload,
  bareEtag,
  certainlyNotDone,
  completeUpload,
  connectStores,
  copyObject,
  deleteObject,
  describeFailure,
  getObject,
  getRange,
  headObject,
  isMissing,
  listPage,
  onStore,
  openPinned,
  putObject,
  toObjectHead,
  type ObjectHead,
  type Store,
} from '../../lib/stores';
import { caught, freshStore, textBody as body } from '../helpers/adapter';
import { T, testClient } from '../helpers/conditional-s3';
import { s3Error } from '../helpers/mock-s3';

/*
 * The adapter's error mapping, one signal at a time: S3's errors carry a name and a status, and
 * either alone must be enough (an SDK that fails to parse a body keeps only the status; a
 * HEAD's 404 has no body at all). And what each answer is made of when S3 leaves a field out.
 */

let m: AwsClientStub<S3Client>;
let store: Store;
beforeEach(() => ({ m, store } = freshStore()));
afterEach(() => jest.useRealTimers());

const named = (name: string) => Object.assign(new Error(name), { name });
const status = (httpStatusCode: number) => Object.assign(new Error(`HTTP ${httpStatusCode}`), { name: 'Unknown', $metadata: { httpStatusCode } });
const head = (over: Partial<ObjectHead> = {}): ObjectHead => ({
  store: 'server1', size: 3, etag: '"src"', mtimeMs: T, lastModifiedMs: T, checksums: {}, etagIsMd5: true, metadata: {}, ...over,
});
const far = (): Store => {
  const other = testClient('eu-west-1');
  return { name: 'server3', bucket: 'bucket-3', s3: other, flavor: 'aws' };
};

describe('missing: a name or a 404 alone says it', () => {
  it('takes NotFound, NoSuchKey or any 404 for missing, never NoSuchBucket, nothing else', () => {
    expect([named('NotFound'), named('NoSuchKey'), status(404)].map(isMissing)).toEqual([true, true, true]);
    expect([named('NoSuchBucket'), Object.assign(status(404), { name: 'NoSuchBucket' }), status(403), named('AccessDenied'), undefined, null].map(isMissing)).toEqual([
      false, false, false, false, false, false,
    ]);
  });

  it('answers a HEAD missing on either signal', async () => {
    m.on(HeadObjectCommand).rejectsOnce(named('NotFound')).rejectsOnce(status(404));
    m.on(HeadBucketCommand).resolves({});
    expect([await headObject(store, 'a'), await headObject(store, 'b')]).toEqual([null, null]);
  });

  it('calls whatever was thrown, even nothing, unavailable', async () => {
    expect(await caught(onStore(store, () => Promise.reject(undefined)))).toBeInstanceOf(StoreUnavailableError);
    m.on(PutObjectCommand).callsFake(() => Promise.reject(undefined));
    expect(await caught(putObject(store, 'k', 'x', { metadata: {}, condition: { ifAbsent: true } }))).toBeInstanceOf(StoreUnavailableError);
  });

  it('keeps what went wrong as the cause', async () => {
    const denied = s3Error('AccessDenied', 403);
    expect(await caught(onStore(store, () => Promise.reject(denied)))).toMatchObject({ cause: denied });
    m.on(PutObjectCommand).rejects(denied);
    expect(await caught(putObject(store, 'k', 'x', { metadata: {} }))).toMatchObject({ name: 'StoreUnavailableError', cause: denied });
    m.on(AbortMultipartUploadCommand).rejects(denied);
    expect(await caught(abortUpload(store, 'k', 'u'))).toMatchObject({ name: 'StoreUnavailableError', cause: denied });
  });
});

describe('a failed condition: PreconditionFailed or a 412 alone says it', () => {
  it('is ObjectChangedError on either signal', async () => {
    m.on(PutObjectCommand).rejectsOnce(named('PreconditionFailed')).rejectsOnce(status(412));
    for (let i = 0; i < 2; i++) {
      expect(await caught(putObject(store, 'k', 'x', { metadata: {}, condition: { ifMatch: '"e"' } }))).toBeInstanceOf(ObjectChangedError);
    }
  });

  it('a 404 means the object conditioned on is gone only for a conditional write', async () => {
    m.on(DeleteObjectCommand).rejects(s3Error('NoSuchKey', 404));
    expect(await caught(deleteObject(store, 'k'))).toBeInstanceOf(StoreUnavailableError);
    expect(await caught(deleteObject(store, 'k', '"e"'))).toBeInstanceOf(ObjectChangedError);
    m.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    expect(await caught(getRange(store, 'k', '"e"'))).toBeInstanceOf(ObjectChangedError);
  });

  it('takes a refusal whose error says nothing of attempts as a first attempt', () => {
    expect(certainlyNotDone(new ObjectChangedError('server1', 'k', { cause: named('PreconditionFailed') }))).toBe(true);
    expect(certainlyNotDone(new ObjectChangedError('server1', 'k'))).toBe(true);
  });
});

describe('pinned reads can be abandoned', () => {
  it('hands the caller\'s abort signal to the SDK', async () => {
    const signal = new AbortController().signal;
    m.on(GetObjectCommand).callsFake(() => ({ ContentLength: 0, ETag: '"e"', Body: sdkStreamMixin(Readable.from([])) }));
    await getRange(store, 'k', '"e"', { signal });
    await openPinned(store, 'k', '"e"', signal);
    expect(m.commandCalls(GetObjectCommand).map((c) => (c.args as unknown[])[1])).toEqual([{ abortSignal: signal }, { abortSignal: signal }]);
  });
});

describe('409 ConditionalRequestConflict', () => {
  it('is tried again after 50 ms, then 100 ms', async () => {
    jest.useFakeTimers();
    m.on(PutObjectCommand).rejectsOnce(named('ConditionalRequestConflict')).rejectsOnce(named('ConditionalRequestConflict')).resolves({ ETag: '"p"' });
    const put = putObject(store, 'k', 'x', { metadata: {}, condition: { ifAbsent: true } });
    await jest.advanceTimersByTimeAsync(49);
    expect(m).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    await jest.advanceTimersByTimeAsync(1);
    expect(m).toHaveReceivedCommandTimes(PutObjectCommand, 2);
    await jest.advanceTimersByTimeAsync(99);
    expect(m).toHaveReceivedCommandTimes(PutObjectCommand, 2);
    await jest.advanceTimersByTimeAsync(1);
    expect(await put).toBe('"p"');
    expect(m).toHaveReceivedCommandTimes(PutObjectCommand, 3);
  });

  it('is unavailable when what was thrown is nothing at all', async () => {
    m.on(CopyObjectCommand).callsFake(() => Promise.reject(undefined));
    expect(await caught(copyObject(store, store, 'k', head(), {}, { ifAbsent: true }))).toBeInstanceOf(StoreUnavailableError);
  });
});

describe('a copy streamed between clients', () => {
  const meta = { 'dfs-id': 'w' };
  
  it('calls a source gone since its HEAD (404) changed, naming the source', async () => {
    m.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    expect(await caught(copyObject(store, far(), 'k', head(), meta, { ifAbsent: true }))).toMatchObject({ name: 'ObjectChangedError', store: 'server1' });
  });

  it('calls a 404 on the target changed only when the write was conditional', async () => {
    const target = far();
    const mt = mockClient(target.s3);
    m.on(GetObjectCommand).callsFake(() => ({ ContentLength: 3, ETag: '"src"', Body: body('abc') }));
    mt.on(PutObjectCommand).rejects(s3Error('NoSuchKey', 404));
    expect(await caught(copyObject(store, target, 'k', head(), meta, { ifMatch: '"old"' }))).toMatchObject({ name: 'ObjectChangedError', store: 'server3' });
    expect(await caught(copyObject(store, target, 'k', head(), meta, undefined))).toMatchObject({ name: 'StoreUnavailableError', store: 'server3' });
  });

  it("answers '' for an ETag S3 left out, inside S3 and streamed", async () => {
    m.on(CopyObjectCommand).resolves({});
    expect(await copyObject(store, store, 'k', head(), meta, { ifAbsent: true })).toBe('');
    const target = far();
    mockClient(target.s3).on(PutObjectCommand).resolves({});
    m.on(GetObjectCommand).callsFake(() => ({ ContentLength: 3, ETag: '"src"', Body: body('abc') }));
    expect(await copyObject(store, target, 'k', head(), meta, { ifAbsent: true })).toBe('');
  });
});

describe('answers with fields left out', () => {
  it("puts, completes and heads with no ETag answer ''; a listing with no Contents is empty", async () => {
    m.on(PutObjectCommand).resolves({});
    expect(await putObject(store, 'k', 'x', { metadata: {} })).toBe('');
    m.on(CompleteMultipartUploadCommand).resolves({});
    expect(await completeUpload(store, 'k', 'u', [])).toBe('');
    expect(toObjectHead('server1', {}).etag).toBe('');
    m.on(ListObjectsV2Command).resolves({});
    expect(await listPage(store, { max: 1 })).toEqual({ objects: [] });
  });

  it('takes the quotes off an ETag', () => {
    expect([bareEtag('"abc"'), bareEtag('abc-2'), bareEtag('')]).toEqual(['abc', 'abc-2', '']);
  });

  it('asks S3 for checksums on a whole GET', async () => {
    m.on(GetObjectCommand).resolves({ ETag: '"e"', Body: sdkStreamMixin(Readable.from([])) });
    await getObject(store, 'k');
    expect(m.commandCalls(GetObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'bucket-1', Key: 'k', ChecksumMode: 'ENABLED' });
  });
});

describe('completeUpload', () => {
  it('sends the parts in order of their numbers, whatever order it is given, and answers the ETag', async () => {
    m.on(CompleteMultipartUploadCommand).resolves({ ETag: '"m-3"' });
    const parts = [{ n: 3, etag: '"c"' }, { n: 1, etag: '"a"' }, { n: 2, etag: '"b"' }];
    expect(await completeUpload(store, 'k', 'u1', parts)).toBe('"m-3"');
    expect(m.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input).toEqual({
      Bucket: 'bucket-1', Key: 'k', UploadId: 'u1',
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"a"' }, { PartNumber: 2, ETag: '"b"' }, { PartNumber: 3, ETag: '"c"' }] },
    });
    expect(parts.map((p) => p.n)).toEqual([3, 1, 2]); // the caller's list is left as it was
  });
});

describe('abortUpload on s3rver', () => {
  it('calls whatever else was thrown, even nothing, unavailable', async () => {
    m.on(AbortMultipartUploadCommand).callsFake(() => Promise.reject(undefined));
    expect(await caught(abortUpload({ ...store, flavor: 's3rver' }, 'k', 'u'))).toBeInstanceOf(StoreUnavailableError);
  });
});

describe('describeFailure', () => {
  it('words the upload failures a user can fix', () => {
    const of = (name: string) => describeFailure(new StoreUnavailableError('s', { cause: named(name) })).message;
    expect([of('InvalidPart'), of('InvalidPartOrder'), of('EntityTooSmall')]).toEqual([
      'a part was never uploaded, or is not the part uploaded',
      'the parts are not in order',
      'a part other than the last is under 5 MiB',
    ]);
  });

  it('codes a refusal without a name by its status', () => {
    expect(describeFailure({ $metadata: { httpStatusCode: 403 } })).toEqual({ code: 'Http403', message: 'the store refused the request (403)', clientFault: false });
  });
});

describe('connectStores: the clients it builds', () => {
  it('tells stores in different regions, or behind different endpoints, apart', () => {
    const [a, b, c, d] = connectStores({
      stores: [
        { name: 'a', bucket: 'ba', region: 'eu-west-1' },
        { name: 'b', bucket: 'bb', region: 'us-west-2' },
        { name: 'c', bucket: 'bc', endpoint: 'http://127.0.0.1:9' },
        { name: 'd', bucket: 'bd', endpoint: 'http://127.0.0.1:10' },
      ],
      s3Endpoint: undefined,
      flavor: 'aws',
    });
    expect([a!.s3 === b!.s3, c!.s3 === d!.s3]).toEqual([false, false]);
  });

  it("sets each client's region, and signs as the system on s3rver; the signer adds no checksums", async () => {
    const [a, local] = connectStores({ stores: [{ name: 'a', bucket: 'ba', region: 'eu-west-1' }, { name: 'l', bucket: 'bl', endpoint: 'http://127.0.0.1:9' }], s3Endpoint: undefined, flavor: 'aws' });
    expect([await a!.s3.config.region(), await a!.signer!.config.region()]).toEqual(['eu-west-1', 'eu-west-1']);
    expect(await a!.signer!.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
    expect(await a!.s3.config.requestChecksumCalculation()).toBe('WHEN_SUPPORTED');
    const creds = async (c: S3Client) => (await c.config.credentials()).accessKeyId;
    expect([await creds(local!.s3), await creds(local!.signer!)]).toEqual([LOCAL_SYSTEM_ACCESS_KEY, LOCAL_SYSTEM_ACCESS_KEY]);
  });
});
