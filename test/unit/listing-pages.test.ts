import { createHmac } from 'node:crypto';
import { ListObjectsV2Command, type ListObjectsV2CommandInput } from '@aws-sdk/client-s3';
import { listFiles, openListing, sealCursor, type ListedObject } from '../../lib/listing';
import { AllStoresUnavailableError, BadRequestError } from '../../lib/errors';
import type { Store } from '../../lib/stores';
import type { Listing } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { T, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';

/*
 * listFiles and openListing against a ConditionalS3 (ListObjectsV2 in UTF-8 byte order, pages
 * of MaxKeys, the continuation token the page's last key): what a page holds, how it is
 * paged, and what a store that does not answer does to it.
 */

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const stores: Store[] = [1, 2].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
const deps = () => makeDeps(stores, { control: { bucket: 'control', s3: client } });
const SECRET = makeDeps(stores).cursorSecret!;

const SEC = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Puts `key` straight into server`n` with `text`, last modified at `at`. */
const put = (n: number, key: string, text = key, at = T) => fake.direct(`bucket-${n}`, key, text, { lastModified: at });

/** The ListObjectsV2 requests sent to server`n`, in order. */
const lists = (n: number) =>
  s3mock
    .commandCalls(ListObjectsV2Command)
    .map((c) => c.args[0].input)
    .filter((i) => i.Bucket === `bucket-${n}`);

/** S3 may answer fewer keys than MaxKeys while more follow: server`n` answers `keys` per page at most. */
function shortPages(n: number, keys: number) {
  s3mock
    .on(ListObjectsV2Command, { Bucket: `bucket-${n}` })
    .callsFake(async (i: ListObjectsV2CommandInput) => fake.list({ ...i, MaxKeys: Math.min(keys, i.MaxKeys ?? 1000) }));
}

const names = (l: Listing) => l.files.map((f) => f.name);

/** Every page of the listing from the start, following `next` (at most 20 pages). */
async function allPages(opts: { prefix?: string; limit?: number }): Promise<Listing[]> {
  const pages: Listing[] = [];
  let after: string | undefined;
  do {
    const page = await listFiles(deps(), { ...opts, ...(after ? { after } : {}) });
    pages.push(page);
    after = page.next ?? undefined;
  } while (after && pages.length < 20);
  return pages;
}

/** Up to `cap` objects from a listing, so that one that never ends still fails the test. */
async function take(objects: AsyncIterable<ListedObject>, cap = 50): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of objects) if (keys.push(o.key) >= cap) break;
  return keys;
}

/** What listFiles shows of one copy: its size, bare ETag and LastModified. */
const copy = (o: { bytes: Buffer; etag: string; lastModified: Date }) => ({ size: o.bytes.length, etag: o.etag.replace(/"/g, ''), mtime: o.lastModified.toISOString() });

describe('listFiles: one page', () => {
  it('merges every store\'s names in S3 byte order, each with every store\'s copy and a state', async () => {
    const a1 = put(1, 'a.txt', 'hello');
    const a2 = put(2, 'a.txt', 'hello', T + SEC);
    const b2 = put(2, 'b.txt', 'bee');
    const c1 = put(1, 'c.txt', 'one');
    const c2 = put(2, 'c.txt', 'two');
    const z1 = put(1, 'ｚ');
    const e2 = put(2, '😀');

    expect(await listFiles(deps())).toEqual({
      files: [
        { name: 'a.txt', size: 5, mtime: iso(T + SEC), state: 'same', stores: { server1: copy(a1), server2: copy(a2) } },
        { name: 'b.txt', size: 3, mtime: iso(T), state: 'partial', stores: { server1: null, server2: copy(b2) } },
        { name: 'c.txt', size: 3, mtime: iso(T), state: 'different', stores: { server1: copy(c1), server2: copy(c2) } },
        // U+FF5A before U+1F600: UTF-8 order, though JS sorts the surrogate pair first.
        { name: 'ｚ', size: 3, mtime: iso(T), state: 'partial', stores: { server1: copy(z1), server2: null } },
        { name: '😀', size: 4, mtime: iso(T), state: 'partial', stores: { server1: null, server2: copy(e2) } },
      ],
      next: null,
      unavailable: [],
    });
  });

  it('gives each name the size and mtime of its most recently written copy, whichever store holds it', async () => {
    put(1, 'x', 'newer and longer', T + 5 * SEC);
    put(2, 'x', 'older', T);
    put(1, 'y', 'older', T);
    put(2, 'y', 'newer, longer', T + 5 * SEC);

    const { files } = await listFiles(deps());
    expect(files.map((f) => [f.name, f.size, f.mtime])).toEqual([
      ['x', 16, iso(T + 5 * SEC)],
      ['y', 13, iso(T + 5 * SEC)],
    ]);
  });

  it('lists only the names under the prefix', async () => {
    for (const k of ['dir/a', 'dir/b', 'dira', 'e']) put(1, k);
    put(2, 'dir/c');
    expect(names(await listFiles(deps(), { prefix: 'dir/' }))).toEqual(['dir/a', 'dir/b', 'dir/c']);
    expect(names(await listFiles(deps()))).toEqual(['dir/a', 'dir/b', 'dir/c', 'dira', 'e']);
  });
});

describe('listFiles: limit', () => {
  it.each([0, -1, 2.5, 1001, NaN, Infinity])('refuses limit %p with a 400 that gives the range, asking no store', async (limit) => {
    put(1, 'a');
    const err = await listFiles(deps(), { limit }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ status: 400, message: 'limit must be an integer from 1 to 1000' });
    expect(s3mock.calls()).toHaveLength(0);
  });

  it('takes limits 1 and 1000, the ends of the range', async () => {
    put(1, 'a');
    put(2, 'b');
    expect(await listFiles(deps(), { limit: 1 })).toMatchObject({ files: [{ name: 'a' }], next: expect.any(String) });
    expect(await listFiles(deps(), { limit: 1000 })).toMatchObject({ files: [{ name: 'a' }, { name: 'b' }], next: null });
  });
});

describe('listFiles: paging', () => {
  it('pages through the merged names with its cursor: each name once, in order, the last page without a next', async () => {
    for (const k of ['a', 'c', 'e', 'g']) put(1, k);
    for (const k of ['b', 'c', 'd', 'f', 'g']) put(2, k);

    const pages = await allPages({ limit: 3 });
    expect(pages.map(names)).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
    expect(pages.map((p) => p.next === null)).toEqual([false, false, true]);
    expect(pages.map((p) => p.unavailable)).toEqual([[], [], []]);
  });

  it('ends with a page of exactly `limit` names and no next when nothing follows', async () => {
    for (const k of ['a', 'b', 'c', 'd']) put(1, k);
    const pages = await allPages({ limit: 2 });
    expect(pages.map(names)).toEqual([['a', 'b'], ['c', 'd']]);
    expect(pages[1]!.next).toBeNull();
  });

  it('keeps the prefix across pages', async () => {
    for (const k of ['dir/a', 'dir/b', 'dir/c', 'e']) put(1, k);
    const pages = await allPages({ prefix: 'dir/', limit: 2 });
    expect(pages.map(names)).toEqual([['dir/a', 'dir/b'], ['dir/c']]);
  });

  it('asks each store once for a page of `limit` names and whether more follow', async () => {
    for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
      put(1, k);
      put(2, k);
    }
    const first = await listFiles(deps(), { limit: 3 });
    expect(names(first)).toEqual(['a', 'b', 'c']);
    expect(first.next).not.toBeNull();
    expect([lists(1).length, lists(2).length]).toEqual([1, 1]);
  });

  it('reads on through the next pages of a store that answers fewer keys than asked for', async () => {
    shortPages(2, 1);
    for (const k of ['a', 'd']) put(1, k);
    for (const k of ['b', 'c', 'e']) put(2, k);

    const pages = await allPages({ limit: 4 });
    expect(pages.map(names)).toEqual([['a', 'b', 'c', 'd'], ['e']]);
    expect(lists(2).slice(0, 3).map((i) => i.ContinuationToken)).toEqual([undefined, 'b', 'c']);
  });
});

describe('listFiles: cursors', () => {
  const tampered: [string, (c: string) => string][] = [
    ['garbage', () => '%%%'],
    ['an edited name', (c) => sealCursor(SECRET, 'z', '').split('.')[0] + '.' + c.split('.')[1]],
    ['a truncated MAC', (c) => c.slice(0, -2)],
    ['signed with another secret', () => sealCursor('another-secret', 'b', '')],
    ['from a listing with another prefix', () => sealCursor(SECRET, 'b', 'dir/')],
  ];
  it.each(tampered)('refuses a cursor that is %s with a 400, asking no store', async (_, forge) => {
    for (const k of ['a', 'b', 'c']) put(1, k);
    const { next } = await listFiles(deps(), { limit: 1 });
    s3mock.resetHistory();

    const err = await listFiles(deps(), { after: forge(next!) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ status: 400, message: expect.stringMatching(/^the "after" cursor /) });
    expect(s3mock.calls()).toHaveLength(0);
    expect(fake.writes).toEqual([]);
  });
});

describe('listFiles: stores that do not answer', () => {
  it('names a store that does not answer as unavailable and leaves it out of every entry, instead of calling the names missing there', async () => {
    fake.fail('bucket-2', networkError, { command: 'ListObjectsV2' });
    const a1 = put(1, 'a');
    put(2, 'a');
    put(2, 'b');

    expect(await listFiles(deps())).toEqual({
      files: [{ name: 'a', size: 1, mtime: iso(T), state: 'same', stores: { server1: copy(a1) } }],
      next: null,
      unavailable: ['server2'],
    });
    // Known from the first answers: the page is not listed a second time without it.
    expect(lists(1)).toHaveLength(1);
  });

  it('throws AllStoresUnavailableError (503) naming every store when none answers', async () => {
    fake.fail('bucket-1', networkError, { command: 'ListObjectsV2' });
    fake.fail('bucket-2', () => s3Error('SlowDown', 503), { command: 'ListObjectsV2' });
    put(1, 'a');

    const err = await listFiles(deps()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllStoresUnavailableError);
    expect(err).toMatchObject({ status: 503, unavailable: ['server1', 'server2'] });
  });

  it('lets an error that is not a store failure through instead of hiding the store as unavailable', async () => {
    fake.fail('bucket-2', () => s3Error('NotFound', 404), { command: 'ListObjectsV2' });
    put(1, 'a');
    await expect(listFiles(deps())).rejects.toMatchObject({ name: 'NotFound' });
  });

  /** server2 answers one key per page and fails the first request for a next page with `error`. */
  function failMidway(error: () => Error) {
    shortPages(2, 1);
    let failed = false;
    fake.fail('bucket-2', error, {
      command: 'ListObjectsV2',
      when: (i) => {
        if (failed || !(i as ListObjectsV2CommandInput).ContinuationToken) return false;
        return (failed = true);
      },
    });
  }

  it('leaves a store that fails midway through a page out of the whole page, even if it answers when the page is listed again', async () => {
    failMidway(networkError);
    const a1 = put(1, 'a');
    const c1 = put(1, 'c');
    for (const k of ['a', 'b', 'c']) put(2, k);

    expect(await listFiles(deps())).toEqual({
      files: [
        { name: 'a', size: 1, mtime: iso(T), state: 'same', stores: { server1: copy(a1) } },
        { name: 'c', size: 1, mtime: iso(T), state: 'same', stores: { server1: copy(c1) } },
      ],
      next: null,
      unavailable: ['server2'],
    });
  });

  it('throws an error midway that is not a store failure at once, without listing the page again', async () => {
    failMidway(() => s3Error('NotFound', 404));
    put(1, 'a');
    for (const k of ['a', 'b']) put(2, k);

    await expect(listFiles(deps())).rejects.toMatchObject({ name: 'NotFound' });
    expect(lists(1)).toHaveLength(1);
  });
});

describe('openListing', () => {
  beforeEach(() => {
    for (const k of ['k1', 'k2', 'k3', 'k4', 'k5']) put(1, k);
  });

  it('walks every page of a store in order, asking for each next one with its token', async () => {
    expect(await take(await openListing(stores[0]!, '', undefined, 2))).toEqual(['k1', 'k2', 'k3', 'k4', 'k5']);
    expect(lists(1).map((i) => [i.ContinuationToken, i.MaxKeys])).toEqual([
      [undefined, 2],
      ['k2', 2],
      ['k4', 2],
    ]);
  });

  it('starts after `after`, under the prefix', async () => {
    for (const k of ['p/a', 'p/b', 'p/c', 'q']) put(1, k);
    expect(await take(await openListing(stores[0]!, 'p/', 'p/a', 1))).toEqual(['p/b', 'p/c']);
    expect(lists(1)[0]).toMatchObject({ Prefix: 'p/', StartAfter: 'p/a', MaxKeys: 1 });
  });

  it('rejects at once when the store does not answer its first page', async () => {
    fake.fail('bucket-1', networkError, { command: 'ListObjectsV2' });
    await expect(openListing(stores[0]!, '', undefined, 2)).rejects.toMatchObject({ name: 'StoreUnavailableError', store: 'server1' });
  });

  it('with readAhead asks for the next page as soon as a page arrives, and for none after the last', async () => {
    const objects = await openListing(stores[0]!, '', undefined, 2, { readAhead: true });
    const it = objects[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ key: 'k1' });
    expect(lists(1).map((i) => i.ContinuationToken)).toEqual([undefined, 'k2']);

    expect(await take(objects)).toEqual(['k2', 'k3', 'k4', 'k5']);
    expect(lists(1).map((i) => i.ContinuationToken)).toEqual([undefined, 'k2', 'k4']);
  });

  it('without readAhead asks for the next page only once this one is used up', async () => {
    const objects = await openListing(stores[0]!, '', undefined, 2);
    const it = objects[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    expect(lists(1)).toHaveLength(1);
    expect((await it.next()).value).toMatchObject({ key: 'k3' });
    expect(lists(1)).toHaveLength(2);
    expect(await take(objects)).toEqual(['k4', 'k5']);
    expect(lists(1)).toHaveLength(3);
  });
});
