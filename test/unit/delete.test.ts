import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { deleteFile } from '../../lib/delete';
import { acquireLock } from '../../lib/locks';
import { AllStoresUnavailableError, InvalidKeyError, NotFoundError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { tombstoneKey, type Tombstone } from '../../lib/tombstones';
import { handler } from '../../handlers/api';
import { makeDeps } from '../helpers/deps';
import { testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';
import { forgetTokens } from '../../lib/tokens';
import { AUTH, putTestTokens } from '../helpers/apigw';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const stores: Store[] = [1, 2].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
const deps = () => makeDeps(stores, { control: { bucket: 'control', s3: client }, flavor: 'aws' });

beforeEach(() => {
  mockDeps = deps();
});

/** Copies of one write made a minute before NOW, on the given buckets. */
const holdOn = (key: string, ...buckets: string[]) => buckets.map((b) => fake.stamped(b, key, 'bytes', { mtime: NOW - 60_000, id: 'w1' }));
const tombstone = (key: string) => fake.records<Tombstone>(tombstoneKey(key))[0];
const storeWrites = () => fake.writes.filter((w) => !w.includes(' control/'));
const nothingWritten = () => {
  expect(s3mock).not.toHaveReceivedCommand(PutObjectCommand);
  expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
  expect(fake.writes).toEqual([]);
};

describe('deleteFile', () => {
  it('writes the tombstone while every copy still exists, then removes every copy, each after its intent', async () => {
    const [c1, c2] = holdOn('dir/a.txt', 'bucket-1', 'bucket-2');
    const copiesAtFirstTombstone: number[] = [];
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'PutObject' && i.Key === 'tombstones/dir/a.txt' && copiesAtFirstTombstone.length === 0) {
        copiesAtFirstTombstone.push(['bucket-1', 'bucket-2'].filter((b) => fake.has(b, 'dir/a.txt')).length);
      }
    });
    const a = await deleteFile(deps(), 'dir/a.txt', 'alice', NOW);
    expect(a).toEqual({
      key: 'dir/a.txt',
      mtime: new Date(NOW).toISOString(),
      results: [{ store: 'server1', ok: true }, { store: 'server2', ok: true }],
    });
    expect(copiesAtFirstTombstone).toEqual([2]);
    const writes = fake.writes.filter((w) => !w.includes('journal/'));
    expect(writes.slice(0, 2)).toEqual(['PutObject control/tombstones/dir/a.txt', 'PutObject control/tombstones/dir/a.txt']);
    expect(writes.slice(2, 4).sort()).toEqual(['DeleteObject bucket-1/dir/a.txt', 'DeleteObject bucket-2/dir/a.txt']);
    expect(writes.slice(4)).toEqual(['PutObject control/tombstones/dir/a.txt']); // each intent closed: its call is over
    expect(fake.has('bucket-1', 'dir/a.txt') || fake.has('bucket-2', 'dir/a.txt')).toBeUndefined();
    expect(tombstone('dir/a.txt')).toEqual({
      key: 'dir/a.txt', deletedAt: NOW, who: 'alice',
      intents: [
        { id: expect.any(String), store: 'server1', etag: c1!.etag, at: expect.any(Number), until: expect.any(Number) },
        { id: expect.any(String), store: 'server2', etag: c2!.etag, at: expect.any(Number), until: expect.any(Number) },
      ],
    });
    expect(s3mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'control', Key: 'tombstones/dir/a.txt', ContentType: 'application/json' });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: 'bucket-1', Key: 'dir/a.txt', IfMatch: c1!.etag });
  });

  it('deletes only from the stores that hold the key', async () => {
    holdOn('c.txt', 'bucket-2');
    const a = await deleteFile(deps(), 'c.txt', 'api', NOW);
    expect(a.results).toEqual([{ store: 'server2', ok: true }]);
    expect(storeWrites()).toEqual(['DeleteObject bucket-2/c.txt']);
  });

  it.each([
    ['a network error', networkError],
    ['a 503', () => s3Error('ServiceUnavailable', 503)],
    ['AccessDenied', () => s3Error('AccessDenied', 403)],
  ])('reports a store that is down (%s) as unavailable and deletes from the others', async (_, error) => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    fake.fail('bucket-2', error, { command: 'HeadObject' });
    const a = await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(a.results).toEqual([
      { store: 'server1', ok: true },
      { store: 'server2', ok: false, error: 'unavailable: the store did not answer; reconcile deletes it later' },
    ]);
    expect(storeWrites()).toEqual(['DeleteObject bucket-1/a.txt']);
    // server2 keeps its copy until reconcile, which the tombstone tells to delete it.
    expect(fake.has('bucket-2', 'a.txt')).toBeDefined();
    expect(tombstone('a.txt')).toMatchObject({ key: 'a.txt', deletedAt: NOW, who: 'api' });
  });

  it('reports a holder whose DeleteObject fails, the other deleted', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    fake.fail('bucket-1', () => s3Error('InternalError', 500), { command: 'DeleteObject' });
    const a = await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(a.results).toEqual([
      { store: 'server1', ok: false, error: 'failed: the delete did not go through; replication and reconcile retry it' },
      { store: 'server2', ok: true },
    ]);
    expect(fake.has('bucket-1', 'a.txt')).toBeDefined();
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('writes the tombstone when the answering stores lack the key but another is down', async () => {
    holdOn('b.txt', 'bucket-2');
    fake.fail('bucket-2', networkError, { command: 'HeadObject' });
    const a = await deleteFile(deps(), 'b.txt', 'api', NOW);
    expect(a.results).toEqual([{ store: 'server2', ok: false, error: expect.stringMatching(/^unavailable/) }]);
    expect(tombstone('b.txt')).toEqual({ key: 'b.txt', deletedAt: NOW, who: 'api', intents: [] });
  });

  it('keeps a copy made after the delete, and puts it in place of the copy made before', async () => {
    fake.stamped('bucket-1', 'a.txt', 'old', { mtime: NOW - 60_000, made: NOW - 60_000 });
    fake.stamped('bucket-2', 'a.txt', 'new', { mtime: NOW - 86_400_000, made: NOW + 1 });
    const a = await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(a.results).toEqual([
      { store: 'server1', ok: true },
      { store: 'server2', ok: false, error: 'kept: it holds a write made after this delete' },
    ]);
    expect([fake.textOf('bucket-1', 'a.txt'), fake.textOf('bucket-2', 'a.txt')]).toEqual(['new', 'new']);
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
  });

  it('deletes a copy written outside dfs that its HEAD saw: it was made before the delete', async () => {
    holdOn('a.txt', 'bucket-1');
    const raw = fake.direct('bucket-2', 'a.txt', 'raw');
    const a = await deleteFile(deps(), 'a.txt', 'api');
    expect(a.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
    expect(tombstone('a.txt')!.intents).toEqual(expect.arrayContaining([expect.objectContaining({ store: 'server2', etag: raw.etag })]));
  });

  it('leaves a version written outside dfs after its HEAD to its own event, saying so', async () => {
    holdOn('a.txt', 'bucket-1');
    fake.direct('bucket-2', 'a.txt', 'raw');
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'DeleteObject' && i.Bucket === 'bucket-2' && fake.textOf('bucket-2', 'a.txt') === 'raw') fake.direct('bucket-2', 'a.txt', 'raw again');
    });
    const a = await deleteFile(deps(), 'a.txt', 'api');
    expect(a.results).toEqual([
      { store: 'server1', ok: true },
      { store: 'server2', ok: false, error: 'written outside dfs moments ago; its own event decides whether it was made after this delete' },
    ]);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('raw again');
  });

  it('dates the delete after its HEADs when no time is given', async () => {
    holdOn('a.txt', 'bucket-1');
    const before = Date.now();
    const a = await deleteFile(deps(), 'a.txt', 'api');
    expect(tombstone('a.txt')!.deletedAt).toBeGreaterThanOrEqual(before);
    expect(a.mtime).toBe(new Date(tombstone('a.txt')!.deletedAt).toISOString());
  });

  it('looks again when a copy is replaced under its delete, and keeps the replacement made after the delete', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'DeleteObject' && i.Bucket === 'bucket-2' && fake.textOf('bucket-2', 'a.txt') === 'bytes') {
        fake.stamped('bucket-2', 'a.txt', 'newer', { mtime: NOW + 5, made: NOW + 5 });
      }
    });
    const a = await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(a.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: false, error: 'kept: it holds a write made after this delete' }]);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('newer');
  });

  it('answers ok for a copy someone else deleted meanwhile', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'DeleteObject' && i.Bucket === 'bucket-2') fake.delete('bucket-2', 'a.txt');
    });
    const a = await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(a.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]);
  });

  it('keeps a later delete already in the tombstone (the latest delete wins)', async () => {
    holdOn('a.txt', 'bucket-1');
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: NOW + 10, who: 'carol', intents: [] }));
    await deleteFile(deps(), 'a.txt', 'api', NOW);
    expect(tombstone('a.txt')).toMatchObject({ deletedAt: NOW + 10, who: 'carol' });
  });

  it("holds the delete in the queue of a store someone else has locked, and answers its number", async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    await acquireLock(deps(), 'a.txt', 'server2', { name: 'bob', scope: 'write' }, {}, Date.now());
    const a = await deleteFile(deps(), 'a.txt', 'alice', NOW);
    expect(a.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true, held: 1 }]);
    expect([fake.has('bucket-1', 'a.txt'), fake.has('bucket-2', 'a.txt')].map(Boolean)).toEqual([false, true]);
  });

  it('deletes straight from a store its caller has locked', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    await acquireLock(deps(), 'a.txt', 'server2', { name: 'alice', scope: 'write' }, {}, Date.now());
    const a = await deleteFile(deps(), 'a.txt', 'alice', NOW);
    expect(a.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('does not fill a store that lacks a copy made after the delete: that write\'s own event does', async () => {
    fake.stamped('bucket-1', 'a.txt', 'later', { mtime: NOW - 60_000, made: NOW + 5, id: 'w2' });
    const a = await deleteFile(deps(), 'a.txt', 'alice', NOW);
    expect(a.results).toEqual([{ store: 'server1', ok: false, error: 'kept: it holds a write made after this delete' }]);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('throws NotFoundError and writes no tombstone when no store holds the key', async () => {
    await expect(deleteFile(deps(), 'nosuch.txt', 'api', NOW)).rejects.toThrow(NotFoundError);
    nothingWritten();
  });

  it('throws AllStoresUnavailableError naming every store when none answers, writing nothing', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    fake.fail('bucket-1', networkError);
    fake.fail('bucket-2', networkError);
    const err = await deleteFile(deps(), 'a.txt', 'api', NOW).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllStoresUnavailableError);
    expect((err as AllStoresUnavailableError).unavailable).toEqual(['server1', 'server2']);
    nothingWritten();
  });

  it.each(['', 'a//b', '../a', 'dir/'])('refuses the key %j before asking any store', async (key) => {
    await expect(deleteFile(deps(), key, 'api', NOW)).rejects.toThrow(InvalidKeyError);
    expect(s3mock.calls()).toHaveLength(0);
  });
});

/** An API Gateway event signed with the write token `tester`. */
const event = (method: string, rawPath: string, headers: Record<string, string> = {}) =>
  ({ rawPath, requestContext: { http: { method } }, headers: { authorization: AUTH, ...headers }, isBase64Encoded: false }) as unknown as APIGatewayProxyEventV2;

async function call(e: APIGatewayProxyEventV2) {
  const res = (await handler(e)) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(res.body as string) as Record<string, unknown> };
}

describe('handler: DELETE /files/{key}', () => {
  beforeEach(async () => {
    forgetTokens();
    await putTestTokens((key, text) => fake.put('control', key, text));
  });

  it('answers 200 with the per-store results, the tombstone naming the token, not an x-dfs-user header', async () => {
    // Made before the handler's clock reads now: an API write a minute ago.
    ['bucket-1', 'bucket-2'].forEach((b) => fake.stamped(b, 'a b.txt', 'x', { mtime: Date.now() - 60_000, id: 'w' }));
    const res = await call(event('DELETE', '/files/a%20b.txt', { 'X-Dfs-User': 'bob' }));
    expect(res).toEqual({ status: 200, body: { key: 'a b.txt', mtime: expect.any(String), results: [{ store: 'server1', ok: true }, { store: 'server2', ok: true }] } });
    expect(tombstone('a b.txt')).toMatchObject({ key: 'a b.txt', who: 'tester' });
  });

  it('answers 401 without a token, deleting nothing and writing no tombstone', async () => {
    holdOn('a.txt', 'bucket-1', 'bucket-2');
    const res = await call({ ...event('DELETE', '/files/a.txt'), headers: {} });
    expect(res).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
    nothingWritten();
    expect(tombstone('a.txt')).toBeUndefined();
  });

  it('answers 207 when a store is down', async () => {
    ['bucket-1', 'bucket-2'].forEach((b) => fake.stamped(b, 'a.txt', 'x', { mtime: Date.now() - 60_000, id: 'w' }));
    fake.fail('bucket-1', networkError, { command: 'HeadObject' });
    expect(await call(event('DELETE', '/files/a.txt'))).toMatchObject({ status: 207, body: { results: [{ store: 'server1', ok: false }, { store: 'server2', ok: true }] } });
  });

  it('answers 404 NotFound for a key no store holds, writing nothing', async () => {
    expect(await call(event('DELETE', '/files/nosuch.txt'))).toEqual({ status: 404, body: { error: 'NotFound', message: 'no store holds "nosuch.txt"' } });
    nothingWritten();
  });

  it('answers 503 with the unavailable stores when none answers', async () => {
    fake.fail('bucket-1', networkError);
    fake.fail('bucket-2', networkError);
    expect(await call(event('DELETE', '/files/a.txt'))).toMatchObject({ status: 503, body: { error: 'Unavailable', unavailable: ['server1', 'server2'] } });
    expect(s3mock).not.toHaveReceivedCommand(PutObjectCommand);
  });
});
