import { PutObjectCommand, type ListObjectsV2CommandInput, type S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { listFiles } from '../../lib/listing';
import { BadRequestError } from '../../lib/errors';
import { createS3Client } from '../../lib/config';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import type { FileEntry, Listing } from '../../lib/types';
import { handler } from '../../handlers/api';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { AUTH, putTestTokens } from '../helpers/apigw';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

let s3: LocalS3;
/** Two stores on a pair of buckets named `<prefix>1`, `<prefix>2`. */
const pair = (prefix: string, client: S3Client = s3.client): Store[] =>
  [1, 2].map((i) => ({ name: `server${i}`, bucket: `${prefix}${i}`, s3: client }));

const TEXT = {
  A: 'This is the original version of file A.',
  B1: 'This is version 1 of file B.',
  B2: 'This is version 2 of file B, which is more recent.',
  C: 'This file only exists on SERVER 2.',
};
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

async function put(bucket: string, key: string, body = key) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Runs `fn` over `items`, `width` at a time: s3rver writes to disk, so thousands at once only queue. */
async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

/** Pages through the whole listing, following `next` until it is null. */
async function listAll(deps: Deps, opts: { prefix?: string; limit?: number } = {}): Promise<Listing[]> {
  const pages: Listing[] = [];
  let after: string | undefined;
  do {
    const page = await listFiles(deps, { ...opts, ...(after ? { after } : {}) });
    pages.push(page);
    after = page.next ?? undefined;
  } while (after);
  return pages;
}

const names = (files: FileEntry[]) => files.map((f) => f.name);

beforeAll(async () => {
  s3 = await startS3rver(['seed1', 'seed2', 'page1', 'page2', 'pre1', 'pre2', 'big1', 'big2', 'control']);
  await putTestTokens((key, text) => s3.client.send(new PutObjectCommand({ Bucket: 'control', Key: key, Body: text })));
  await put('seed1', 'fileA.txt', TEXT.A);
  await put('seed2', 'fileA.txt', TEXT.A);
  await put('seed1', 'fileB.txt', TEXT.B1);
  await put('seed2', 'fileB.txt', TEXT.B2);
  await put('seed2', 'fileC.txt', TEXT.C);
  // Seven names, some on one store, some on both, interleaved.
  for (const k of ['a', 'c', 'e', 'g']) await put('page1', k);
  for (const k of ['b', 'c', 'd', 'f', 'g']) await put('page2', k);
  for (const k of ['docs/a.txt', 'docs/b/c.txt', 'docsx.txt', 'a.txt']) await put('pre1', k);
  for (const k of ['docs/a.txt', 'docs/z.txt', 'zzz.txt']) await put('pre2', k);
});
afterAll(() => s3?.stop());

describe('listFiles on s3rver: the seed', () => {
  it('lists fileA same, fileB different, fileC partial, sorted, with each store’s copy', async () => {
    const { files, next, unavailable } = await listFiles(makeDeps(pair('seed')));
    expect(next).toBeNull();
    expect(unavailable).toEqual([]);
    expect(files.map((f) => [f.name, f.state])).toEqual([
      ['fileA.txt', 'same'],
      ['fileB.txt', 'different'],
      ['fileC.txt', 'partial'],
    ]);
    const [a, b, c] = files as [FileEntry, FileEntry, FileEntry];
    const copy = (text: string) => ({ size: Buffer.byteLength(text), etag: md5(text), mtime: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) });
    expect(a.stores).toEqual({ server1: copy(TEXT.A), server2: copy(TEXT.A) });
    expect(b.stores).toEqual({ server1: copy(TEXT.B1), server2: copy(TEXT.B2) });
    expect(c.stores).toEqual({ server1: null, server2: copy(TEXT.C) });
    expect(c).toMatchObject({ size: Buffer.byteLength(TEXT.C), mtime: c.stores.server2!.mtime });
  });

  it('gives each name the size and mtime of its most recently written copy', async () => {
    const { files } = await listFiles(makeDeps(pair('seed')));
    for (const f of files) {
      const copies = Object.values(f.stores).filter((c) => c !== null);
      const newest = copies.reduce((x, y) => (Date.parse(y.mtime) > Date.parse(x.mtime) ? y : x));
      expect(f.mtime).toBe(newest.mtime);
      expect(copies.filter((c) => c.mtime === f.mtime).map((c) => c.size)).toContain(f.size);
    }
  });
});

describe('listFiles pagination', () => {
  it('pages through 7 names spread across stores 2 at a time: each name once, in order, last next null', async () => {
    const deps = makeDeps(pair('page'));
    const pages = await listAll(deps, { limit: 2 });
    expect(pages.map((p) => names(p.files))).toEqual([['a', 'b'], ['c', 'd'], ['e', 'f'], ['g']]);
    expect(pages.slice(0, -1).every((p) => typeof p.next === 'string')).toBe(true);
    expect(pages.at(-1)!.next).toBeNull();
    expect(pages.flatMap((p) => p.files.map((f) => f.state))).toEqual(['partial', 'partial', 'same', 'partial', 'partial', 'partial', 'same']);
  });

  it('resumes after the cursor’s name, whichever store held it', async () => {
    const deps = makeDeps(pair('page'));
    const first = await listFiles(deps, { limit: 3 });
    expect(names(first.files)).toEqual(['a', 'b', 'c']);
    const second = await listFiles(deps, { limit: 3, after: first.next! });
    expect(names(second.files)).toEqual(['d', 'e', 'f']);
    const third = await listFiles(deps, { limit: 3, after: second.next! });
    expect(third).toMatchObject({ next: null });
    expect(names(third.files)).toEqual(['g']);
  });

  it('ends with next null, and no empty page, when the names fill the last page exactly', async () => {
    const deps = makeDeps(pair('page'));
    expect(await listFiles(deps, { limit: 7 })).toMatchObject({ next: null });
    const six = await listFiles(deps, { limit: 6 });
    expect(six.next).not.toBeNull();
    expect(await listFiles(deps, { limit: 6, after: six.next! })).toMatchObject({ files: [{ name: 'g' }], next: null });
  });

  it.each([
    ['an edited MAC', (c: string) => c.slice(0, -1) + (c.endsWith('A') ? 'B' : 'A')],
    ['an edited payload', (c: string) => Buffer.from(JSON.stringify({ k: 'z', p: '' })).toString('base64url') + c.slice(c.indexOf('.'))],
    ['a truncated cursor', (c: string) => c.slice(0, 10)],
    ['a made-up cursor', () => 'b'],
  ])('refuses %s with BadRequestError', async (_, tamper) => {
    const deps = makeDeps(pair('page'));
    const { next } = await listFiles(deps, { limit: 2 });
    await expect(listFiles(deps, { limit: 2, after: tamper(next!) })).rejects.toThrow(BadRequestError);
  });

  it('refuses a cursor signed with another secret', async () => {
    const { next } = await listFiles(makeDeps(pair('page'), { cursorSecret: 'other' }), { limit: 2 });
    await expect(listFiles(makeDeps(pair('page')), { limit: 2, after: next! })).rejects.toThrow(/not one this API issued/);
  });

  it.each([0, 1001, 2.5, -1])('refuses limit %p', async (limit) => {
    await expect(listFiles(makeDeps(pair('page')), { limit })).rejects.toThrow(BadRequestError);
  });
});

describe('listFiles with a prefix', () => {
  it('lists only the names under the prefix, from both stores', async () => {
    const { files } = await listFiles(makeDeps(pair('pre')), { prefix: 'docs/' });
    expect(files.map((f) => [f.name, f.state])).toEqual([
      ['docs/a.txt', 'same'],
      ['docs/b/c.txt', 'partial'],
      ['docs/z.txt', 'partial'],
    ]);
  });

  it('treats the prefix as a string prefix, not a folder', async () => {
    expect(names((await listFiles(makeDeps(pair('pre')), { prefix: 'docs' })).files)).toEqual(['docs/a.txt', 'docs/b/c.txt', 'docs/z.txt', 'docsx.txt']);
    expect((await listFiles(makeDeps(pair('pre')), { prefix: 'nothing/' })).files).toEqual([]);
  });

  it('pages within the prefix and refuses its cursor with another prefix', async () => {
    const deps = makeDeps(pair('pre'));
    const pages = await listAll(deps, { prefix: 'docs/', limit: 1 });
    expect(pages.map((p) => names(p.files))).toEqual([['docs/a.txt'], ['docs/b/c.txt'], ['docs/z.txt']]);
    await expect(listFiles(deps, { prefix: '', after: pages[0]!.next! })).rejects.toThrow(/another prefix/);
  });
});

describe('listFiles over a store of 1,200 keys', () => {
  const key = (i: number) => `k${String(i).padStart(4, '0')}`;
  /** Every ListObjectsV2 this client sent, to see s3rver's continuation tokens being followed. */
  const sent: ListObjectsV2CommandInput[] = [];
  let client: S3Client;

  beforeAll(async () => {
    client = createS3Client({ endpoint: s3.endpoint });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListObjectsV2Command') sent.push({ ...(args.input as ListObjectsV2CommandInput) });
        return next(args);
      },
      { step: 'initialize' },
    );
    // server1 holds k0000..k1199 (past s3rver's 1,000 per listing), server2 k0900..k1499:
    // 1,500 names, 300 on both, in 1,800 writes.
    const writes = [
      ...Array.from({ length: 1200 }, (_, i) => ['big1', key(i)] as const),
      ...Array.from({ length: 600 }, (_, i) => ['big2', key(900 + i)] as const),
    ];
    // 50 at a time: 200 at once missed the client's 3 s connect timeout on a loaded machine.
    await inBatches(writes, 50, ([bucket, k]) => put(bucket, k, 'x'));
  }, 180_000); // CI's machine once took over 60 s for 3,200 writes beside other suites
  afterAll(() => client?.destroy());

  it('lists every name once, in order, in pages of 1000, following continuation tokens', async () => {
    const pages = await listAll(makeDeps(pair('big', client)));
    expect(pages.map((p) => p.files.length)).toEqual([1000, 500]);
    const all = pages.flatMap((p) => p.files);
    expect(names(all)).toEqual(Array.from({ length: 1500 }, (_, i) => key(i)));
    const states = all.map((f) => f.state);
    expect(states.slice(0, 900).every((s) => s === 'partial')).toBe(true);
    expect(states.slice(900, 1200).every((s) => s === 'same')).toBe(true);
    expect(states.slice(1200).every((s) => s === 'partial')).toBe(true);
    expect(all[0]!.stores.server2).toBeNull();
    expect(all[1499]!.stores.server1).toBeNull();
    // Each page asked for more keys than s3rver returns at once, so some came by continuation.
    expect(sent.some((input) => input.ContinuationToken)).toBe(true);
  }, 60_000); // 1,500 keys through s3rver: seconds alone, longer beside another suite
});

/** An HTTP API (payload 2.0) GET as API Gateway sends it. */
async function get(rawPath: string, query?: Record<string, string>) {
  const event = { rawPath, requestContext: { http: { method: 'GET' } }, headers: { authorization: AUTH }, queryStringParameters: query, isBase64Encoded: false };
  const res = (await handler(event as unknown as APIGatewayProxyEventV2)) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(res.body as string) as Record<string, unknown> };
}

describe('handler: GET /files', () => {
  beforeEach(() => {
    mockDeps = makeDeps(pair('page'));
  });

  it('answers 200 with a page and a cursor that the next request accepts', async () => {
    const first = await get('/files', { limit: '4' });
    expect(first.status).toBe(200);
    expect(names(first.body.files as FileEntry[])).toEqual(['a', 'b', 'c', 'd']);
    const second = await get('/files', { limit: '4', after: first.body.next as string });
    expect(second).toMatchObject({ status: 200, body: { next: null, unavailable: [] } });
    expect(names(second.body.files as FileEntry[])).toEqual(['e', 'f', 'g']);
  });

  it.each(['abc', '-1', '1.5', '0', '1001'])('answers 400 BadRequest for limit=%s', async (limit) => {
    expect(await get('/files', { limit })).toMatchObject({ status: 400, body: { error: 'BadRequest' } });
  });

  it('answers 400 BadRequest for a tampered after, saying so', async () => {
    const { body } = await get('/files', { limit: '2' });
    const tampered = Buffer.from(JSON.stringify({ k: 'f', p: '' })).toString('base64url') + (body.next as string).slice((body.next as string).indexOf('.'));
    expect(await get('/files', { after: tampered })).toEqual({
      status: 400,
      body: { error: 'BadRequest', message: 'the "after" cursor is not one this API issued (was it edited or truncated?)' },
    });
  });
});
