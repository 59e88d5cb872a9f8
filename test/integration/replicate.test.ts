import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomBytes } from 'node:crypto';
import { replicateNotification, type ReplicationOutcome } from '../../lib/replicate';
import { readTombstone } from '../../lib/tombstones';
import { readFile } from '../../lib/read';
import { formatMtime, META, newWriteId, writeMetadata } from '../../lib/stamps';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { awaitS3rverWrites, emulateS3Atomicity, EventTap, readJournal, type S3Notification } from '../helpers/events';

/*
 * Replication on a real s3rver, fed the notifications s3rver itself emits (flavor 's3rver':
 * raw keys in events, CopySource decoded with decodeURI), each delivered when the test says, so
 * the order of deliveries is the test's. Every write to a bucket emits an event, so "the copy's
 * own event wrote nothing" is checked by s3rver emitting nothing more.
 */

let s3: LocalS3;
let tap: EventTap;
let stores: Store[];
let deps: Deps;
const STORES = ['server1', 'server2'];
const T = Date.UTC(2026, 5, 1, 12);

beforeAll(async () => {
  s3 = await startS3rver(['server1', 'server2', 'control']);
  awaitS3rverWrites(s3);
  emulateS3Atomicity(s3);
  tap = new EventTap(s3);
  stores = STORES.map((name) => ({ name, bucket: name, s3: s3.client }));
  deps = makeDeps(stores, { flavor: 's3rver' });
});
afterAll(() => s3?.stop());
beforeEach(() => tap.take());

/** A write as the API makes it: stamped, made now unless told. */
async function put(bucket: string, key: string, body: string | Buffer, mtime: number, made = Date.now()) {
  const id = newWriteId();
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: writeMetadata({ id, madeMs: made, who: 'ann' }, mtime), ContentType: 'text/plain' }));
  return Object.assign(tap.takeOne(bucket), { id });
}
/** A write straight into a bucket, as `aws s3 cp` makes it: no stamp. */
async function putDirect(bucket: string, key: string, body: string, metadata: Record<string, string> = {}) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
  return tap.takeOne(bucket);
}
async function del(bucket: string, key: string) {
  await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  return tap.takeOne(bucket);
}
async function get(bucket: string, key: string) {
  try {
    const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { text: await res.Body!.transformToString(), etag: res.ETag!, metadata: res.Metadata ?? {}, contentType: res.ContentType };
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}
const handle = async (e: S3Notification): Promise<ReplicationOutcome> => (await replicateNotification(deps, e, { pause: async () => undefined }))[0]!;
const journalSince = async (n: number) => (await readJournal(deps.control)).slice(n);
const journalLength = async () => (await readJournal(deps.control)).length;
const nothing = { copied: [], deleted: [], waiting: [], failed: [], held: [] };

/** Handles `event` and then the events its writes caused, until none is left; returns what each did. */
async function settle(event: S3Notification) {
  const rounds: { event: string; outcome: ReplicationOutcome }[] = [];
  let pending = [event];
  while (pending.length > 0) {
    const next: S3Notification[] = [];
    for (const e of pending) {
      rounds.push({ event: `${e.Records[0]!.eventName} ${e.Records[0]!.s3.bucket.name}`, outcome: await handle(e) });
      next.push(...tap.take(STORES));
    }
    pending = next;
    if (rounds.length > 10) throw new Error('replication does not settle: ping-pong');
  }
  return rounds;
}

describe('replication of writes on s3rver events', () => {
  it('copies a put on server1 to server2 with the same bytes and the stamp of the write it copies', async () => {
    const event = await put('server1', 'doc.txt', 'first version', T, T + 5);
    const before = await journalLength();

    expect(await handle(event)).toEqual({ ...nothing, copied: ['server2'] });

    const [src, copy] = [await get('server1', 'doc.txt'), await get('server2', 'doc.txt')];
    expect(copy).toMatchObject({ text: 'first version', etag: src!.etag, contentType: 'text/plain' });
    expect(copy!.metadata).toEqual({ ...src!.metadata, [META.replicaOf]: 'server1' });
    expect(copy!.metadata).toMatchObject({ [META.id]: event.id, [META.made]: String(T + 5), [META.mtime]: formatMtime(T) });
    expect((await journalSince(before)).map((e) => [e.action, e.key, e.from, e.to, e.reason])).toEqual([['replicate', 'doc.txt', 'server1', ['server2'], 'missing on server2']]);
  });

  it("makes the copy's own event a no-op: no write to any store, nothing journalled", async () => {
    await handle(await put('server1', 'loop.txt', 'ping?', T));
    const own = tap.takeOne('server2');
    expect(own.Records[0]!.eventName).toBe('ObjectCreated:Copy');
    const before = await journalLength();

    expect(await handle(own)).toEqual(nothing);
    expect(tap.take(STORES)).toEqual([]);
    expect(await journalLength()).toBe(before);
  });

  it('replicates a modification, and settles after one copy', async () => {
    await settle(await put('server1', 'mod.txt', 'v1', T));
    const rounds = await settle(await put('server1', 'mod.txt', 'v2, longer', T + 1000));
    expect(rounds.map((r) => [r.event, r.outcome.copied])).toEqual([
      ['ObjectCreated:Put server1', ['server2']],
      ['ObjectCreated:Copy server2', []],
    ]);
    expect((await get('server2', 'mod.txt'))!.text).toBe('v2, longer');
    expect(await readFile(deps, 'mod.txt', { meta: true })).toMatchObject({ status: 'SINGLE' });
  });

  it('answers an older version that lands last with the newer one, copied back from the peer', async () => {
    await settle(await put('server1', 'race.txt', 'newer', T + 5000));
    const event = await put('server2', 'race.txt', 'older', T + 4000); // an old file, uploaded late
    const before = await journalLength();
    const rounds = await settle(event);
    expect(rounds.map((r) => [r.event, r.outcome.copied])).toEqual([
      ['ObjectCreated:Put server2', ['server2']],
      ['ObjectCreated:Copy server2', []],
    ]);
    expect([(await get('server1', 'race.txt'))!.text, (await get('server2', 'race.txt'))!.text]).toEqual(['newer', 'newer']);
    // The older file was made after the newer one: kept aside in case a late delete falls between.
    expect((await journalSince(before)).map((e) => [e.action, e.from, e.to])).toEqual([
      ['keep', 'server2', undefined],
      ['replicate', 'server1', ['server2']],
    ]);
  });

  it('stamps a write made straight into the bucket with its event time, then replicates it', async () => {
    const event = await putDirect('server1', 'plain.txt', 'aws s3 cp was here');
    const rounds = await settle(event);
    const made = Date.parse(event.Records[0]!.eventTime);
    const [one, two] = [await get('server1', 'plain.txt'), await get('server2', 'plain.txt')];
    // No mtime of its own: dated by when it was made, the event's time.
    expect(one!.metadata).toMatchObject({ [META.made]: String(made), [META.who]: 'server1 (direct)' });
    expect(one!.metadata[META.mtime]).toBeUndefined();
    expect((await readFile(deps, 'plain.txt', { meta: true }))).toMatchObject({ status: 'SINGLE', copies: [{ mtime: new Date(made).toISOString() }, { mtime: new Date(made).toISOString() }] });
    expect(two).toMatchObject({ text: 'aws s3 cp was here', metadata: { [META.id]: one!.metadata[META.id], [META.replicaOf]: 'server1' } });
    // The stamping is a copy onto itself, whose own event finds everything settled, as does the
    // copy's (made alongside it: either event may come first).
    expect(rounds.map((r) => r.event).sort()).toEqual(['ObjectCreated:Copy server1', 'ObjectCreated:Copy server2', 'ObjectCreated:Put server1']);
    expect(rounds.slice(1).map((r) => r.outcome)).toEqual([nothing, nothing]);
  });

  it('stamps a multipart upload when it completes (its event), not when it started, and replicates it', async () => {
    const body = randomBytes(6 * 1024 * 1024);
    await new Upload({ client: s3.client, params: { Bucket: 'server1', Key: 'big.bin', Body: body, Metadata: { mtime: formatMtime(T) } }, partSize: 5 * 1024 * 1024 }).done();
    const event = tap.takeOne('server1');
    expect(event.Records[0]!.eventName).toBe('ObjectCreated:Post');
    await settle(event);
    const copy = await s3.client.send(new GetObjectCommand({ Bucket: 'server2', Key: 'big.bin' }));
    expect(Buffer.from(await copy.Body!.transformToByteArray()).equals(body)).toBe(true);
    expect(copy.Metadata).toMatchObject({ [META.made]: String(Date.parse(event.Records[0]!.eventTime)), [META.mtime]: formatMtime(T) });
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
    const event = await put('server1', key, `content of ${key}`, T);
    expect(event.Records[0]!.s3.object.key).toBe(key); // s3rver sends keys raw
    const rounds = await settle(event);
    expect(rounds.map((r) => [r.event, r.outcome.copied])).toEqual([
      ['ObjectCreated:Put server1', ['server2']],
      ['ObjectCreated:Copy server2', []],
    ]);
    expect((await get('server2', key))!.text).toBe(`content of ${key}`);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'server2', Key: key }));
    expect(head.Metadata).toMatchObject({ [META.replicaOf]: 'server1' });
  });

  it('does nothing for an event whose object is gone since', async () => {
    const created = await put('server1', 'brief.txt', 'here and gone', T);
    await del('server1', 'brief.txt');
    expect(await handle(created)).toEqual(nothing);
    expect(tap.take(STORES)).toEqual([]);
    expect(await get('server2', 'brief.txt')).toBeUndefined();
  });
});

describe('replication of deletes on s3rver events', () => {
  it("raises the tombstone to a user's delete, removes the copy it made elsewhere, and knows that delete's own event", async () => {
    await settle(await put('server1', 'gone.txt', 'bye', T, Date.now() - 1000));
    const event = await del('server1', 'gone.txt');
    const before = await journalLength();

    expect(await handle(event)).toEqual({ ...nothing, deleted: ['server2'], deleteKind: 'real' });
    expect(await get('server2', 'gone.txt')).toBeUndefined();
    const tombstone = await readTombstone(deps, 'gone.txt');
    expect(tombstone).toMatchObject({ key: 'gone.txt', deletedAt: Date.parse(event.Records[0]!.eventTime), who: 'server1 (direct)' });
    expect(tombstone!.intents).toEqual([expect.objectContaining({ store: 'server2' })]);
    expect((await journalSince(before)).map((e) => [e.action, e.from, e.to])).toEqual([
      ['deleted', 'server1', undefined],
      ['delete', undefined, ['server2']],
    ]);

    // server2's own delete event is the echo of that delete: it consumes the intent, nothing more.
    const echo = tap.takeOne('server2');
    expect(await handle(echo)).toEqual({ ...nothing, deleteKind: 'echo' });
    expect((await readTombstone(deps, 'gone.txt'))!.intents[0]!.event).toEqual({ seq: echo.Records[0]!.s3.object.sequencer, time: Date.parse(echo.Records[0]!.eventTime) });
    // A duplicate delivery of the echo is known by its sequencer.
    expect(await handle(echo)).toEqual({ ...nothing, deleteKind: 'echo' });
    expect(tap.take(STORES)).toEqual([]);
  });

  it('keeps a copy made after the delete, wherever it is, and spreads it', async () => {
    await settle(await put('server1', 'keep.txt', 'old', T, Date.now() - 5000));
    const event = await del('server1', 'keep.txt');
    const rewrite = await put('server2', 'keep.txt', 'written after the delete', T - 9000, Date.now() + 1);
    expect(await handle(event)).toMatchObject({ deleted: [], deleteKind: 'real' });
    expect((await get('server2', 'keep.txt'))!.text).toBe('written after the delete');
    await settle(rewrite);
    expect((await get('server1', 'keep.txt'))!.text).toBe('written after the delete');
  });

  it('does not bring back a delete that lands before the copy event is handled', async () => {
    await handle(await put('server1', 'undo.txt', 'short-lived', T, Date.now() - 1000));
    const copied = tap.takeOne('server2');
    const removed = await del('server1', 'undo.txt');

    expect(await handle(copied)).toEqual(nothing); // a copy's event never fills server1's gap
    expect(tap.take(STORES)).toEqual([]);
    expect(await handle(removed)).toMatchObject({ deleted: ['server2'], deleteKind: 'real' });
    await settle(tap.takeOne('server2'));
    expect([await get('server1', 'undo.txt'), await get('server2', 'undo.txt')]).toEqual([undefined, undefined]);
  });
});
