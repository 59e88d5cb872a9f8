/**
 * A store whose bucket is gone is unavailable, never "missing" (DESIGN.md, Read semantics: "A store
 * that cannot be reached is not 'missing'"), on every path: reads with and without `?meta=1`, the
 * listing, deletes, reconcile, and the real `dfs` binary talking to the real API handler.
 *
 * Two ways of losing a bucket on a real s3rver: its folder removed from s3rver's data directory
 * (the files went with it), and a DeleteBucket once emptied (`aws s3 rb --force`). Either way
 * S3 answers GET, PUT, DELETE and ListObjectsV2 with 404 NoSuchBucket, and HEAD with a bare 404
 * (a HEAD has no error body, so the SDK calls it `NotFound`, as for a missing key).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { readFile } from '../../lib/read';
import { listFiles } from '../../lib/listing';
import { deleteFile } from '../../lib/delete';
import { reconcile } from '../../lib/sync';
import { connectStores, type Store } from '../../lib/stores';
import { AllStoresUnavailableError, ConflictError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import { handler } from '../../handlers/api';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { TEST_TOKEN, apiEvent, putTestTokens } from '../helpers/apigw';
import { runDfs, useCliSandbox } from '../helpers/cli';
import { serveLambda } from '../helpers/lambda-api';
import { useTempDirs } from '../helpers/temp';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

// Each CLI test runs the binary a few times; its first run bundles it.
jest.setTimeout(30_000);

/** The seed's mtime, in x-amz-meta-mtime (rclone's seconds) and as the API shows it. */
const MTIME = { meta: '1700000000', iso: '2023-11-14T22:13:20.000Z' };
const FILE_A = 'This is the original version of file A.';
const FILE_D = 'Another file held by every store.';
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const base64 = (s: string) => Buffer.from(s).toString('base64');
const onlyOn = (store: string) => `This file only exists on ${store}.`;

interface Stack {
  s3: LocalS3;
  stores: Store[];
  deps: Deps;
}

/** A fresh s3rver per test with `names` as stores (plus the control bucket); the API handler uses its deps. */
function useStack(names: string[]): () => Stack {
  let stack: Stack | undefined;
  beforeEach(async () => {
    const s3 = await startS3rver([...names, 'control']);
    // The API reads its tokens from the control bucket.
    await putTestTokens((key, text) => s3.client.send(new PutObjectCommand({ Bucket: 'control', Key: key, Body: text })));
    const stores = connectStores({ stores: names.map((name) => ({ name, bucket: name })), s3Endpoint: s3.endpoint, flavor: 's3rver' });
    const deps = makeDeps(stores);
    stack = { s3, stores, deps };
    mockDeps = deps;
  });
  afterEach(async () => {
    stack?.stores[0]?.s3.destroy();
    stack?.stores[0]?.signer?.destroy();
    await stack?.s3.stop();
    stack = undefined;
  });
  return () => {
    if (!stack) throw new Error('the stack starts in beforeEach');
    return stack;
  };
}

async function put(s3: LocalS3, bucket: string, key: string, body: string, mtime = MTIME.meta) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime } }));
}

/** fileA.txt and fileD.txt, identical on every store, and only-STORE.txt on each store. */
async function seed(s3: LocalS3, names: string[]) {
  for (const name of names) {
    await put(s3, name, 'fileA.txt', FILE_A);
    await put(s3, name, 'fileD.txt', FILE_D);
    await put(s3, name, `only-${name}.txt`, onlyOn(name));
  }
}

interface Way {
  how: string;
  lose(s3: LocalS3, bucket: string): Promise<void>;
}

const WAYS: Way[] = [
  {
    how: 'folder removed from the s3rver data directory',
    lose: async (s3, bucket) => rmSync(join(s3.directory, bucket), { recursive: true }),
  },
  {
    how: 'deleted with DeleteBucket once emptied',
    lose: async (s3, bucket) => {
      const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const o of page.Contents ?? []) await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
      await s3.client.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
  },
];

/** Every object of `bucket` with its ETag, LastModified and metadata: what must not change. */
async function snapshot(s3: LocalS3, bucket: string): Promise<string[]> {
  const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return Promise.all(
    (page.Contents ?? []).map(async (o) => {
      const h = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key! }));
      return `${o.Key} ${h.ETag} ${h.LastModified?.toISOString()} ${JSON.stringify(h.Metadata ?? {})}`;
    }),
  );
}

async function text(s3: LocalS3, bucket: string, key: string): Promise<string> {
  const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body!.transformToString();
}

/** The bucket is still gone: nothing re-created it by writing into it. */
async function expectGone(s3: LocalS3, bucket: string) {
  expect(existsSync(join(s3.directory, bucket))).toBe(false);
  await expect(s3.client.send(new ListObjectsV2Command({ Bucket: bucket }))).rejects.toMatchObject({ name: 'NoSuchBucket' });
}

/** One request through the API handler, as API Gateway sends it. */
async function call(method: string, path: string, query?: Record<string, string>): Promise<{ status: number | undefined; body: Record<string, unknown> }> {
  const res = (await handler(apiEvent(method, path, query ? { query } : {}))) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(res.body as string) as Record<string, unknown> };
}

/*
 * S3 and s3rver answer a HEAD on a missing bucket with a bare 404, like a missing key; the store
 * adapter asks for the bucket before it takes a miss for "not held" (lib/stores.ts headObject).
 * Every store asked with a HEAD goes through that: all of them for ?meta=1 and deletes, every
 * store but the first for a plain read.
 */

const STORES = ['server1', 'server2'];
const otherThan = (lost: string) => STORES.filter((s) => s !== lost);

describe.each(WAYS)('a bucket $how', (way) => {
  const stack = useStack(STORES);

  /** Seeds every store, then loses each of `lost`; returns a snapshot of every store kept, by name. */
  async function loseAfterSeed(...lost: string[]) {
    const { s3 } = stack();
    await seed(s3, STORES);
    for (const b of lost) await way.lose(s3, b);
    return Object.fromEntries(await Promise.all(STORES.filter((s) => !lost.includes(s)).map(async (s) => [s, await snapshot(s3, s)] as const)));
  }

  describe.each(STORES)('reads with %s lost', (lost) => {
    const kept = otherThan(lost)[0]!;
    // The first store is read with a GET (its NoSuchBucket is unavailable); the others, and every
    // store with ?meta=1, with a HEAD.

    describe.each([false, true])('meta %s', (meta) => {
      const query = meta ? { meta: '1' } : undefined;

      it(`reads a file held by both from ${kept}, naming ${lost} unavailable (200)`, async () => {
        const before = await loseAfterSeed(lost);
        const expected = {
          status: 'SINGLE',
          key: 'fileA.txt',
          copies: [{ store: kept, size: FILE_A.length, etag: md5(FILE_A), mtime: MTIME.iso }],
          ...(meta ? {} : { content: { base64: base64(FILE_A) } }),
          unavailable: [lost],
        };
        expect(await readFile(stack().deps, 'fileA.txt', { meta })).toEqual(expected);
        expect(await call('GET', '/files/fileA.txt', query)).toEqual({ status: 200, body: expected });
        expect(await snapshot(stack().s3, kept)).toEqual(before[kept]);
      });

      it(`answers NOT_FOUND for a file only ${lost} held, naming ${lost} unavailable (404)`, async () => {
        await loseAfterSeed(lost);
        const expected = { status: 'NOT_FOUND', key: `only-${lost}.txt`, unavailable: [lost] };
        expect(await readFile(stack().deps, `only-${lost}.txt`, { meta })).toEqual(expected);
        expect(await call('GET', `/files/only-${lost}.txt`, query)).toEqual({ status: 404, body: expected });
      });

      it(`reads a file only ${kept} holds, naming ${lost} unavailable (200)`, async () => {
        await loseAfterSeed(lost);
        const answer = await readFile(stack().deps, `only-${kept}.txt`, { meta });
        expect(answer).toMatchObject({ status: 'SINGLE', copies: [{ store: kept }], unavailable: [lost] });
        expect(await call('GET', `/files/only-${kept}.txt`, query)).toEqual({ status: 200, body: answer });
      });
    });
  });

  describe.each(STORES)('listing with %s lost', (lost) => {
    const kept = otherThan(lost)[0]!;

    it(`lists ${kept}'s files, naming ${lost} unavailable and leaving it out of every entry (200)`, async () => {
      const before = await loseAfterSeed(lost);
      const listing = await listFiles(stack().deps);
      expect(listing).toMatchObject({ next: null, unavailable: [lost] });
      expect(listing.files.map((f) => f.name)).toEqual(['fileA.txt', 'fileD.txt', `only-${kept}.txt`]);
      for (const f of listing.files) {
        expect(Object.keys(f.stores)).toEqual([kept]);
        expect(f.state).toBe('same');
      }
      expect(await call('GET', '/files')).toEqual({ status: 200, body: listing });
      expect(await snapshot(stack().s3, kept)).toEqual(before[kept]);
    });
  });

  describe.each(STORES)('deletes with %s lost', (lost) => {
    const kept = otherThan(lost)[0]!;
    const results = (keptOk: boolean) =>
      STORES.map((s) => (s === lost ? { store: s, ok: false, error: expect.stringMatching(/^unavailable/) } : { store: s, ok: keptOk }));

    it(`deletes from ${kept} and names ${lost} in the per-store results (HTTP 207)`, async () => {
      const before = await loseAfterSeed(lost);
      expect(await deleteFile(stack().deps, 'fileA.txt', 'test')).toMatchObject({ key: 'fileA.txt', results: results(true) });
      expect(await call('DELETE', '/files/fileD.txt')).toMatchObject({ status: 207, body: { key: 'fileD.txt', results: results(true) } });
      // Both deletes went through on the kept store, and nothing else changed there.
      expect(await snapshot(stack().s3, kept)).toEqual(before[kept]!.filter((l) => l.startsWith(`only-${kept}.txt `)));
      await expectGone(stack().s3, lost);
    });

    it(`does not call a file only ${lost} held "not found": ${lost} is named, nothing deleted (HTTP 503)`, async () => {
      const before = await loseAfterSeed(lost);
      const expected = { key: `only-${lost}.txt`, results: [{ store: lost, ok: false, error: expect.stringMatching(/^unavailable/) }] };
      expect(await deleteFile(stack().deps, `only-${lost}.txt`, 'test')).toMatchObject(expected);
      expect(await call('DELETE', `/files/only-${lost}.txt`)).toMatchObject({ status: 503, body: expected });
      expect(await snapshot(stack().s3, kept)).toEqual(before[kept]);
    });
  });

  describe.each(STORES)('reconcile with %s lost', (lost) => {
    const kept = otherThan(lost)[0]!;

    it(`is refused by the guard naming ${lost}, dry run or not (409); nothing changes`, async () => {
      const before = await loseAfterSeed(lost);
      for (const dryRun of [false, true]) {
        const refused = await reconcile(stack().deps, { dryRun }).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(ConflictError);
        expect((refused as Error).message).toContain(`${lost} unavailable`);
        const http = await call('POST', '/reconcile', dryRun ? { dryRun: '1' } : undefined);
        expect(http).toEqual({ status: 409, body: { error: 'Conflict', message: (refused as Error).message } });
      }
      expect(await snapshot(stack().s3, kept)).toEqual(before[kept]);
      await expectGone(stack().s3, lost);
    });

    it(`goes on with ${kept} under force, naming ${lost}, dry run or not (200); ${kept} untouched`, async () => {
      const before = await loseAfterSeed(lost);
      const counts = { match: 3, differ: 0, missing: { [kept]: 0 }, copies: 0, deletes: 0 };
      expect(await reconcile(stack().deps, { force: true, dryRun: true })).toEqual({ dryRun: true, counts, entries: [], unavailable: [lost] });
      expect(await reconcile(stack().deps, { force: true })).toEqual({ dryRun: false, counts, entries: [], unavailable: [lost], applied: { done: 0, failed: [] } });
      expect(await call('POST', '/reconcile', { dryRun: '1', force: '1' })).toEqual({ status: 200, body: { dryRun: true, counts, entries: [], unavailable: [lost] } });
      expect(await call('POST', '/reconcile', { force: '1' })).toMatchObject({ status: 200, body: { dryRun: false, unavailable: [lost], applied: { done: 0, failed: [] } } });
      expect(await snapshot(stack().s3, kept)).toEqual(before[kept]);
      await expectGone(stack().s3, lost);
    });
  });

  describe('with both buckets lost', () => {
    const unavailable = { error: 'Unavailable', message: 'no store answered (server1, server2)', unavailable: STORES };

    it('a read, with and without meta, is 503 naming both (lib: AllStoresUnavailableError), not NOT_FOUND', async () => {
      await loseAfterSeed(...STORES);
      for (const meta of [false, true]) {
        await expect(readFile(stack().deps, 'fileA.txt', { meta })).rejects.toMatchObject({ name: 'AllStoresUnavailableError', unavailable: STORES });
        expect(await call('GET', '/files/fileA.txt', meta ? { meta: '1' } : undefined)).toEqual({ status: 503, body: unavailable });
      }
    });

    it('the listing and reconcile are 503 naming both', async () => {
      await loseAfterSeed(...STORES);
      await expect(listFiles(stack().deps)).rejects.toMatchObject({ name: 'AllStoresUnavailableError', unavailable: STORES });
      expect(await call('GET', '/files')).toEqual({ status: 503, body: unavailable });
      for (const query of [undefined, { dryRun: '1' }, { force: '1' }] as (Record<string, string> | undefined)[]) {
        await expect(reconcile(stack().deps, { dryRun: query?.dryRun === '1', force: query?.force === '1' })).rejects.toMatchObject({ name: 'AllStoresUnavailableError', unavailable: STORES });
        expect(await call('POST', '/reconcile', query)).toEqual({ status: 503, body: unavailable });
      }
    });

    it('a delete is 503 naming both, not a 404 NotFound', async () => {
      await loseAfterSeed(...STORES);
      await expect(deleteFile(stack().deps, 'fileA.txt', 'test')).rejects.toMatchObject({ name: 'AllStoresUnavailableError', unavailable: STORES });
      expect(await call('DELETE', '/files/fileA.txt')).toEqual({ status: 503, body: unavailable });
    });
  });
});

describe.each(WAYS)('three stores, server3 $how: reconcile --force goes on with the other two', (way) => {
  const NAMES = ['server1', 'server2', 'server3'];
  const stack = useStack(NAMES);

  beforeEach(async () => {
    const { s3 } = stack();
    for (const name of NAMES) await put(s3, name, 'fileA.txt', FILE_A);
    await put(s3, 'server1', 'fileB.txt', 'This is version 1 of file B.', '1700000000');
    await put(s3, 'server2', 'fileB.txt', 'This is version 2 of file B, which is more recent.', '1700000100');
    await put(s3, 'server2', 'fileC.txt', 'This file only exists on SERVER 2.');
    await way.lose(s3, 'server3');
  });

  it('refuses without force naming server3 (409), then with force copies fileB and fileC to server1 and names server3', async () => {
    const { s3, deps } = stack();
    const before = await snapshot(s3, 'server1');
    await expect(reconcile(deps)).rejects.toThrow('server3 unavailable');
    expect(await snapshot(s3, 'server1')).toEqual(before);

    const report = await reconcile(deps, { force: true });
    expect(report).toMatchObject({ unavailable: ['server3'], counts: { copies: 2, deletes: 0 }, applied: { done: 2, failed: [] } });
    expect(report.entries.map((e) => [e.key, e.action, e.action === 'copy' ? `${e.from}→${e.to.join(',')}` : ''])).toEqual([
      ['fileB.txt', 'copy', 'server2→server1'],
      ['fileC.txt', 'copy', 'server2→server1'],
    ]);
    expect(await text(s3, 'server1', 'fileB.txt')).toBe('This is version 2 of file B, which is more recent.');
    expect(await text(s3, 'server1', 'fileC.txt')).toBe('This file only exists on SERVER 2.');
    await expectGone(s3, 'server3');
  });
});

describe.each(WAYS)('dfs against the real API handler, server2 $how', (way) => {
  const stack = useStack(STORES);
  const sandbox = useCliSandbox(serveLambda(handler));
  const tempDir = useTempDirs('dfs-missing-bucket-');
  // The CLI sends the write token `tester` as API Gateway would pass it on.
  const dfs = (...args: string[]) => runDfs(args, { cwd: sandbox.home, env: sandbox.env({ DFS_TOKEN: TEST_TOKEN }) });
  const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

  async function loseServer2() {
    const { s3 } = stack();
    await seed(s3, STORES);
    await way.lose(s3, 'server2');
    return snapshot(s3, 'server1');
  }

  it('dfs get saves server1\'s copy, warns that server2 did not answer, exit 0; --json names it', async () => {
    const before = await loseServer2();
    const dir = tempDir();
    const r = await dfs('get', 'fileA.txt', '-o', dir);
    expect(r.stderr).toContain('warning: server2 did not answer');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'fileA.txt'), 'utf8')).toBe(FILE_A);

    const j = await dfs('get', 'fileD.txt', '-o', dir, '--json');
    expect(j.code).toBe(0);
    expect(json(j.stdout)).toMatchObject({ status: 'SINGLE', copies: [{ store: 'server1' }], unavailable: ['server2'], saved: [expect.stringContaining('fileD.txt')] });
    expect(await snapshot(stack().s3, 'server1')).toEqual(before);
  });

  it('dfs get of a file only server2 held: not found on the stores that answered, server2 named, exit 3', async () => {
    await loseServer2();
    const r = await dfs('get', 'only-server2.txt', '-o', tempDir());
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('warning: server2 did not answer');
    expect(r.stderr).toContain('not found on any store that answered');
    const j = await dfs('get', 'only-server2.txt', '-o', tempDir(), '--json');
    expect(json(j.stdout)).toMatchObject({ status: 'NOT_FOUND', unavailable: ['server2'] });
  });

  it('dfs ls lists server1\'s files and warns that server2 did not answer, exit 0; --json names it', async () => {
    const before = await loseServer2();
    const r = await dfs('ls');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: server2 did not answer');
    for (const name of ['fileA.txt', 'fileD.txt', 'only-server1.txt']) expect(r.stdout).toContain(name);
    expect(r.stdout).not.toContain('only-server2.txt');

    const j = await dfs('ls', '--json');
    expect(j.code).toBe(0);
    const doc = json(j.stdout) as { files: { name: string }[]; unavailable: string[] };
    expect(doc.unavailable).toEqual(['server2']);
    expect(doc.files.map((f) => f.name)).toEqual(['fileA.txt', 'fileD.txt', 'only-server1.txt']);
    expect(await snapshot(stack().s3, 'server1')).toEqual(before);
  });

  it('dfs rm deletes from server1 and names server2 as not deleted, exit 6; --json carries the per-store results', async () => {
    const before = await loseServer2();
    const r = await dfs('rm', '-y', 'fileA.txt');
    expect(r.stdout).toContain('deleted fileA.txt from server1');
    expect(r.stderr).toContain('dfs: not deleted from server2: unavailable');
    expect(r.code).toBe(6);

    const j = await dfs('rm', '-y', 'fileD.txt', '--json');
    expect(j.code).toBe(6);
    expect(json(j.stdout)).toMatchObject({
      key: 'fileD.txt',
      results: [{ store: 'server1', ok: true }, { store: 'server2', ok: false, error: expect.stringMatching(/^unavailable/) }],
    });
    expect(await snapshot(stack().s3, 'server1')).toEqual(before.filter((l) => l.startsWith('only-server1.txt ')));
  });

  it('dfs sync and dfs sync --dry-run are refused naming server2, exit 7; server1 untouched', async () => {
    const before = await loseServer2();
    for (const args of [['sync'], ['sync', '--dry-run']]) {
      const r = await dfs(...args);
      expect(r.code).toBe(7);
      expect(r.stderr).toContain('refused by a safety guard: server2 unavailable');
      expect(r.stderr).toContain('--force');
      const j = await dfs(...args, '--json');
      expect(j.code).toBe(7);
      expect(json(j.stdout)).toMatchObject({ error: 'Conflict', message: expect.stringContaining('server2 unavailable') });
    }
    expect(await snapshot(stack().s3, 'server1')).toEqual(before);
    await expectGone(stack().s3, 'server2');
  });

  it('dfs sync --force and --dry-run --force go on with server1, naming server2, exit 0; server1 untouched', async () => {
    const before = await loseServer2();
    const r = await dfs('sync', '--force');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: server2 did not answer');
    expect(r.stdout).toContain('3 matching files');

    const j = await dfs('sync', '--dry-run', '--force', '--json');
    expect(j.code).toBe(0);
    expect(json(j.stdout)).toMatchObject({ dryRun: true, entries: [], unavailable: ['server2'], counts: { match: 3 } });
    expect(await snapshot(stack().s3, 'server1')).toEqual(before);
    await expectGone(stack().s3, 'server2');
  });

  describe('with server1 lost as well', () => {
    async function loseBoth() {
      await loseServer2();
      await way.lose(stack().s3, 'server1');
    }

    it('dfs ls and dfs sync say no store answered, naming both, exit 5', async () => {
      await loseBoth();
      for (const args of [['ls'], ['sync', '--dry-run'], ['sync', '--force']]) {
        const r = await dfs(...args);
        expect({ args, code: r.code }).toEqual({ args, code: 5 });
        expect(r.stderr).toContain('no store answered (server1, server2)');
      }
    });

    it('dfs get and dfs rm say no store answered, naming both, exit 5 (not 3, not found)', async () => {
      await loseBoth();
      const get = await dfs('get', 'fileA.txt', '-o', tempDir());
      expect(get.stderr).toContain('no store answered (server1, server2)');
      expect(get.code).toBe(5);
      const rm = await dfs('rm', '-y', 'fileA.txt');
      expect(rm.stderr).toContain('no store answered (server1, server2)');
      expect(rm.code).toBe(5);
    });
  });
});

describe.each(WAYS)('dfs sync against the real API handler, three stores, server3 $how', (way) => {
  const NAMES = ['server1', 'server2', 'server3'];
  const stack = useStack(NAMES);
  const sandbox = useCliSandbox(serveLambda(handler));
  const dfs = (...args: string[]) => runDfs(args, { cwd: sandbox.home, env: sandbox.env({ DFS_TOKEN: TEST_TOKEN }) });
  type Report = { unavailable: string[]; entries: { key: string }[]; applied: { done: number; failed: { key: string; error: string }[] } };

  beforeEach(async () => {
    const { s3 } = stack();
    for (const name of NAMES) await put(s3, name, 'fileA.txt', FILE_A);
    await put(s3, 'server1', 'fileB.txt', 'This is version 1 of file B.', '1700000000');
    await put(s3, 'server2', 'fileB.txt', 'This is version 2 of file B, which is more recent.', '1700000100');
    await put(s3, 'server2', 'fileC.txt', 'This file only exists on SERVER 2.');
    await way.lose(s3, 'server3');
  });

  async function expectServer1Repaired(s3: LocalS3) {
    expect(await text(s3, 'server1', 'fileB.txt')).toBe('This is version 2 of file B, which is more recent.');
    expect(await text(s3, 'server1', 'fileC.txt')).toBe('This file only exists on SERVER 2.');
    await expectGone(s3, 'server3');
  }

  it('refuses without --force naming server3 (exit 7), nothing changes; --force copies fileB and fileC to server1, naming server3', async () => {
    const { s3 } = stack();
    const before = await snapshot(s3, 'server1');
    const refused = await dfs('sync');
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain('refused by a safety guard: server3 unavailable');
    expect(await snapshot(s3, 'server1')).toEqual(before);

    const forced = await dfs('sync', '--force', '--json');
    const doc = JSON.parse(forced.stdout) as Report;
    expect(doc.unavailable).toEqual(['server3']);
    expect(doc.entries.map((e) => e.key)).toEqual(['fileB.txt', 'fileC.txt']);
    await expectServer1Repaired(s3);
  });

  // The CLI applies its forced plan through POST /reconcile/apply?force=1: a step settled on
  // every store that answered is done, as POST /reconcile?force=1 counts it.
  it('dfs sync --force counts the steps applied on the stores that answered: done 2, exit 0', async () => {
    const { s3 } = stack();
    const forced = await dfs('sync', '--force', '--json');
    await expectServer1Repaired(s3);
    const doc = JSON.parse(forced.stdout) as Report;
    expect({ code: forced.code, done: doc.applied.done, failed: doc.applied.failed }).toEqual({ code: 0, done: 2, failed: [] });
  });
});
