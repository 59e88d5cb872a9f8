import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandInput,
  type ListObjectsV2CommandInput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/core/serde';
import { mockClient } from 'aws-sdk-client-mock';
import { Readable } from 'node:stream';
import { appendEvent, readEvents, SETTLE_MS } from '../../lib/journal';
import { BadRequestError } from '../../lib/errors';
import type { JournalEvent } from '../../lib/types';
import { s3Error } from '../helpers/mock-s3';

const control = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
const mock = mockClient(control);
const deps = { control: { bucket: 'control', s3: control } };
const T = Date.UTC(2026, 0, 2, 3, 4, 5);

/** The control bucket as S3 keeps it: keys listed in byte order, StartAfter and MaxKeys honoured. */
let bucket: Map<string, { body: string; contentType?: string }>;

beforeEach(() => {
  bucket = new Map();
  mock.reset();
  mock.on(PutObjectCommand).callsFake(async (i: PutObjectCommandInput) => {
    bucket.set(i.Key!, { body: String(i.Body), contentType: i.ContentType });
    return { ETag: '"e"' };
  });
  mock.on(ListObjectsV2Command).callsFake(async (i: ListObjectsV2CommandInput) => {
    const keys = [...bucket.keys()]
      .filter((k) => k.startsWith(i.Prefix ?? '') && (!i.StartAfter || Buffer.compare(Buffer.from(k), Buffer.from(i.StartAfter)) > 0))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const max = i.MaxKeys ?? 1000;
    return { Contents: keys.slice(0, max).map((Key) => ({ Key })), IsTruncated: keys.length > max, KeyCount: Math.min(max, keys.length) };
  });
  mock.on(GetObjectCommand).callsFake(async (i: GetObjectCommandInput) => {
    const o = bucket.get(i.Key!);
    if (!o) throw s3Error('NoSuchKey', 404);
    return { Body: sdkStreamMixin(Readable.from([Buffer.from(o.body)])) };
  });
});

/** Appends `n` events at T, T+1, … ms, in a shuffled order of writing. */
async function appendMany(n: number): Promise<JournalEvent[]> {
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ((a * 7919) % n) - ((b * 7919) % n));
  const written = await Promise.all(order.map((i) => appendEvent(deps, { action: 'replicate', key: `k${i}`, time: T + i })));
  return written.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Pages through everything from `after` as `dfs watch` does, at a fixed `now`. */
async function readAll(after: string | undefined, now: number) {
  const pages = [];
  let cursor = after;
  for (;;) {
    const page = await readEvents(deps, cursor, now);
    pages.push(page);
    if (!page.more) return pages;
    cursor = page.next!;
  }
}

describe('appendEvent', () => {
  it('writes one JSON object named by its time, and returns it with id and ISO time', async () => {
    const e = await appendEvent(deps, { action: 'delete', key: 'a b+c.txt', from: 'server1', to: ['server2'], reason: 'deleted', time: T });
    expect(e).toEqual({
      id: expect.stringMatching(/^001767323045000-[0-9a-f]{8}$/),
      time: new Date(T).toISOString(),
      action: 'delete', key: 'a b+c.txt', from: 'server1', to: ['server2'], reason: 'deleted',
    });
    expect([...bucket.keys()]).toEqual([`journal/${e.id}`]);
    expect(JSON.parse(bucket.get(`journal/${e.id}`)!.body)).toEqual(e);
    expect(bucket.get(`journal/${e.id}`)!.contentType).toBe('application/json');
  });

  it('gives events of the same millisecond distinct ids', async () => {
    const ids = await Promise.all(Array.from({ length: 50 }, () => appendEvent(deps, { action: 'skip', key: 'k', time: T })));
    expect(new Set(ids.map((e) => e.id)).size).toBe(50);
  });

  it('stamps the current time when none is given', async () => {
    const before = Date.now();
    const e = await appendEvent(deps, { action: 'skip', key: 'k' });
    expect(Date.parse(e.time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(e.time)).toBeLessThanOrEqual(Date.now());
  });
});

describe('readEvents', () => {
  it('answers events oldest first, whatever the order they were written in', async () => {
    const written = await appendMany(20);
    const page = await readEvents(deps, undefined, T + 10_000);
    expect(page.events).toEqual(written);
    expect(page.events.map((e) => e.key)).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
    expect(page).toMatchObject({ next: written[19]!.id, more: false });
  });

  it('pages with the `after` cursor, 200 at a time, every event exactly once', async () => {
    const written = await appendMany(450);
    const pages = await readAll(undefined, T + 10_000);
    expect(pages.map((p) => [p.events.length, p.more])).toEqual([[200, true], [200, true], [50, false]]);
    expect(pages.flatMap((p) => p.events)).toEqual(written);
    expect(pages.map((p) => p.next)).toEqual([written[199]!.id, written[399]!.id, written[449]!.id]);
  });

  it('answers an empty page after the last event, keeping the cursor where it was', async () => {
    const written = await appendMany(3);
    expect(await readEvents(deps, written[2]!.id, T + 10_000)).toEqual({ events: [], next: written[2]!.id, more: false });
    expect(await readEvents(deps, undefined, T + 10_000)).toMatchObject({ events: written, more: false });
  });

  it('starts a reader without a cursor one minute back', async () => {
    await appendEvent(deps, { action: 'old', key: 'k', time: T - 61_000 });
    const recent = await appendEvent(deps, { action: 'recent', key: 'k', time: T - 59_000 });
    expect((await readEvents(deps, undefined, T)).events).toEqual([recent]);
    expect(await readEvents(deps, undefined, T + 10 * 60_000)).toEqual({ events: [], next: null, more: false });
  });

  it(`withholds events younger than SETTLE_MS (${SETTLE_MS} ms), then hands them out in order`, async () => {
    const now = T + 1000;
    const settled = await appendEvent(deps, { action: 'a', key: 'k', time: now - SETTLE_MS - 1 });
    const edge = await appendEvent(deps, { action: 'b', key: 'k', time: now - SETTLE_MS });
    const young = await appendEvent(deps, { action: 'c', key: 'k', time: now - SETTLE_MS + 1 });
    const future = await appendEvent(deps, { action: 'd', key: 'k', time: now + 50 });

    const first = await readEvents(deps, undefined, now);
    expect(first).toEqual({ events: [settled, edge], next: edge.id, more: false });
    // A writer that was slow lands an older event now: still seen, because the cursor waited.
    const late = await appendEvent(deps, { action: 'late', key: 'k', time: now - SETTLE_MS + 1 });
    const second = await readEvents(deps, first.next!, now + SETTLE_MS + 100);
    expect(second.events.map((e) => e.id)).toEqual([young, late, future].map((e) => e.id).sort());
  });

  it('refuses an `after` that is not an event id with BadRequestError, without touching S3', async () => {
    for (const after of ['abc', '1767323045000', '001767323045000-XYZ12345', '../tombstones/x', '001767323045000-0123456789', ' 001767323045000-01234567']) {
      await expect(readEvents(deps, after, T)).rejects.toBeInstanceOf(BadRequestError);
    }
    await expect(readEvents(deps, 'abc', T)).rejects.toThrow('"after" must be an event id from a previous answer');
    expect(mock.calls()).toHaveLength(0);
  });

  it('reads only journal/ keys, not tombstones beside them', async () => {
    bucket.set('tombstones/k', { body: '{}' });
    bucket.set('locks/k', { body: '{}' });
    const e = await appendEvent(deps, { action: 'a', key: 'k', time: T });
    expect((await readEvents(deps, undefined, T + 1000)).events).toEqual([e]);
    expect(mock).toHaveReceivedCommandWith(ListObjectsV2Command, { Bucket: 'control', Prefix: 'journal/', MaxKeys: 200 });
  });
});
