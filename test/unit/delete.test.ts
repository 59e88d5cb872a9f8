import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, type HeadObjectCommandInput } from '@aws-sdk/client-s3';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { deleteFile } from '../../lib/delete';
import { AllStoresUnavailableError, InvalidKeyError, NotFoundError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import { handler } from '../../handlers/api';
import { makeDeps } from '../helpers/deps';
import { makeStores, networkError, s3Error } from '../helpers/mock-s3';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const stores = makeStores(2);
const control = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
const storeMocks = stores.map((s) => mockClient(s.s3));
const controlMock = mockClient(control);

/** What each bucket holds, and every write in the order it happened across all clients. */
let buckets: Map<string, Map<string, string>>;
let log: string[];

/** Each store answers HEAD and DELETE from `buckets`; the control bucket records tombstones. */
function serve(mock: AwsClientStub<S3Client>) {
  mock.on(HeadObjectCommand).callsFake(async (input: HeadObjectCommandInput) => {
    const body = buckets.get(input.Bucket!)?.get(input.Key!);
    if (body === undefined) throw s3Error('NotFound', 404, 'Not Found');
    return { ContentLength: body.length, ETag: '"e"', LastModified: new Date(NOW - 1000) };
  });
  mock.on(DeleteObjectCommand).callsFake(async (input: { Bucket: string; Key: string }) => {
    log.push(`delete ${input.Bucket}`);
    buckets.get(input.Bucket)?.delete(input.Key);
    return {};
  });
}

beforeEach(() => {
  buckets = new Map([['bucket-1', new Map()], ['bucket-2', new Map()], ['control', new Map()]]);
  log = [];
  [...storeMocks, controlMock].forEach((m) => m.reset());
  storeMocks.forEach(serve);
  controlMock.on(PutObjectCommand).callsFake(async (input: { Bucket: string; Key: string; Body: string }) => {
    // A tombstone must land while every copy still exists: a crash after it leaves a delete to finish.
    const key = input.Key.slice('tombstones/'.length);
    log.push(`tombstone (copies left: ${[...buckets.values()].filter((b) => b.has(key)).length})`);
    buckets.get(input.Bucket)!.set(input.Key, input.Body);
    return {};
  });
  mockDeps = deps();
});

const deps = () => makeDeps(stores, { control: { bucket: 'control', s3: control } });
const holdOn = (key: string, ...bucketNames: string[]) => bucketNames.forEach((b) => buckets.get(b)!.set(key, 'bytes'));
const tombstone = (key: string) => {
  const raw = buckets.get('control')!.get(`tombstones/${key}`);
  return raw === undefined ? undefined : JSON.parse(raw);
};
const nothingWritten = () => {
  expect(controlMock).not.toHaveReceivedCommand(PutObjectCommand);
  storeMocks.forEach((m) => expect(m).not.toHaveReceivedCommand(DeleteObjectCommand));
  expect(log).toEqual([]);
};

describe('deleteFile', () => {
  it('writes the tombstone before any DeleteObject, then removes every copy', async () => {
    holdOn('dir/a.txt', 'bucket-1', 'bucket-2');
    const a = await deleteFile(deps(), 'dir/a.txt', 'alice', NOW);
    expect(a).toEqual({
      key: 'dir/a.txt',
      mtime: new Date(NOW).toISOString(),
      results: [{ store: 'server1', ok: true }, { store: 'server2', ok: true }],
    });
    expect(log[0]).toBe('tombstone (copies left: 2)');
    expect(log.slice(1).sort()).toEqual(['delete bucket-1', 'delete bucket-2']);
    expect(buckets.get('bucket-1')!.has('dir/a.txt') || buckets.get('bucket-2')!.has('dir/a.txt')).toBe(false);
    expect(tombstone('dir/a.txt')).toEqual({ key: 'dir/a.txt', time: NOW, who: 'alice' });
    expect(controlMock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'control', Key: 'tombstones/dir/a.txt', ContentType: 'application/json' });
  });

  it('deletes only from the stores that hold the key', async () => {
    holdOn('c.txt', 'bucket-2');
    const a = await deleteFile(deps(), 'c.txt', 'api', NOW);
    expect(a.results).toEqual([{ store: 'server2', ok: true }]);
    expect(log).toEqual(['tombstone (copies left: 1)', 'delete bucket-2']);
    expect(storeMocks[0]).not.toHaveReceivedCommand(DeleteObjectCommand);
  });

  it.each([
    ['a network error', networkError],
    ['a 503', () => s3Error('ServiceUnavailable', 503)],
    ['AccessDenied', () => s3Error('AccessDenied', 403)],
  ])('reports a store that is down (%s) as unavailable and deletes from the others', async (_, error) => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    storeMocks[1]!.on(HeadObjectCommand).rejects(error());
    const a = await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(a.results).toEqual([
      { store: 'server1', ok: true },
      { store: 'server2', ok: false, error: expect.stringMatching(/^unavailable/) },
    ]);
    expect(log).toEqual(['tombstone (copies left: 2)', 'delete bucket-1']);
    expect(buckets.get('bucket-1')!.has('a.txt')).toBe(false);
    // server2 keeps its copy until reconcile, which the tombstone tells to delete it.
    expect(buckets.get('bucket-2')!.has('a.txt')).toBe(true);
    expect(tombstone('a.txt')).toEqual({ key: 'a.txt', time: NOW, who: 'api' });
  });

  it('reports a holder whose DeleteObject fails, the other deleted', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    storeMocks[0]!.on(DeleteObjectCommand).rejects(s3Error('InternalError', 500));
    const a = await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(a.results).toEqual([
      { store: 'server1', ok: false, error: 'InternalError: InternalError' },
      { store: 'server2', ok: true },
    ]);
    expect(buckets.get('bucket-1')!.has('a.txt')).toBe(true);
    expect(buckets.get('bucket-2')!.has('a.txt')).toBe(false);
  });

  it('writes the tombstone when the answering stores lack the key but another is down', async () => {
    holdOn('b.txt', 'bucket-2');
    storeMocks[1]!.on(HeadObjectCommand).rejects(networkError());
    const a = await deleteFile(deps(), 'b.txt', 'api', NOW);
    expect(a.results).toEqual([{ store: 'server2', ok: false, error: expect.stringMatching(/^unavailable/) }]);
    expect(tombstone('b.txt')).toEqual({ key: 'b.txt', time: NOW, who: 'api' });
  });

  it('throws NotFoundError and writes no tombstone when no store holds the key', async () => {
    await expect(deleteFile(deps(), 'nosuch.txt', 'api', NOW)).rejects.toThrow(NotFoundError);
    nothingWritten();
  });

  it('throws AllStoresUnavailableError naming every store when none answers, writing nothing', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    storeMocks.forEach((m) => m.on(HeadObjectCommand).rejects(networkError()));
    const err = await deleteFile(deps(), 'a.txt', 'api', NOW).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllStoresUnavailableError);
    expect((err as AllStoresUnavailableError).unavailable).toEqual(['server1', 'server2']);
    nothingWritten();
  });

  it.each(['', 'a//b', '../a', 'dir/'])('refuses the key %j before asking any store', async (key) => {
    await expect(deleteFile(deps(), key, 'api', NOW)).rejects.toThrow(InvalidKeyError);
    storeMocks.forEach((m) => expect(m.calls()).toHaveLength(0));
    nothingWritten();
  });
});

const event = (method: string, rawPath: string, headers: Record<string, string> = {}) =>
  ({ rawPath, requestContext: { http: { method } }, headers, isBase64Encoded: false }) as unknown as APIGatewayProxyEventV2;

async function call(e: APIGatewayProxyEventV2) {
  const res = (await handler(e)) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(res.body as string) as Record<string, unknown> };
}

describe('handler: DELETE /files/{key}', () => {
  it('answers 200 with the per-store results, the tombstone naming x-dfs-user', async () => {
    holdOn('a b.txt', 'bucket-1', 'bucket-2');
    const res = await call(event('DELETE', '/files/a%20b.txt', { 'X-Dfs-User': 'bob' }));
    expect(res).toEqual({ status: 200, body: { key: 'a b.txt', mtime: expect.any(String), results: [{ store: 'server1', ok: true }, { store: 'server2', ok: true }] } });
    expect(tombstone('a b.txt')).toMatchObject({ key: 'a b.txt', who: 'bob' });
  });

  it('answers 207 when a store is down', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    storeMocks[0]!.on(HeadObjectCommand).rejects(networkError());
    expect(await call(event('DELETE', '/files/a.txt'))).toMatchObject({ status: 207, body: { results: [{ store: 'server2', ok: true }, { store: 'server1', ok: false }] } });
  });

  it('answers 404 NotFound for a key no store holds, writing nothing', async () => {
    expect(await call(event('DELETE', '/files/nosuch.txt'))).toEqual({ status: 404, body: { error: 'NotFound', message: 'no store holds "nosuch.txt"' } });
    nothingWritten();
  });

  it('answers 503 with the unavailable stores when none answers', async () => {
    storeMocks.forEach((m) => m.on(HeadObjectCommand).rejects(networkError()));
    expect(await call(event('DELETE', '/files/a.txt'))).toMatchObject({ status: 503, body: { error: 'Unavailable', unavailable: ['server1', 'server2'] } });
  });
});
