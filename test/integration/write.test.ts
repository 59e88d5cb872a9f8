import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHash, randomBytes } from 'node:crypto';
import { abortUpload, completeUpload, putFile, signParts, startUpload } from '../../lib/upload';
import { deleteFile } from '../../lib/delete';
import { readFile } from '../../lib/read';
import { readTombstone } from '../../lib/tombstones';
import { connectStores, headObject, type Store } from '../../lib/stores';
import { BadRequestError, InvalidKeyError, NotFoundError, PayloadTooLargeError, UnknownStoreError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import type { UploadPlan } from '../../lib/types';
import { handler } from '../../handlers/api';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { AUTH, READ_AUTH, putTestTokens } from '../helpers/apigw';
import { makeDeps } from '../helpers/deps';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const MiB = 1024 * 1024;
let s3: LocalS3;
let stores: Store[];
let deps: Deps;

beforeAll(async () => {
  s3 = await startS3rver(['server1', 'server2', 'control']);
  // The stores as the coordinator builds them: one client to read and write, one to presign.
  stores = connectStores({ stores: [{ name: 'server1', bucket: 'server1' }, { name: 'server2', bucket: 'server2' }], s3Endpoint: s3.endpoint, flavor: 's3rver' });
  deps = makeDeps(stores);
  mockDeps = deps;
  // The API reads its tokens from the control bucket.
  await putTestTokens((key, text) => s3.client.send(new PutObjectCommand({ Bucket: 'control', Key: key, Body: text })));
});
afterAll(async () => {
  stores?.[0]?.s3.destroy();
  stores?.[0]?.signer?.destroy();
  await s3?.stop();
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function getObject(bucket: string, key: string) {
  const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { bytes: Buffer.from(await res.Body!.transformToByteArray()), metadata: res.Metadata ?? {}, contentType: res.ContentType };
}

/** Every key with its ETag in each bucket: the state a refused request must leave alone. */
async function snapshot(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const bucket of ['server1', 'server2', 'control']) {
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
    out[bucket] = (page.Contents ?? []).map((o) => `${o.Key} ${o.ETag}`);
  }
  return out;
}

/** PUTs each part's bytes to its presigned URL, as the CLI does, and returns the parts for completion. */
async function uploadParts(plan: UploadPlan, body: Buffer, partNumbers: number[]) {
  const { urls } = await signParts(deps, { key: plan.key, uploads: plan.uploads, parts: partNumbers });
  return Promise.all(
    plan.uploads.map(async (u) => {
      const parts = await Promise.all(
        partNumbers.map(async (n, i) => {
          const res = await fetch(urls[u.store]![i]!, { method: 'PUT', body: body.subarray((n - 1) * plan.partSize, n * plan.partSize) });
          expect(res.status).toBe(200);
          return { n, etag: res.headers.get('etag')! };
        }),
      );
      return { ...u, parts };
    }),
  );
}

describe('putFile on s3rver', () => {
  it('writes to every store; the read then answers SINGLE with the logical mtime', async () => {
    const a = await putFile(deps, { key: 'docs/a.txt', body: Buffer.from('hello world'), to: 'all', mtime: '1700000000000' });
    expect(a.results).toEqual([
      { store: 'server1', ok: true, etag: createHash('md5').update('hello world').digest('hex') },
      { store: 'server2', ok: true, etag: createHash('md5').update('hello world').digest('hex') },
    ]);
    const read = await readFile(deps, 'docs/a.txt');
    expect(read).toMatchObject({
      status: 'SINGLE',
      copies: [{ store: 'server1', size: 11, mtime: '2023-11-14T22:13:20.000Z' }, { store: 'server2', size: 11 }],
      content: { base64: Buffer.from('hello world').toString('base64') },
      unavailable: [],
    });
    for (const bucket of ['server1', 'server2']) {
      expect(await getObject(bucket, 'docs/a.txt')).toMatchObject({ metadata: { mtime: '1700000000' }, contentType: 'text/plain' });
    }
  });

  it('writes only to server1 with to=server1', async () => {
    const a = await putFile(deps, { key: 'only-one.txt', body: Buffer.from('one'), to: 'server1' });
    expect(a.results.map((r) => [r.store, r.ok])).toEqual([['server1', true]]);
    expect(await headObject(stores[0]!, 'only-one.txt')).toMatchObject({ size: 3 });
    expect(await headObject(stores[1]!, 'only-one.txt')).toBeNull();
    expect(await readFile(deps, 'only-one.txt')).toMatchObject({ status: 'SINGLE', copies: [{ store: 'server1' }] });
  });

  it('overwrites with a newer version that the read then returns', async () => {
    await putFile(deps, { key: 'over.txt', body: Buffer.from('v1'), mtime: '1700000001000' });
    await putFile(deps, { key: 'over.txt', body: Buffer.from('version 2'), mtime: '1700000002000' });
    expect(await readFile(deps, 'over.txt')).toMatchObject({ status: 'SINGLE', copies: [{ size: 9, mtime: new Date(1700000002000).toISOString() }, { size: 9 }] });
  });
});

describe('presigned multipart upload on s3rver', () => {
  it('uploads 12 MiB in two parts to both stores through presigned URLs', async () => {
    const body = randomBytes(12 * MiB);
    const plan = await startUpload(deps, { key: 'big/12mib.bin', size: body.length, mtime: 1700000000000 });
    expect(plan).toMatchObject({ partSize: 8 * MiB, parts: 2, failed: [] });
    expect(plan.uploads.map((u) => u.store)).toEqual(['server1', 'server2']);

    const uploads = await uploadParts(plan, body, [1, 2]);
    // Completion sorts the parts, so the order they finished in does not matter.
    const done = await completeUpload(deps, { key: plan.key, uploads: uploads.map((u) => ({ ...u, parts: [...u.parts].reverse() })) });
    expect(done.results).toEqual([
      { store: 'server1', ok: true, etag: expect.any(String) },
      { store: 'server2', ok: true, etag: expect.any(String) },
    ]);

    for (const [i, bucket] of ['server1', 'server2'].entries()) {
      // S3 would say "<md5 of md5s>-2"; s3rver gives the whole body's MD5. Either way, what HEAD says.
      expect((await headObject(stores[i]!, 'big/12mib.bin'))!.etag.replace(/"/g, '')).toBe(done.results[i]!.etag);
      const got = await getObject(bucket, 'big/12mib.bin');
      expect(got.bytes.length).toBe(body.length);
      expect(sha256(got.bytes)).toBe(sha256(body));
      expect(got.metadata).toMatchObject({ mtime: '1700000000', 'dfs-who': 'api' });
      expect(got.metadata['dfs-made']).toBeUndefined(); // its completion's event stamps it
    }
    expect(await readFile(deps, 'big/12mib.bin', { meta: true })).toMatchObject({
      status: 'SINGLE', copies: [{ size: body.length, mtime: '2023-11-14T22:13:20.000Z' }, { size: body.length }],
    });
  });

  it('uploads a one-part file to the one store named by to', async () => {
    const body = Buffer.from('small but multipart');
    const plan = await startUpload(deps, { key: 'one-part.txt', size: body.length, to: 'server2' });
    expect(plan).toMatchObject({ parts: 1, uploads: [{ store: 'server2' }] });
    const done = await completeUpload(deps, { key: plan.key, uploads: await uploadParts(plan, body, [1]) });
    expect(done.results).toMatchObject([{ store: 'server2', ok: true }]);
    expect((await getObject('server2', 'one-part.txt')).bytes.toString()).toBe('small but multipart');
    expect(await headObject(stores[0]!, 'one-part.txt')).toBeNull();
  });

  it('leaves no object after abortUpload', async () => {
    const body = randomBytes(1024);
    const plan = await startUpload(deps, { key: 'aborted.bin', size: body.length });
    await uploadParts(plan, body, [1]);
    const aborted = await abortUpload(deps, { key: plan.key, uploads: plan.uploads });
    expect(aborted.results.map((r) => r.store)).toEqual(['server1', 'server2']);
    // S3 answers 204. s3rver 3.7 has no AbortMultipartUpload route and answers 405, which
    // the answer reports per store rather than hiding; the parts stay in its upload folder.
    for (const r of aborted.results) expect(r.ok).toBe(true); // s3rver has no abort: flavor s3rver takes its 405 as done
    for (const s of stores) expect(await headObject(s, 'aborted.bin')).toBeNull();
    const after = await snapshot();
    expect([...after.server1!, ...after.server2!].some((k) => k.startsWith('aborted.bin'))).toBe(false);
  });

  it('refuses an upload id no store knows as the request\'s fault (400), writing nothing', async () => {
    const before = await snapshot();
    const refused = completeUpload(deps, {
      key: 'never.bin',
      uploads: stores.map((s) => ({ store: s.name, uploadId: 'no-such-upload', parts: [{ n: 1, etag: '"x"' }] })),
    });
    await expect(refused).rejects.toThrow(BadRequestError);
    await expect(refused).rejects.toThrow('the upload cannot be completed: no such upload: it was completed, aborted or never started');
    for (const s of stores) expect(await headObject(s, 'never.bin')).toBeNull();
    expect(await snapshot()).toEqual(before);
  });

  it('reports an upload id one store does not know per store, the other completed', async () => {
    const body = Buffer.from('known to server1 only');
    const plan = await startUpload(deps, { key: 'half-known.txt', size: body.length, to: 'server1' });
    const [known] = await uploadParts(plan, body, [1]);
    const done = await completeUpload(deps, {
      key: plan.key,
      uploads: [known!, { store: 'server2', uploadId: 'no-such-upload', parts: known!.parts }],
    });
    expect(done.results).toEqual([
      { store: 'server1', ok: true, etag: expect.any(String) },
      { store: 'server2', ok: false, code: 'NoSuchUpload', error: 'no such upload: it was completed, aborted or never started' },
    ]);
    expect(await headObject(stores[1]!, 'half-known.txt')).toBeNull();
  });
});

describe('a store whose bucket is gone', () => {
  it('fails only that store: the file is written to the other and the answer says which', async () => {
    const gone = { ...stores[1]!, bucket: 'no-such-bucket' };
    const a = await putFile(makeDeps([stores[0]!, gone]), { key: 'half.txt', body: Buffer.from('half') });
    expect(a.results).toEqual([
      { store: 'server1', ok: true, etag: expect.any(String) },
      { store: 'server2', ok: false, code: 'NoSuchBucket', error: "the store's bucket does not exist" },
    ]);
    expect((await getObject('server1', 'half.txt')).bytes.toString()).toBe('half');
    expect(await headObject(stores[1]!, 'half.txt')).toBeNull();
  });
});

describe('deleteFile on s3rver', () => {
  it('removes the file from both stores and leaves a tombstone in the control bucket', async () => {
    await putFile(deps, { key: 'dir/gone.txt', body: Buffer.from('bye') });
    const before = Date.now();
    const a = await deleteFile(deps, 'dir/gone.txt', 'alice');
    expect(a.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]);
    for (const s of stores) expect(await headObject(s, 'dir/gone.txt')).toBeNull();
    expect(await readFile(deps, 'dir/gone.txt')).toMatchObject({ status: 'NOT_FOUND' });

    const raw = JSON.parse((await getObject('control', 'tombstones/dir/gone.txt')).bytes.toString());
    expect(raw).toEqual({ key: 'dir/gone.txt', deletedAt: expect.any(Number), who: 'alice', intents: [expect.objectContaining({ store: 'server1' }), expect.objectContaining({ store: 'server2' })] });
    expect(raw.deletedAt).toBeGreaterThanOrEqual(before);
    expect(await readTombstone(deps, 'dir/gone.txt')).toEqual(raw);
  });

  it('throws NotFoundError for a name no store holds and writes no tombstone', async () => {
    await expect(deleteFile(deps, 'never-was.txt', 'alice')).rejects.toThrow(NotFoundError);
    expect(await readTombstone(deps, 'never-was.txt')).toBeUndefined();
  });
});

describe('refused requests leave every bucket unchanged', () => {
  beforeAll(async () => {
    await putFile(deps, { key: 'keep.txt', body: Buffer.from('keep me') });
  });

  it.each<[string, () => Promise<unknown>, new (...args: never[]) => Error]>([
    ['putFile with a ".." key', () => putFile(deps, { key: 'a/../keep.txt', body: Buffer.from('x') }), InvalidKeyError],
    ['putFile with an empty segment', () => putFile(deps, { key: 'a//b', body: Buffer.from('x') }), InvalidKeyError],
    ['putFile with a folder key', () => putFile(deps, { key: 'dir/', body: Buffer.from('x') }), InvalidKeyError],
    ['putFile with a control character', () => putFile(deps, { key: 'a\u0007.txt', body: Buffer.from('x') }), InvalidKeyError],
    ['putFile to an unknown store', () => putFile(deps, { key: 'keep.txt', body: Buffer.from('x'), to: 'nosuch' }), UnknownStoreError],
    ['putFile with a bad mtime', () => putFile(deps, { key: 'keep.txt', body: Buffer.from('x'), mtime: 'soon' }), BadRequestError],
    ['putFile over the inline limit', () => putFile({ ...deps, putInlineLimit: 4 }, { key: 'keep.txt', body: Buffer.from('too big') }), PayloadTooLargeError],
    ['startUpload with a 1 MiB part size', () => startUpload(deps, { key: 'new.bin', size: 10 * MiB, partSize: MiB }), BadRequestError],
    ['startUpload with a 6 GiB part size', () => startUpload(deps, { key: 'new.bin', size: 10 * MiB, partSize: 6 * 1024 * MiB }), BadRequestError],
    ['startUpload to an unknown store', () => startUpload(deps, { key: 'new.bin', size: 1, to: 'nosuch' }), UnknownStoreError],
    ['startUpload with an invalid key', () => startUpload(deps, { key: '/new.bin', size: 1 }), InvalidKeyError],
    ['deleteFile with an invalid key', () => deleteFile(deps, 'keep.txt/', 'api'), InvalidKeyError],
    ['deleteFile of a missing name', () => deleteFile(deps, 'missing.txt', 'api'), NotFoundError],
  ])('%s', async (_, call, type) => {
    const before = await snapshot();
    await expect(call()).rejects.toThrow(type);
    expect(await snapshot()).toEqual(before);
    expect(before.server1).toContainEqual(expect.stringMatching(/^keep\.txt /));
  });
});

describe('handler on s3rver', () => {
  /** A request signed with the write token `tester` unless `auth` says otherwise. */
  const event = (method: string, rawPath: string, body?: Buffer, query?: Record<string, string>, auth = AUTH) =>
    ({
      rawPath,
      requestContext: { http: { method } },
      headers: { authorization: auth },
      queryStringParameters: query,
      ...(body ? { body: body.toString('base64'), isBase64Encoded: true } : { isBase64Encoded: false }),
    }) as unknown as APIGatewayProxyEventV2;
  const call = async (e: APIGatewayProxyEventV2) => {
    const res = (await handler(e)) as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body as string) };
  };

  it('PUTs a binary body, GETs it back SINGLE and DELETEs it, then GET is 404', async () => {
    const body = randomBytes(300);
    expect(await call(event('PUT', '/files/bin/r%C3%A4w.bin', body))).toMatchObject({ status: 200, body: { key: 'bin/räw.bin', size: 300 } });
    const got = await call(event('GET', '/files/bin/r%C3%A4w.bin'));
    expect(got).toMatchObject({ status: 200, body: { status: 'SINGLE' } });
    expect(Buffer.from(got.body.content.base64, 'base64').equals(body)).toBe(true);
    expect(await call(event('DELETE', '/files/bin/r%C3%A4w.bin'))).toMatchObject({ status: 200 });
    expect(await call(event('GET', '/files/bin/r%C3%A4w.bin'))).toMatchObject({ status: 404, body: { status: 'NOT_FOUND' } });
    expect(await call(event('DELETE', '/files/bin/r%C3%A4w.bin'))).toMatchObject({ status: 404, body: { error: 'NotFound' } });
  });

  it('stamps a write with the token\'s name as who', async () => {
    expect(await call(event('PUT', '/files/who.txt', Buffer.from('w')))).toMatchObject({ status: 200 });
    for (const bucket of ['server1', 'server2']) expect((await getObject(bucket, 'who.txt')).metadata).toMatchObject({ 'dfs-who': 'tester' });
  });

  it('answers 401 without a token and 403 to a read token, writing nothing', async () => {
    const before = await snapshot();
    expect(await call(event('PUT', '/files/x.txt', Buffer.from('x'), undefined, ''))).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
    expect(await call(event('PUT', '/files/x.txt', Buffer.from('x'), undefined, READ_AUTH))).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    expect(await call(event('DELETE', '/files/keep.txt', undefined, undefined, READ_AUTH))).toMatchObject({ status: 403 });
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 UnknownStore for to=nosuch and writes nothing', async () => {
    const before = await snapshot();
    expect(await call(event('PUT', '/files/x.txt', Buffer.from('x'), { to: 'nosuch' }))).toMatchObject({ status: 400, body: { error: 'UnknownStore' } });
    expect(await snapshot()).toEqual(before);
  });
});
