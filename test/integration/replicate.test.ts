import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomBytes } from 'node:crypto';
import { handleS3Event } from '../../handlers/replicate';
import { REPLICA_OF, SOURCE_ETAG } from '../../lib/replicate';
import { readTombstone } from '../../lib/tombstones';
import { readFile } from '../../lib/read';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { awaitS3rverWrites, EventTap, readJournal, type S3Notification } from '../helpers/events';

/*
 * Replication on a real s3rver, fed the notifications s3rver itself emits (flavor 's3rver':
 * raw keys in events, CopySource decoded with decodeURI). Every write to a bucket emits an
 * event, so "the copy's own event wrote nothing" is checked by s3rver emitting nothing more.
 */

let s3: LocalS3;
let tap: EventTap;
let stores: Store[];
let deps: Deps;
const STORES = ['server1', 'server2'];

beforeAll(async () => {
  s3 = await startS3rver(['server1', 'server2', 'control']);
  awaitS3rverWrites(s3); // else a read right after a PUT's event may find the file not yet written
  tap = new EventTap(s3);
  stores = STORES.map((name) => ({ name, bucket: name, s3: s3.client }));
  deps = makeDeps(stores, { flavor: 's3rver' });
});
afterAll(() => s3?.stop());
beforeEach(() => tap.take());

async function put(bucket: string, key: string, body: string | Buffer, mtime: number) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime: String(mtime) }, ContentType: 'text/plain' }));
  return tap.takeOne(bucket);
}
async function del(bucket: string, key: string) {
  await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  return tap.takeOne(bucket);
}
async function get(bucket: string, key: string) {
  try {
    const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { text: await res.Body!.transformToString(), etag: res.ETag!, metadata: res.Metadata ?? {}, lastModified: res.LastModified!, contentType: res.ContentType };
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}
const journalSince = async (n: number) => (await readJournal(deps.control)).slice(n);
const journalLength = async () => (await readJournal(deps.control)).length;

/** Handles `event` and then the events its writes caused, until none is left; returns what each did. */
async function settle(event: S3Notification) {
  const rounds = [];
  let pending = [event];
  while (pending.length > 0) {
    const next: S3Notification[] = [];
    for (const e of pending) {
      rounds.push({ event: `${e.Records[0]!.eventName} ${e.Records[0]!.s3.bucket.name}`, outcome: await handleS3Event(deps, e) });
      next.push(...tap.take(STORES));
    }
    pending = next;
    if (rounds.length > 10) throw new Error('replication does not settle: ping-pong');
  }
  return rounds;
}

describe('handleS3Event on s3rver events', () => {
  it('copies a put on server1 to server2 with the same bytes, mtime and a replica tag', async () => {
    const event = await put('server1', 'doc.txt', 'first version', 1_000);
    expect(event.Records[0]).toMatchObject({ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'server1' }, object: { key: 'doc.txt' } } });
    const before = await journalLength();

    expect(await handleS3Event(deps, event)).toEqual([{ copied: ['server2'], deleted: [], skipped: [], failed: [] }]);

    const [src, copy] = [await get('server1', 'doc.txt'), await get('server2', 'doc.txt')];
    expect(copy).toMatchObject({ text: 'first version', etag: src!.etag, contentType: 'text/plain' });
    expect(copy!.metadata).toEqual({ mtime: '1000', [REPLICA_OF]: 'server1', [SOURCE_ETAG]: src!.etag.replace(/"/g, '') });
    expect((await journalSince(before)).map((e) => [e.action, e.key, e.from, e.to, e.reason])).toEqual([
      ['replicate', 'doc.txt', 'server1', ['server2'], 'created'],
    ]);
  });

  it("makes the copy's own event a no-op: no write to any store, nothing journalled", async () => {
    const copyEvent = tap.take(); // nothing left over from the previous test
    expect(copyEvent).toEqual([]);
    const event = await put('server1', 'loop.txt', 'ping?', 2_000);
    await handleS3Event(deps, event);
    const own = tap.takeOne('server2');
    expect(own.Records[0]!.eventName).toBe('ObjectCreated:Copy');
    const [before, lastModified] = [await journalLength(), (await get('server1', 'loop.txt'))!.lastModified];

    expect(await handleS3Event(deps, own)).toEqual([{ copied: [], deleted: [], skipped: ['server1'], failed: [] }]);
    expect(tap.take(STORES)).toEqual([]);
    expect(await journalLength()).toBe(before);
    expect((await get('server1', 'loop.txt'))!.lastModified).toEqual(lastModified);
  });

  it('replicates a modification, and settles after one copy', async () => {
    await settle(await put('server1', 'mod.txt', 'v1', 1_000));
    const rounds = await settle(await put('server1', 'mod.txt', 'v2, longer', 2_000));
    expect(rounds.map((r) => [r.event, r.outcome[0]!.copied, r.outcome[0]!.skipped])).toEqual([
      ['ObjectCreated:Put server1', ['server2'], []],
      ['ObjectCreated:Put server2', [], ['server1']], // streamed over the old copy: a PUT on s3rver
    ]);
    const [src, copy] = [await get('server1', 'mod.txt'), await get('server2', 'mod.txt')];
    expect(copy).toMatchObject({ text: 'v2, longer', metadata: { mtime: '2000', [REPLICA_OF]: 'server1' } });
    expect(copy!.etag).toBe(src!.etag);
    expect(await readFile(deps, 'mod.txt', { meta: true })).toMatchObject({ status: 'SINGLE' });
  });

  it('replicates a modification made on server2 back to server1', async () => {
    await settle(await put('server1', 'back.txt', 'from one', 1_000));
    await settle(await put('server2', 'back.txt', 'from two', 3_000));
    expect(await get('server1', 'back.txt')).toMatchObject({ text: 'from two', metadata: { mtime: '3000', [REPLICA_OF]: 'server2' } });
  });

  it('answers an older version that lands last with the newer one, copied back from the peer', async () => {
    await settle(await put('server1', 'race.txt', 'newer', 5_000));
    // An older version lands on server2 after the copy (a slow upload with an old file's mtime).
    const event = await put('server2', 'race.txt', 'older', 4_000);
    const before = await journalLength();
    const rounds = await settle(event);
    expect(rounds.map((r) => [r.event, r.outcome[0]])).toEqual([
      ['ObjectCreated:Put server2', { copied: ['server2'], deleted: [], skipped: [], failed: [] }],
      ['ObjectCreated:Put server2', { copied: [], deleted: [], skipped: ['server1'], failed: [] }],
    ]);
    expect([(await get('server1', 'race.txt'))!.text, (await get('server2', 'race.txt'))!.text]).toEqual(['newer', 'newer']);
    expect((await get('server2', 'race.txt'))!.metadata).toMatchObject({ mtime: '5000', [REPLICA_OF]: 'server1' });
    expect((await journalSince(before)).map((e) => [e.action, e.from, e.to])).toEqual([['replicate', 'server1', ['server2']]]);
  });

  it('replicates a multipart upload (ObjectCreated:Post on s3rver) and recognises its copy despite the ETags', async () => {
    const body = randomBytes(6 * 1024 * 1024);
    await new Upload({ client: s3.client, params: { Bucket: 'server1', Key: 'big.bin', Body: body, Metadata: { mtime: '7000' } }, partSize: 5 * 1024 * 1024 }).done();
    const event = tap.takeOne('server1');
    expect(event.Records[0]!.eventName).toBe('ObjectCreated:Post');
    const rounds = await settle(event);
    expect(rounds.map((r) => r.outcome[0]!.copied)).toEqual([['server2'], []]);
    const copy = await s3.client.send(new GetObjectCommand({ Bucket: 'server2', Key: 'big.bin' }));
    expect(Buffer.from(await copy.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  it('deletes server2 copy on a delete from server1 and leaves a tombstone at the event time', async () => {
    await settle(await put('server1', 'gone.txt', 'bye', 1_000));
    const event = await del('server1', 'gone.txt');
    expect(event.Records[0]!.eventName).toBe('ObjectRemoved:Delete');
    const before = await journalLength();

    expect(await handleS3Event(deps, event)).toEqual([{ copied: [], deleted: ['server2'], skipped: [], failed: [] }]);
    expect(await get('server2', 'gone.txt')).toBeUndefined();
    expect(await readTombstone(deps, 'gone.txt')).toEqual({ key: 'gone.txt', time: Date.parse(event.Records[0]!.eventTime), who: 'server1 (event)', echoes: { server2: expect.any(Number) } });
    expect((await journalSince(before)).map((e) => [e.action, e.from, e.to, e.reason])).toEqual([['delete', 'server1', ['server2'], 'deleted']]);

    // server2's own delete event finds nothing left to delete anywhere.
    const echo = tap.takeOne('server2');
    expect(await handleS3Event(deps, echo)).toEqual([{ copied: [], deleted: [], skipped: ['server1'], failed: [] }]);
    expect(tap.take(STORES)).toEqual([]);
  });

  it("keeps server2's copy when it was written after the delete, and journals the conflict", async () => {
    await settle(await put('server1', 'keep.txt', 'old', 1_000));
    const event = await del('server1', 'keep.txt');
    tap.take(); // server1's delete is handled below, before server2's new write is
    const rewrite = await put('server2', 'keep.txt', 'written after the delete', 9_000);
    // S3 dates writes to the second (Last-Modified), events to the millisecond: to be sure
    // the write above is "after" the delete at that precision, the delete's event is delivered
    // as if it had happened two seconds earlier (S3 events do arrive that late).
    const late = structuredClone(event);
    late.Records[0]!.eventTime = new Date(Date.parse(event.Records[0]!.eventTime) - 2_000).toISOString();
    const before = await journalLength();

    expect(await handleS3Event(deps, late)).toEqual([{ copied: [], deleted: [], skipped: ['server2'], failed: [] }]);
    expect((await get('server2', 'keep.txt'))!.text).toBe('written after the delete');
    expect(tap.take(STORES)).toEqual([]);
    expect((await journalSince(before)).map((e) => [e.action, e.from, e.to, e.reason])).toEqual([
      ['conflict', 'server1', ['server2'], expect.stringMatching(/^server2 written after the delete \(.*\): kept$/)],
    ]);
    // Then the rewrite's own event brings it back to server1.
    await settle(rewrite);
    expect((await get('server1', 'keep.txt'))!.text).toBe('written after the delete');
  });

  it("does not undo a delete that lands before the copy's own event is handled", async () => {
    await handleS3Event(deps, await put('server1', 'undo.txt', 'short-lived', 1_000));
    const copied = tap.takeOne('server2');
    const removed = await del('server1', 'undo.txt'); // the user deletes it before replication settles

    expect(await handleS3Event(deps, copied)).toEqual([{ copied: [], deleted: [], skipped: ['server1'], failed: [] }]);
    expect(tap.take(STORES)).toEqual([]); // server1's copy is not brought back
    expect(await handleS3Event(deps, removed)).toEqual([{ copied: [], deleted: ['server2'], skipped: [], failed: [] }]);
    expect([await get('server1', 'undo.txt'), await get('server2', 'undo.txt')]).toEqual([undefined, undefined]);
    await settle(tap.takeOne('server2'));
    expect([await get('server1', 'undo.txt'), await get('server2', 'undo.txt')]).toEqual([undefined, undefined]);
  });

  it('skips events for objects already gone, writing nothing to any store', async () => {
    const created = await put('server1', 'brief.txt', 'here and gone', 1_000);
    const removed = await del('server1', 'brief.txt');
    expect(await handleS3Event(deps, created)).toEqual([{ copied: [], deleted: [], skipped: [], failed: [] }]);
    expect(await handleS3Event(deps, removed)).toEqual([{ copied: [], deleted: [], skipped: ['server2'], failed: [] }]);
    expect(tap.take(STORES)).toEqual([]);
    expect(await get('server2', 'brief.txt')).toBeUndefined();
    const journal = await readJournal(deps.control);
    expect(journal.filter((e) => e.key === 'brief.txt').map((e) => e.action)).toEqual(['skip']);
  });

  it('skips a delete event when the object has been created again since', async () => {
    await put('server1', 'again.txt', 'one', 1_000);
    const removed = await del('server1', 'again.txt');
    await put('server1', 'again.txt', 'two', 2_000);
    expect(await handleS3Event(deps, removed)).toEqual([{ copied: [], deleted: [], skipped: ['server2'], failed: [] }]);
    expect(await readTombstone(deps, 'again.txt')).toBeUndefined();
    expect(tap.take(STORES)).toEqual([]);
  });

  it.each([
    ['a space', 'with space.txt'],
    ['a plus', 'a+b.txt'],
    ['a percent', '100% sure %20 %2B.txt'],
    ['unicode', 'ünïcödé/€ 📄.txt'],
    ['a hash', 'notes #1.txt'],
    ['a question mark', 'why?.txt'],
    ['all of them, in folders', 'dir one/a+b %25 #? ü/x&y=z;.txt'],
  ])('copies a key with %s on s3rver, byte for byte, and its copy event finds it equal', async (_, key) => {
    const event = await put('server1', key, `content of ${key}`, 1_000);
    expect(event.Records[0]!.s3.object.key).toBe(key); // s3rver sends keys raw
    const rounds = await settle(event);
    expect(rounds.map((r) => [r.event, r.outcome[0]!.copied])).toEqual([
      ['ObjectCreated:Put server1', ['server2']],
      ['ObjectCreated:Copy server2', []],
    ]);
    expect((await get('server2', key))!.text).toBe(`content of ${key}`);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'server2', Key: key }));
    expect(head.Metadata).toMatchObject({ [REPLICA_OF]: 'server1' });
  });
});
