import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/core/serde';
import { Readable } from 'node:stream';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { abortUpload, choosePartSize, completeUpload, putFile, signParts, startUpload, S3_LIMITS } from '../../lib/upload';
import { BadRequestError, InvalidKeyError, OverruledError, PayloadTooLargeError, StoreUnavailableError, UnknownStoreError } from '../../lib/errors';
import { formatMtime, writeMetadata } from '../../lib/stamps';
import { createS3Client } from '../../lib/config';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { handler } from '../../handlers/api';
import { createHash } from 'node:crypto';
import { makeDeps as makeTestDeps } from '../helpers/deps';
import { makeStores, networkError, s3Error } from '../helpers/mock-s3';
import { forgetTokens } from '../../lib/tokens';
import { tombstoneKey } from '../../lib/tombstones';
import { lockRecordKey } from '../../lib/locks';
import { AUTH, READ_AUTH, testTokenRecords } from '../helpers/apigw';

// The handler builds its deps from the environment; here it gets the test's instead.
let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

const stores = makeStores(2);
/** One stub per store client, so each store can fail on its own. */
const mocks: AwsClientStub<S3Client>[] = stores.map((s) => mockClient(s.s3));
const [s1, s2] = mocks as [AwsClientStub<S3Client>, AwsClientStub<S3Client>];
/** The control bucket (tombstones) on a client of its own. */
const control = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
const controlMock = mockClient(control);
const makeDeps = (s: Store[], over: Partial<Deps> = {}) => makeTestDeps(s, { control: { bucket: 'control', s3: control }, ...over });

beforeEach(() => {
  [...mocks, controlMock].forEach((m) => m.reset());
  s1.on(PutObjectCommand).resolves({ ETag: '"etag-1"' });
  s2.on(PutObjectCommand).resolves({ ETag: '"etag-2"' });
  s1.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-1' });
  s2.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-2' });
  // Neither store holds a key, and no key was ever deleted, unless a test says otherwise.
  mocks.forEach((m) => m.on(HeadObjectCommand).rejects(s3Error('NotFound', 404)));
  controlMock.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
  controlMock.on(ListObjectsV2Command).resolves({ Contents: [], KeyCount: 0, IsTruncated: false });
  mockDeps = makeDeps(stores);
});

const sentNothing = () => {
  for (const m of mocks) expect(m.calls()).toHaveLength(0);
};
const wroteNothing = () => {
  for (const m of mocks) {
    expect(m).not.toHaveReceivedCommand(PutObjectCommand);
    expect(m).not.toHaveReceivedCommand(CreateMultipartUploadCommand);
  }
};
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** What HEAD answers for a copy written through dfs. */
const stampedHead = (o: { mtime: number; made: number; etag?: string; id?: string }): HeadObjectCommandOutput => ({
  $metadata: {},
  ContentLength: 5,
  ETag: o.etag ?? '"0123456789abcdef0123456789abcdef"',
  LastModified: new Date(o.made),
  Metadata: writeMetadata({ id: o.id ?? 'w2', madeMs: o.made, who: 'bob' }, o.mtime),
});
/** The key's tombstone in the control bucket; no other record there (no lock). */
const tombstoneAt = (deletedAt: number) =>
  controlMock.on(GetObjectCommand).callsFake(async (i: { Key?: string }) => {
    if (i.Key !== tombstoneKey('a.txt')) throw s3Error('NoSuchKey', 404);
    return { ETag: '"t"', Body: sdkStreamMixin(Readable.from([Buffer.from(JSON.stringify({ key: 'a.txt', deletedAt, who: 'x', intents: [] }))])) };
  });
/** The control bucket's GETs, by key. */
const controlGets = () => controlMock.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key);

describe('putFile', () => {
  const body = Buffer.from('hello');

  it('writes to every store by default and answers ok for each', async () => {
    const a = await putFile(makeDeps(stores), { key: 'dir/a.txt', body, now: NOW });
    expect(a).toEqual({
      key: 'dir/a.txt',
      size: 5,
      mtime: new Date(NOW).toISOString(),
      results: [
        { store: 'server1', ok: true, etag: 'etag-1' },
        { store: 'server2', ok: true, etag: 'etag-2' },
      ],
    });
    for (const [m, bucket] of [[s1, 'bucket-1'], [s2, 'bucket-2']] as const) {
      expect(m).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: bucket, Key: 'dir/a.txt', Body: body });
    }
  });

  it.each([
    ['a network error', () => networkError(), { code: 'NoAnswer', error: 'the store did not answer' }],
    ['a 500', () => s3Error('InternalError', 500, 'We encountered an internal error'), { code: 'StoreFailed', error: 'the store failed (S3 answered 500)' }],
    ['AccessDenied', () => s3Error('AccessDenied', 403, 'Access Denied'), { code: 'AccessDenied', error: 'the stack is not allowed to use this store' }],
  ])('reports one store failing with %s per store, in our words with a code, the others written', async (_, error, why) => {
    s2.on(PutObjectCommand).rejects(error());
    const a = await putFile(makeDeps(stores), { key: 'a.txt', body, to: 'all', now: NOW });
    expect(a.results).toEqual([
      { store: 'server1', ok: true, etag: 'etag-1' },
      { store: 'server2', ok: false, ...why },
    ]);
    expect(s1).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('reports a store whose bucket is gone (NoSuchBucket, 404) as failed, the other written', async () => {
    s2.on(PutObjectCommand).rejects(s3Error('NoSuchBucket', 404, 'The specified bucket does not exist'));
    const a = await putFile(makeDeps(stores), { key: 'a.txt', body, now: NOW });
    expect(a.results).toEqual([
      { store: 'server1', ok: true, etag: 'etag-1' },
      { store: 'server2', ok: false, code: 'NoSuchBucket', error: "the store's bucket does not exist" },
    ]);
  });

  it('writes only to the named store with to=STORE, after only a HEAD of the other (and its bucket, on a miss)', async () => {
    const a = await putFile(makeDeps(stores), { key: 'a.txt', body, to: 'server2', now: NOW });
    expect(a.results).toEqual([{ store: 'server2', ok: true, etag: 'etag-2' }]);
    expect(s2).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'bucket-2', Key: 'a.txt' });
    expect(s1.calls().map((c) => c.args[0].constructor.name)).toEqual(['HeadObjectCommand', 'HeadBucketCommand']);
  });

  it('refuses an unknown store, listing the stores, and sends nothing', async () => {
    const call = putFile(makeDeps(stores), { key: 'a.txt', body, to: 'nosuch' });
    await expect(call).rejects.toThrow(UnknownStoreError);
    await expect(call).rejects.toThrow('unknown store "nosuch"; stores are: all, server1, server2');
    sentNothing();
  });

  it('refuses an empty to= as an unknown store, not as "all", and sends nothing', async () => {
    await expect(putFile(makeDeps(stores), { key: 'a.txt', body, to: '' })).rejects.toThrow('unknown store ""; stores are: all, server1, server2');
    sentNothing();
  });

  it('refuses a body over putInlineLimit with 413 and a hint at POST /uploads, sending nothing', async () => {
    const deps = makeDeps(stores, { putInlineLimit: 4 });
    const err = await putFile(deps, { key: 'a.txt', body }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect(err).toMatchObject({ status: 413, code: 'PayloadTooLarge' });
    expect((err as Error).message).toBe('body is 5 bytes, over the inline limit of 4; use POST /uploads (dfs put does so by itself)');
    sentNothing();
  });

  it('accepts a body of exactly putInlineLimit bytes', async () => {
    const a = await putFile(makeDeps(stores, { putInlineLimit: 5 }), { key: 'a.txt', body });
    expect(a.results.every((r) => r.ok)).toBe(true);
  });

  it('sends the mtime in rclone format with the write\'s stamp, and the ContentType of the extension', async () => {
    await putFile(makeDeps(stores), { key: 'photos/x.png', body, mtime: '1700000000123', now: NOW, who: 'ann' });
    await putFile(makeDeps(stores), { key: 'notes', body, now: NOW });
    const [first, second] = s1.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(first).toMatchObject({ ContentType: 'image/png' });
    expect(first!.Metadata).toEqual({ mtime: '1700000000.123', 'dfs-made': String(NOW), 'dfs-id': expect.stringMatching(/^[0-9a-f]{24}$/), 'dfs-who': 'ann' });
    expect(second).toMatchObject({ ContentType: 'application/octet-stream' });
    expect(second!.Metadata).toEqual({ mtime: formatMtime(NOW), 'dfs-made': String(NOW), 'dfs-id': expect.stringMatching(/^[0-9a-f]{24}$/), 'dfs-who': 'api' });
    expect(second!.Metadata!['dfs-id']).not.toBe(first!.Metadata!['dfs-id']);
  });

  it('gives every store the same stamp for one write', async () => {
    await putFile(makeDeps(stores), { key: 'a.txt', body, now: NOW });
    const meta = mocks.map((m) => m.commandCalls(PutObjectCommand)[0]!.args[0].input.Metadata);
    expect(meta[0]).toEqual(meta[1]);
  });

  it.each(['abc', '-1', '0', '1.5', '1e30', '0x10', ' 1', String(NOW + 5 * 60_000 + 1)])('refuses mtime %j with 400 and sends nothing', async (mtime) => {
    await expect(putFile(makeDeps(stores), { key: 'a.txt', body, mtime, now: NOW })).rejects.toMatchObject({ status: 400, code: 'BadRequest' });
    sentNothing();
  });

  it.each(['', '/a', 'a//b', '../a', 'a\\b', 'dir/'])('refuses the key %j and sends nothing', async (key) => {
    await expect(putFile(makeDeps(stores), { key, body })).rejects.toThrow(InvalidKeyError);
    sentNothing();
  });
});

describe('putFile: a write to some stores that replication would overrule', () => {
  const body = Buffer.from('hello');
  const MINE = NOW - 60_000; // the mtime the client sends
  const put = (over: Partial<Parameters<typeof putFile>[1]> = {}) =>
    putFile(makeDeps(stores), { key: 'a.txt', body, to: 'server1', mtime: String(MINE), now: NOW, ...over });

  it('refuses to=server1 with 409 Overruled when server2 holds a newer live version, naming it, and writes nothing', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE + 1, made: NOW - 1000 }));
    const err = await put().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OverruledError);
    expect(err).toMatchObject({ status: 409, code: 'Overruled', newer: { store: 'server2', mtime: new Date(MINE + 1).toISOString() } });
    expect((err as Error).message).toBe(
      `server2 holds a newer version (mtime ${new Date(MINE + 1).toISOString()}) that replication would put back over this one; write to all stores, or touch the file to make it the newest`,
    );
    wroteNothing();
  });

  it('lets the write through when the other copy is older by a millisecond', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE - 1, made: NOW - 1000 }));
    expect((await put()).results).toEqual([{ store: 'server1', ok: true, etag: 'etag-1' }]);
  });

  it('breaks an equal mtime by ETag as replication will: a larger ETag there overrules, a smaller one does not', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE, made: NOW - 1000, etag: '"ffffffffffffffffffffffffffffffff"' }));
    await expect(put()).rejects.toThrow(OverruledError);
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE, made: NOW - 1000, etag: '"00000000000000000000000000000000"' }));
    expect((await put()).results[0]!.ok).toBe(true);
  });

  it('lets the same content through: equal mtime and ETag is not newer', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE, made: NOW - 1000, etag: `"${md5(body)}"` }));
    expect((await put()).results[0]!.ok).toBe(true);
  });

  it('does not count a newer copy that is dead under a tombstone (made at or before the delete)', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW + 60_000, made: NOW - 1000 }));
    tombstoneAt(NOW - 1000);
    expect((await put()).results[0]!.ok).toBe(true);
  });

  it('counts a newer copy made one millisecond after the delete', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW + 60_000, made: NOW - 999 }));
    tombstoneAt(NOW - 1000);
    await expect(put()).rejects.toThrow(OverruledError);
  });

  it('counts a newer version written outside dfs: replication will stamp it and it wins by its mtime', async () => {
    s2.on(HeadObjectCommand).resolves({ ContentLength: 5, ETag: '"e"', LastModified: new Date(NOW), Metadata: { mtime: formatMtime(MINE + 1000) } });
    await expect(put()).rejects.toThrow(OverruledError);
  });

  it('goes through with touch, its mtime now, whatever the other copy says', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW - 1, made: NOW - 1000 }));
    const a = await put({ touch: true, mtime: String(MINE) });
    expect(a).toMatchObject({ mtime: new Date(NOW).toISOString(), results: [{ store: 'server1', ok: true }] });
    expect(s1.commandCalls(PutObjectCommand)[0]!.args[0].input.Metadata).toMatchObject({ mtime: formatMtime(NOW), 'dfs-made': String(NOW) });
  });

  it('makes a touched write the newest, one millisecond past a copy dated ahead of now', async () => {
    const ahead = NOW + 4 * 60_000;
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: ahead, made: NOW - 1000 }));
    const a = await put({ touch: true });
    expect(a).toMatchObject({ mtime: new Date(ahead + 1).toISOString(), results: [{ store: 'server1', ok: true, etag: 'etag-1' }] });
    expect(s1.commandCalls(PutObjectCommand)[0]!.args[0].input.Metadata).toMatchObject({ mtime: formatMtime(ahead + 1), 'dfs-made': String(NOW) });
  });

  it('touches to now when the newest copy elsewhere is exactly one millisecond before now', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW - 1, made: NOW - 1000 }));
    expect((await put({ touch: true })).mtime).toBe(new Date(NOW).toISOString());
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW, made: NOW - 1000 }));
    expect((await put({ touch: true })).mtime).toBe(new Date(NOW + 1).toISOString());
  });

  it('never touches more than 5 minutes ahead: an unstamped version elsewhere with a far-future mtime will lose it', async () => {
    // A direct write on server2 carries mtime NOW + 1 day; its event has not stamped it yet.
    // Adoption will drop that mtime (more than 5 minutes past when it was made) and date it by
    // made, yet touch dates this write NOW + 1 day + 1 ms: an mtime the API refuses from any
    // client (parseRequestMtime), stored for good.
    s2.on(HeadObjectCommand).resolves({ ContentLength: 5, ETag: '"e"', LastModified: new Date(NOW), Metadata: { mtime: formatMtime(NOW + 86_400_000) } });
    const a = await put({ touch: true });
    expect(Date.parse(a.mtime!)).toBeLessThanOrEqual(NOW + 5 * 60_000);
  });

  it('does not touch past a copy dated ahead that is dead under the tombstone', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW + 4 * 60_000, made: NOW - 1000 }));
    tombstoneAt(NOW - 1000);
    expect((await put({ touch: true })).mtime).toBe(new Date(NOW).toISOString());
  });

  it('writes when the tombstone cannot be read (control unavailable), taking every copy elsewhere as live', async () => {
    // The tombstone's read fails; the lock record's answers (there is none).
    controlMock.on(GetObjectCommand).callsFake(async (i: { Key?: string }) => {
      throw i.Key === tombstoneKey('a.txt') ? s3Error('ServiceUnavailable', 503) : s3Error('NoSuchKey', 404);
    });
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE - 1, made: NOW - 1000 }));
    expect((await put()).results).toEqual([{ store: 'server1', ok: true, etag: 'etag-1' }]);
    // A newer copy that the tombstone might have killed still counts: refused, or touched past it.
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW + 60_000, made: NOW - 1000 }));
    await expect(put()).rejects.toThrow(OverruledError);
    expect((await put({ touch: true })).mtime).toBe(new Date(NOW + 60_001).toISOString());
  });

  it('never checks with to=all: it asks no store anything before writing', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: NOW, made: NOW - 1000 }));
    const a = await put({ to: 'all' });
    expect(a.results.every((r) => r.ok)).toBe(true);
    for (const m of mocks) expect(m).not.toHaveReceivedCommand(HeadObjectCommand);
    // Not even the tombstone: only whether a store is locked for the key.
    expect(controlMock.calls()).toHaveLength(1);
    expect(controlGets()).toEqual([lockRecordKey('a.txt')]);
  });

  it('refuses the write, writing nothing, when the lock record cannot be read: a store may be locked', async () => {
    controlMock.on(GetObjectCommand).callsFake(async (i: { Key?: string }) => {
      throw i.Key === lockRecordKey('a.txt') ? s3Error('ServiceUnavailable', 503) : s3Error('NoSuchKey', 404);
    });
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE - 1, made: NOW - 1000 })); // older: no Overruled
    for (const to of ['all', 'server1']) {
      await expect(put({ to })).rejects.toThrow(StoreUnavailableError);
      wroteNothing();
    }
  });

  it('does not let a store that is down block the write', async () => {
    s2.on(HeadObjectCommand).rejects(s3Error('ServiceUnavailable', 503));
    expect((await put()).results[0]!.ok).toBe(true);
  });

  it('refuses startUpload to one store the same way, creating nothing', async () => {
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: MINE + 1, made: NOW - 1000 }));
    await expect(startUpload(makeDeps(stores), { key: 'a.txt', size: 10, mtime: MINE, to: 'server1' }, 'api', NOW)).rejects.toThrow(OverruledError);
    wroteNothing();
    const plan = await startUpload(makeDeps(stores), { key: 'a.txt', size: 10, mtime: MINE, to: 'server1', touch: true }, 'api', NOW);
    expect(plan).toMatchObject({ mtime: new Date(NOW).toISOString(), uploads: [{ store: 'server1', uploadId: 'up-1' }] });
  });
});

describe('choosePartSize', () => {
  it.each([
    ['0 B', 0, 8 * MiB],
    ['12 MiB', 12 * MiB, 8 * MiB],
    ['exactly 10,000 parts of 8 MiB', 8 * MiB * S3_LIMITS.maxParts, 8 * MiB],
    ['one byte more', 8 * MiB * S3_LIMITS.maxParts + 1, 9 * MiB],
    ['100 GiB', 100 * GiB, 11 * MiB],
    ['5 TiB', 5 * TiB, 525 * MiB],
  ])('picks 8 MiB parts at least, larger only to stay within 10,000 parts (%s)', (_, size, partSize) => {
    expect(choosePartSize(size)).toBe(partSize);
    expect(Math.ceil(size / partSize)).toBeLessThanOrEqual(S3_LIMITS.maxParts);
  });

  it('keeps a requested size that fits and refuses one that needs too many parts', () => {
    expect(choosePartSize(100 * MiB, 16 * MiB)).toBe(16 * MiB);
    expect(() => choosePartSize(100 * GiB, 5 * MiB)).toThrow(BadRequestError);
  });
});

describe('startUpload', () => {
  it('creates the upload on every store with the chosen part size, mtime and ContentType', async () => {
    const plan = await startUpload(makeDeps(stores), { key: 'big.bin', size: 12 * MiB, mtime: 1234 }, 'ann', NOW);
    expect(plan).toEqual({
      key: 'big.bin',
      size: 12 * MiB,
      mtime: new Date(1234).toISOString(),
      partSize: 8 * MiB,
      parts: 2,
      uploads: [
        { store: 'server1', uploadId: 'up-1' },
        { store: 'server2', uploadId: 'up-2' },
      ],
      failed: [],
    });
    expect(s1).toHaveReceivedCommandWith(CreateMultipartUploadCommand, { Bucket: 'bucket-1', Key: 'big.bin', ContentType: 'application/octet-stream' });
    const metadata = mocks.map((m) => m.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input.Metadata);
    // No dfs-made: the upload is made when it completes, and its completion's event stamps it.
    expect(metadata[0]).toEqual({ mtime: '1.234', 'dfs-id': expect.stringMatching(/^[0-9a-f]{24}$/), 'dfs-who': 'ann' });
    expect(metadata[1]).toEqual(metadata[0]);
  });

  it('grows the part size for a 100 GiB file and keeps a valid requested one', async () => {
    expect(await startUpload(makeDeps(stores), { key: 'k', size: 100 * GiB })).toMatchObject({ partSize: 11 * MiB, parts: 9310 });
    expect(await startUpload(makeDeps(stores), { key: 'k', size: 100 * MiB, partSize: 5 * MiB })).toMatchObject({ partSize: 5 * MiB, parts: 20 });
  });

  it('stamps now as mtime when none is given and starts only on the named store with to=STORE', async () => {
    const plan = await startUpload(makeDeps(stores), { key: 'k.txt', size: 1, to: 'server1' }, 'api', NOW);
    expect(plan).toMatchObject({ mtime: new Date(NOW).toISOString(), uploads: [{ store: 'server1' }], failed: [] });
    expect(s1).toHaveReceivedCommandWith(CreateMultipartUploadCommand, { ContentType: 'text/plain', Metadata: expect.objectContaining({ mtime: formatMtime(NOW) }) });
    expect(s2.calls().map((c) => c.args[0].constructor.name)).toEqual(['HeadObjectCommand', 'HeadBucketCommand']);
  });

  it.each([
    ['a part size under 5 MiB', { key: 'k', size: 10 * MiB, partSize: 5 * MiB - 1 }, /partSize/],
    ['a part size over 5 GiB', { key: 'k', size: 10 * MiB, partSize: 5 * GiB + 1 }, /partSize/],
    ['a part size that needs too many parts', { key: 'k', size: 100 * GiB, partSize: 5 * MiB }, /more than 10000 parts/],
    ['a size over 5 TiB', { key: 'k', size: 5 * TiB + 1 }, /size/],
    ['a negative size', { key: 'k', size: -1 }, /size/],
    ['a fractional size', { key: 'k', size: 1.5 }, /size/],
    ['a size given as a string', { key: 'k', size: '12' }, /size/],
    ['no key', { size: 1 }, /key/],
    ['a negative mtime', { key: 'k', size: 1, mtime: -5 }, /mtime/],
    ['null', null, /body/],
    ['a string', 'upload please', /body/],
    ['an array', [{ key: 'k', size: 1 }], /body/],
  ])('refuses %s with BadRequestError and creates nothing', async (_, body, message) => {
    const err = await startUpload(makeDeps(stores), body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toMatch(message);
    sentNothing();
  });

  it('refuses an invalid key and an unknown store before creating anything', async () => {
    await expect(startUpload(makeDeps(stores), { key: 'a/../b', size: 1 })).rejects.toThrow(InvalidKeyError);
    await expect(startUpload(makeDeps(stores), { key: 'k', size: 1, to: 'nosuch' })).rejects.toThrow(UnknownStoreError);
    sentNothing();
  });

  it('lists a store that fails CreateMultipartUpload in `failed` and goes on with the others', async () => {
    s2.on(CreateMultipartUploadCommand).rejects(s3Error('ServiceUnavailable', 503, 'Please reduce your request rate'));
    const plan = await startUpload(makeDeps(stores), { key: 'k', size: 10 * MiB });
    expect(plan.uploads).toEqual([{ store: 'server1', uploadId: 'up-1' }]);
    expect(plan.failed).toEqual([{ store: 'server2', ok: false, code: 'StoreFailed', error: 'the store failed (S3 answered 503)' }]);
  });
});

describe('signParts', () => {
  const savedEnv = { ...process.env };
  let signing: Store[];
  beforeAll(() => {
    // Presigning needs credentials; these never leave the process.
    process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    signing = stores.map((s) => ({ ...s, signer: createS3Client({ requestChecksumCalculation: 'WHEN_REQUIRED' }) }));
  });
  afterAll(() => {
    signing.forEach((s) => s.signer!.destroy());
    process.env = savedEnv;
  });

  const uploads = [
    { store: 'server1', uploadId: 'up-1' },
    { store: 'server2', uploadId: 'up-2' },
  ];

  it('signs one URL per part per store, for its bucket, key, upload id and part number', async () => {
    const { urls, expires } = await signParts(makeDeps(signing), { key: 'dir/big file.bin', uploads, parts: [1, 2, 7] });
    expect(Object.keys(urls)).toEqual(['server1', 'server2']);
    for (const [store, bucket, id] of [['server1', 'bucket-1', 'up-1'], ['server2', 'bucket-2', 'up-2']] as const) {
      expect(urls[store]).toHaveLength(3);
      urls[store]!.forEach((raw, i) => {
        const url = new URL(raw);
        expect(url.hostname).toBe(`${bucket}.s3.us-east-1.amazonaws.com`);
        expect(decodeURIComponent(url.pathname)).toBe('/dir/big file.bin');
        expect(url.searchParams.get('uploadId')).toBe(id);
        expect(url.searchParams.get('partNumber')).toBe(String([1, 2, 7][i]));
        expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
      });
    }
    expect(Date.parse(expires)).toBeGreaterThan(Date.now());
  });

  it('signs no flexible checksum into the URLs when the store has a WHEN_REQUIRED signer', async () => {
    const { urls } = await signParts(makeDeps(signing), { key: 'k', uploads, parts: [1, 2] });
    for (const url of Object.values(urls).flat()) {
      expect(url).not.toMatch(/x-amz-checksum/i);
      expect(url).not.toMatch(/x-amz-sdk-checksum-algorithm/i);
    }
  });

  it('would sign the CRC of an empty body with a default client (why stores carry a signer)', async () => {
    const plain = new S3Client({ region: 'us-east-1' });
    const { urls } = await signParts(makeDeps([{ ...stores[0]!, s3: plain }]), { key: 'k', uploads: [uploads[0]!], parts: [1] });
    plain.destroy();
    expect(urls.server1![0]).toMatch(/x-amz-checksum-crc32=AAAAAA%3D%3D/);
  });

  it.each([
    ['more than 1000 parts in one call', { key: 'k', uploads, parts: Array.from({ length: 1001 }, (_, i) => i + 1) }, BadRequestError],
    ['part number 0', { key: 'k', uploads, parts: [0] }, BadRequestError],
    ['part number 10,001', { key: 'k', uploads, parts: [10_001] }, BadRequestError],
    ['no uploads', { key: 'k', uploads: [], parts: [1] }, BadRequestError],
    ['an invalid key', { key: '../k', uploads, parts: [1] }, InvalidKeyError],
    ['an unknown store', { key: 'k', uploads: [{ store: 'nosuch', uploadId: 'u' }], parts: [1] }, UnknownStoreError],
    ['"all" as a store', { key: 'k', uploads: [{ store: 'all', uploadId: 'u' }], parts: [1] }, UnknownStoreError],
  ])('refuses %s', async (_, body, type) => {
    await expect(signParts(makeDeps(signing), body)).rejects.toThrow(type);
  });
});

describe('completeUpload', () => {
  beforeEach(() => {
    s1.on(CompleteMultipartUploadCommand).resolves({ ETag: '"m-3"' });
    s2.on(CompleteMultipartUploadCommand).resolves({ ETag: '"n-3"' });
  });
  const parts = [{ n: 3, etag: '"c"' }, { n: 1, etag: '"a"' }, { n: 2, etag: '"b"' }];

  it('completes each store with its own upload id and the parts sorted by number', async () => {
    const a = await completeUpload(makeDeps(stores), {
      key: 'big.bin',
      uploads: [{ store: 'server1', uploadId: 'up-1', parts }, { store: 'server2', uploadId: 'up-2', parts: [...parts].reverse() }],
    });
    expect(a).toEqual({ key: 'big.bin', results: [{ store: 'server1', ok: true, etag: 'm-3' }, { store: 'server2', ok: true, etag: 'n-3' }] });
    const sorted = [{ PartNumber: 1, ETag: '"a"' }, { PartNumber: 2, ETag: '"b"' }, { PartNumber: 3, ETag: '"c"' }];
    expect(s1).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, { Bucket: 'bucket-1', Key: 'big.bin', UploadId: 'up-1', MultipartUpload: { Parts: sorted } });
    expect(s2).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, { Bucket: 'bucket-2', UploadId: 'up-2', MultipartUpload: { Parts: sorted } });
  });

  it('reports a store whose completion fails, the other completed', async () => {
    s1.on(CompleteMultipartUploadCommand).rejects(s3Error('InternalError', 500));
    const a = await completeUpload(makeDeps(stores), {
      key: 'k', uploads: [{ store: 'server1', uploadId: 'up-1', parts }, { store: 'server2', uploadId: 'up-2', parts }],
    });
    expect(a.results).toEqual([{ store: 'server1', ok: false, code: 'StoreFailed', error: 'the store failed (S3 answered 500)' }, { store: 'server2', ok: true, etag: 'n-3' }]);
  });

  it('reports an upload id the store does not know (NoSuchUpload, 404) as that store failing', async () => {
    s2.on(CompleteMultipartUploadCommand).rejects(s3Error('NoSuchUpload', 404, 'The specified upload does not exist'));
    const a = await completeUpload(makeDeps(stores), {
      key: 'k', uploads: [{ store: 'server1', uploadId: 'up-1', parts }, { store: 'server2', uploadId: 'gone', parts }],
    });
    expect(a.results).toEqual([
      { store: 'server1', ok: true, etag: 'm-3' },
      { store: 'server2', ok: false, code: 'NoSuchUpload', error: 'no such upload: it was completed, aborted or never started' },
    ]);
  });

  it.each([
    ['no parts', { key: 'k', uploads: [{ store: 'server1', uploadId: 'up-1', parts: [] }] }, BadRequestError],
    ['a part without ETag', { key: 'k', uploads: [{ store: 'server1', uploadId: 'up-1', parts: [{ n: 1, etag: '' }] }] }, BadRequestError],
    ['an unknown store', { key: 'k', uploads: [{ store: 'nosuch', uploadId: 'u', parts }] }, UnknownStoreError],
    ['"all" as a store', { key: 'k', uploads: [{ store: 'all', uploadId: 'u', parts }] }, UnknownStoreError],
  ])('refuses %s and completes nothing', async (_, body, type) => {
    await expect(completeUpload(makeDeps(stores), body)).rejects.toThrow(type);
    sentNothing();
  });
});

describe('abortUpload', () => {
  it('aborts each store with its own upload id', async () => {
    const a = await abortUpload(makeDeps(stores), { key: 'k', uploads: [{ store: 'server1', uploadId: 'up-1' }, { store: 'server2', uploadId: 'up-2' }] });
    expect(a.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]);
    expect(s1).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { Bucket: 'bucket-1', Key: 'k', UploadId: 'up-1' });
    expect(s2).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { Bucket: 'bucket-2', Key: 'k', UploadId: 'up-2' });
  });

  it('reports an upload id one store does not know as that store failing, the other aborted', async () => {
    s2.on(AbortMultipartUploadCommand).rejects(s3Error('NoSuchUpload', 404, 'The specified upload does not exist'));
    const a = await abortUpload(makeDeps(stores), { key: 'k', uploads: [{ store: 'server1', uploadId: 'up-1' }, { store: 'server2', uploadId: 'up-2' }] });
    expect(a.results).toEqual([
      { store: 'server1', ok: true },
      { store: 'server2', ok: false, code: 'NoSuchUpload', error: 'no such upload: it was completed, aborted or never started' },
    ]);
  });

  it('answers 400 when no store knows the upload id (a forged or finished upload)', async () => {
    s1.on(AbortMultipartUploadCommand).rejects(s3Error('NoSuchUpload', 404, 'The specified upload does not exist'));
    const call = abortUpload(makeDeps(stores), { key: 'k', uploads: [{ store: 'server1', uploadId: 'forged' }] });
    await expect(call).rejects.toThrow(BadRequestError);
    await expect(call).rejects.toThrow('the upload cannot be aborted: no such upload: it was completed, aborted or never started');
  });

  it('refuses "all" as a store and aborts nothing', async () => {
    await expect(abortUpload(makeDeps(stores), { key: 'k', uploads: [{ store: 'all', uploadId: 'u' }] })).rejects.toThrow(UnknownStoreError);
    sentNothing();
  });
});

/** An HTTP API (payload 2.0) event as API Gateway sends it, signed with the write token `tester` unless told. */
function event(method: string, rawPath: string, opts: { query?: Record<string, string>; headers?: Record<string, string>; body?: string | Buffer; auth?: string } = {}) {
  const binary = Buffer.isBuffer(opts.body);
  return {
    rawPath,
    requestContext: { http: { method } },
    headers: { authorization: opts.auth ?? AUTH, ...opts.headers },
    queryStringParameters: opts.query,
    body: binary ? (opts.body as Buffer).toString('base64') : opts.body,
    isBase64Encoded: binary,
  } as unknown as APIGatewayProxyEventV2;
}

async function call(e: APIGatewayProxyEventV2) {
  const res = (await handler(e)) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(res.body as string) as Record<string, unknown> };
}

describe('handler: PUT /files and POST /uploads', () => {
  const body = Buffer.from('hello');

  // The control bucket holds the test tokens' records besides the tombstones (none).
  beforeEach(() => {
    forgetTokens();
    for (const [key, text] of Object.entries(testTokenRecords())) {
      controlMock.on(GetObjectCommand, { Bucket: 'control', Key: key }).callsFake(async () => ({ ETag: '"t"', Body: sdkStreamMixin(Readable.from([Buffer.from(text)])) }));
    }
  });

  it('answers 200 when every store took the write, passing the body, to and mtime on', async () => {
    const res = await call(event('PUT', '/files/dir/a%20b.txt', { body, query: { to: 'all' }, headers: { 'X-Dfs-Mtime': '1700000000000' } }));
    expect(res).toEqual({
      status: 200,
      body: { key: 'dir/a b.txt', size: 5, mtime: '2023-11-14T22:13:20.000Z', results: [{ store: 'server1', ok: true, etag: 'etag-1' }, { store: 'server2', ok: true, etag: 'etag-2' }] },
    });
    expect(s2).toHaveReceivedCommandWith(PutObjectCommand, { Key: 'dir/a b.txt', Body: body, ContentType: 'text/plain', Metadata: expect.objectContaining({ mtime: '1700000000' }) });
  });

  it('answers 409 Overruled naming the newer store and its mtime, and lets touch=1 through', async () => {
    const now = Date.now();
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: now + 60_000, made: now - 1000 }));
    const res = await call(event('PUT', '/files/a.txt', { body, query: { to: 'server1' }, headers: { 'x-dfs-mtime': String(now - 1000) } }));
    expect(res).toEqual({
      status: 409,
      body: { error: 'Overruled', message: expect.stringContaining('server2 holds a newer version'), newer: { store: 'server2', mtime: new Date(now + 60_000).toISOString() } },
    });
    expect(s1).not.toHaveReceivedCommand(PutObjectCommand);
    // touch: mtime = the server's now.
    s2.on(HeadObjectCommand).resolves(stampedHead({ mtime: now - 500, made: now - 1000 }));
    expect(await call(event('PUT', '/files/a.txt', { body, query: { to: 'server1', touch: '1' }, headers: { 'x-dfs-mtime': String(now - 1000) } }))).toMatchObject({ status: 200 });
  });

  it('records the token\'s name as who made the write, not an x-dfs-user header', async () => {
    await call(event('PUT', '/files/a.txt', { body, headers: { 'X-Dfs-User': 'zoe' } }));
    expect(s1.commandCalls(PutObjectCommand)[0]!.args[0].input.Metadata).toMatchObject({ 'dfs-who': 'tester' });
  });

  it('answers 403 Forbidden to a read token for PUT and POST /uploads, writing nothing', async () => {
    expect(await call(event('PUT', '/files/a.txt', { body, auth: READ_AUTH }))).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    expect(await call(event('POST', '/uploads', { body: JSON.stringify({ key: 'big.bin', size: 20 * MiB }), auth: READ_AUTH }))).toMatchObject({ status: 403 });
    sentNothing();
  });

  it.each([['yes'], ['TRUE'], ['on']])('answers 400 BadRequest for touch=%s, writing nothing: a flag is 1, true, 0 or false', async (touch) => {
    expect(await call(event('PUT', '/files/a.txt', { body, query: { touch } }))).toEqual({ status: 400, body: { error: 'BadRequest', message: 'touch takes 1, true, 0 or false' } });
    sentNothing();
  });

  it('answers 207 when some stores took it and 503 when none did', async () => {
    s2.on(PutObjectCommand).rejects(networkError());
    expect(await call(event('PUT', '/files/a.txt', { body }))).toMatchObject({
      status: 207, body: { results: [{ store: 'server1', ok: true }, { store: 'server2', ok: false }] },
    });
    s1.on(PutObjectCommand).rejects(s3Error('AccessDenied', 403));
    expect(await call(event('PUT', '/files/a.txt', { body }))).toMatchObject({
      status: 503, body: { results: [{ store: 'server1', ok: false }, { store: 'server2', ok: false }] },
    });
  });

  it('answers 413 over the inline limit, with the hint, writing nothing', async () => {
    mockDeps = makeDeps(stores, { putInlineLimit: 4 });
    const res = await call(event('PUT', '/files/a.txt', { body }));
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: 'PayloadTooLarge', message: expect.stringContaining('use POST /uploads') });
    sentNothing();
  });

  it('answers 400 UnknownStore for to=nosuch and 400 for a bad mtime header, writing nothing', async () => {
    expect(await call(event('PUT', '/files/a.txt', { body, query: { to: 'nosuch' } }))).toEqual({
      status: 400, body: { error: 'UnknownStore', message: 'unknown store "nosuch"; stores are: all, server1, server2' },
    });
    expect(await call(event('PUT', '/files/a.txt', { body, headers: { 'x-dfs-mtime': 'yesterday' } }))).toMatchObject({
      status: 400, body: { error: 'BadRequest' },
    });
    sentNothing();
  });

  it('answers 400 InvalidKey for a key with a ".." segment', async () => {
    expect(await call(event('PUT', '/files/a/../b.txt', { body }))).toMatchObject({ status: 400, body: { error: 'InvalidKey' } });
    sentNothing();
  });

  it('answers 200 with the plan for POST /uploads', async () => {
    const res = await call(event('POST', '/uploads', { body: JSON.stringify({ key: 'big.bin', size: 20 * MiB, mtime: 1 }) }));
    expect(res).toMatchObject({ status: 200, body: { key: 'big.bin', partSize: 8 * MiB, parts: 3, uploads: [{ store: 'server1' }, { store: 'server2' }] } });
  });

  it.each([
    ['not JSON', '{"key": "k", size: 1', /not valid JSON/],
    ['empty', '', /JSON body is required/],
    ['JSON of the wrong shape', '{"key":"k","size":"big"}', /size/],
    ['a part size under 5 MiB', JSON.stringify({ key: 'k', size: 10 * MiB, partSize: MiB }), /partSize/],
    // "\xff" is no UTF-8: not read as U+FFFD into the key.
    ['JSON with invalid UTF-8 in the key', Buffer.concat([Buffer.from('{"key":"a'), Buffer.from([0xff]), Buffer.from('.bin","size":1}')]), /not valid UTF-8/],
  ] as [string, string | Buffer, RegExp][])('answers 400 BadRequest to POST /uploads with a body that is %s, creating nothing', async (_, body, message) => {
    const res = await call(event('POST', '/uploads', { body }));
    expect(res).toEqual({ status: 400, body: { error: 'BadRequest', message: expect.stringMatching(message) } });
    sentNothing();
  });
});
