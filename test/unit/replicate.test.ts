import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, type CopyObjectCommandInput } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { ATTEMPTS, replicateEvent, replicateNotification, requesterOf, type ObjectEvent } from '../../lib/replicate';
import { applyKeyPlan, observeKey, planKey } from '../../lib/settle';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { formatMtime, META, uploadMetadata } from '../../lib/stamps';
import { tombstoneKey, type Tombstone } from '../../lib/tombstones';
import type { JournalEvent } from '../../lib/types';
import { handler } from '../../handlers/replicate';
import { logger } from '../../handlers/http';
import { makeDeps } from '../helpers/deps';
import { ConditionalS3, precondition, T, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError } from '../helpers/mock-s3';

/*
 * Replication against a ConditionalS3: S3 as it answers conditional writes, so these tests show
 * that replication never overwrites a write that landed after its HEAD, stamps what was written
 * around dfs, and tells its own deletes' events from users' deletes by their intents.
 */

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);

// handlers/replicate.ts takes its deps from handlers/deps.ts; here it gets the test's.
let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

/** server1..3 on bucket-1..3, one endpoint (so copies stay inside S3); the journal on `control`. */
const stores: Store[] = [1, 2, 3].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
const deps = (over: Partial<Deps> = {}, n = 2) => makeDeps(stores.slice(0, n), { control: { bucket: 'control', s3: client }, flavor: 'aws', ...over });

const journal = () => fake.written<JournalEvent>('journal/');
const tombstones = () => fake.records<Tombstone>('tombstones/');
const steps = () => journal().map((e) => [e.action, e.from, e.to?.join(), e.reason]);
const copies = () => s3mock.commandCalls(CopyObjectCommand).map((c) => c.args[0].input);
const storeWrites = () => fake.writes.filter((w) => !w.includes(' control/'));
const iso = (ms: number) => new Date(ms).toISOString();

let seq = 0x100;
const nextSeq = () => (seq++).toString(16).toUpperCase().padStart(4, '0');
const created = (store: Store, key: string, o: { time?: number; seq?: string; etag?: string } = {}): ObjectEvent => ({
  store, key, kind: 'created', time: o.time ?? T, seq: o.seq ?? nextSeq(), ...(o.etag ? { etag: o.etag } : {}),
});
const removed = (store: Store, key: string, time: number, s = nextSeq()): ObjectEvent => ({ store, key, kind: 'removed', time, seq: s });

/** An S3 notification as AWS sends it: one record, key URL-encoded with "+" for space. */
const notification = (eventName: string, bucket: string, key: string, o: { time?: number; sequencer?: string; eTag?: string } = {}) => ({
  Records: [{
    eventVersion: '2.1', eventSource: 'aws:s3', awsRegion: 'us-east-1', eventTime: iso(o.time ?? T), eventName,
    s3: {
      s3SchemaVersion: '1.0', bucket: { name: bucket },
      object: { key: encodeURIComponent(key).replace(/%20/g, '+'), size: 1, sequencer: o.sequencer ?? nextSeq(), ...(o.eTag ? { eTag: o.eTag } : {}) },
    },
  }],
});

/** Pauses between in-process attempts, recorded instead of waited for. */
let pauses: number[];
const pause = async (n: number) => void pauses.push(n);
beforeEach(() => (pauses = []));
const handle = (d: Deps, event: unknown) => replicateNotification(d, event, { pause });

const nothing = { copied: [], deleted: [], held: [], waiting: [], failed: [] };

describe('replicateEvent: a write', () => {
  it('copies a stamped original to a peer that has none, conditional on its absence, carrying the write\'s stamp', async () => {
    const src = fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T - 500, made: T, id: 'w1', extra: { owner: 'ann' } });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: ['server2'], deleted: [], held: [], waiting: [], failed: [] });
    expect(copies()).toEqual([{
      Bucket: 'bucket-2', Key: 'a.txt', CopySource: 'bucket-1/a.txt', CopySourceIfMatch: src.etag, MetadataDirective: 'REPLACE',
      Metadata: { owner: 'ann', mtime: formatMtime(T - 500), 'dfs-made': String(T), 'dfs-id': 'w1', 'dfs-who': 'alice', 'dfs-replica-of': 'server1' },
      IfNoneMatch: '*',
    }]);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('hello');
    expect(steps()).toEqual([['replicate', 'server1', 'server2', 'missing on server2']]);
  });

  it('overwrites an older peer only if it still holds the version it was compared with (IfMatch)', async () => {
    fake.stamped('bucket-1', 'a.txt', 'new', { mtime: T });
    const old = fake.stamped('bucket-2', 'a.txt', 'old', { mtime: T - 1000 });
    await replicateEvent(deps(), created(stores[0]!, 'a.txt'));
    expect(copies()).toEqual([expect.objectContaining({ Bucket: 'bucket-2', IfMatch: old.etag })]);
    expect(copies()[0]).not.toHaveProperty('IfNoneMatch');
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('new');
    expect(steps()).toEqual([['replicate', 'server1', 'server2', `server1 newer (${iso(T)} vs server2 ${iso(T - 1000)})`]]);
  });

  it('never overwrites a newer peer: copies the newer version back over the older write instead', async () => {
    const old = fake.stamped('bucket-1', 'a.txt', 'old', { mtime: T - 1000 });
    const newer = fake.stamped('bucket-2', 'a.txt', 'new', { mtime: T });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: ['server1'], deleted: [], held: [], waiting: [], failed: [] });
    expect(copies()).toEqual([expect.objectContaining({
      Bucket: 'bucket-1', CopySource: 'bucket-2/a.txt', IfMatch: old.etag,
      Metadata: { ...newer.metadata, [META.replicaOf]: 'server2' },
    })]);
    expect([fake.textOf('bucket-1', 'a.txt'), fake.textOf('bucket-2', 'a.txt')]).toEqual(['new', 'new']);
    expect(steps()).toEqual([['replicate', 'server2', 'server1', `server2 newer (${iso(T)} vs server1 ${iso(T - 1000)})`]]);
  });

  it('does not copy back over a write that landed since its HEAD (412): it looks again and spreads that write', async () => {
    fake.stamped('bucket-1', 'a.txt', 'old', { mtime: T - 1000 });
    fake.stamped('bucket-2', 'a.txt', 'new', { mtime: T });
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-1' && fake.textOf('bucket-1', 'a.txt') === 'old') fake.stamped('bucket-1', 'a.txt', 'newest', { mtime: T + 1000 });
    });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: ['server2'], deleted: [], held: [], waiting: [], failed: [] });
    expect([fake.textOf('bucket-1', 'a.txt'), fake.textOf('bucket-2', 'a.txt')]).toEqual(['newest', 'newest']);
  });

  it('makes the event of its own copy a no-op that writes nothing, not even the journal', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    await replicateEvent(deps(), created(stores[0]!, 'a.txt'));
    fake.writes.length = 0;
    expect(await replicateEvent(deps(), created(stores[1]!, 'a.txt'))).toEqual(nothing);
    expect(fake.writes).toEqual([]);
  });

  it('does nothing, and journals nothing, when the source is gone since its event', async () => {
    fake.stamped('bucket-2', 'a.txt', 'peer', { mtime: T });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual(nothing);
    expect(fake.writes).toEqual([]);
  });

  it('URL-encodes CopySource per segment on AWS', async () => {
    const key = 'dir one/a+b%c#?€ & ü.txt';
    fake.stamped('bucket-1', key, 'x', { mtime: T });
    await replicateEvent(deps({ flavor: 'aws' }), created(stores[0]!, key));
    expect(copies()[0]!.CopySource).toBe('bucket-1/dir%20one/a%2Bb%25c%23%3F%E2%82%AC%20%26%20%C3%BC.txt');
    expect(fake.textOf('bucket-2', key)).toBe('x');
  });

  it('encodes CopySource with encodeURI for s3rver, which decodes it with decodeURI', async () => {
    const key = 'dir one/a+b%c#?€ & ü.txt';
    fake.stamped('bucket-1', key, 'x', { mtime: T });
    await replicateEvent(deps({ flavor: 's3rver' }), created(stores[0]!, key));
    expect(copies()[0]!.CopySource).toBe('bucket-1/dir%20one/a+b%25c#?%E2%82%AC%20&%20%C3%BC.txt');
    expect(decodeURI(copies()[0]!.CopySource!.slice('bucket-1/'.length))).toBe(key);
  });

  it('on s3rver, copies over an existing object inside S3 too (the local s3rver stores a fresh MD5 on a REPLACE copy)', async () => {
    fake.stamped('bucket-1', 'a.txt', 'new', { mtime: T });
    const old = fake.stamped('bucket-2', 'a.txt', 'old', { mtime: T - 1000 });
    expect(await replicateEvent(deps({ flavor: 's3rver' }), created(stores[0]!, 'a.txt'))).toMatchObject({ copied: ['server2'] });
    expect(s3mock).toHaveReceivedCommandWith(CopyObjectCommand, { Bucket: 'bucket-2', Key: 'a.txt', IfMatch: old.etag });
    expect(storeWrites()).toEqual(['CopyObject bucket-2/a.txt']); // no streamed PutObject
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('new');
    expect(fake.has('bucket-2', 'a.txt')!.etag).toBe(fake.has('bucket-1', 'a.txt')!.etag);
  });

  it('streams through this process, still conditional, when the stores are on different endpoints', async () => {
    const other = new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
    const otherMock = mockClient(other);
    const otherFake = new ConditionalS3(otherMock);
    try {
      const src = fake.stamped('bucket-1', 'a.txt', 'far away', { mtime: T, id: 'w1' });
      const d = deps();
      d.stores = [d.stores[0]!, { ...d.stores[1]!, s3: other }];
      expect(await replicateEvent(d, created(d.stores[0]!, 'a.txt'))).toMatchObject({ copied: ['server2'] });
      expect(s3mock).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'bucket-1', Key: 'a.txt', IfMatch: src.etag });
      expect(otherMock).toHaveReceivedCommandWith(PutObjectCommand, {
        Bucket: 'bucket-2', Key: 'a.txt', IfNoneMatch: '*', Metadata: { ...src.metadata, [META.replicaOf]: 'server1' },
      });
      expect(otherFake.textOf('bucket-2', 'a.txt')).toBe('far away');
    } finally {
      otherMock.restore();
    }
  });

  it('copies to every peer that needs it and reports a peer that is down as failed', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    fake.fail('bucket-3', networkError);
    expect(await replicateEvent(deps({}, 3), created(stores[0]!, 'a.txt'))).toEqual({ copied: ['server2'], deleted: [], held: [], waiting: [], failed: ['server3'] });
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('hello');
  });

  it("never fills a gap from a replica's event: the store may have lost it to a delete whose event is on its way", async () => {
    fake.stamped('bucket-2', 'a.txt', 'hello', { mtime: T, id: 'w1', extra: { [META.replicaOf]: 'server1' } });
    expect(await replicateEvent(deps({}, 3), created(stores[1]!, 'a.txt'))).toEqual(nothing);
    expect(storeWrites()).toEqual([]);
  });

  it("leaves a store the copy's event finds empty to the original write's event (three stores)", async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    const d = deps({}, 3);
    // server1's event has copied to server2 and not yet to server3.
    await replicateEvent({ ...d, stores: d.stores.slice(0, 2) }, created(d.stores[0]!, 'a.txt'));
    fake.writes.length = 0;
    expect(await replicateEvent(d, created(d.stores[1]!, 'a.txt'))).toEqual(nothing);
    expect(storeWrites()).toEqual([]);
    expect(await replicateEvent(d, created(d.stores[0]!, 'a.txt'))).toMatchObject({ copied: ['server3'] });
  });

  it("fills gaps only with the event's own write: an older write's event leaves them to the newer write's event", async () => {
    fake.stamped('bucket-1', 'a.txt', 'older', { mtime: T - 1000 });
    fake.stamped('bucket-2', 'a.txt', 'newer', { mtime: T });
    const out = await replicateEvent(deps({}, 3), created(stores[0]!, 'a.txt'));
    expect(out).toEqual({ copied: ['server1'], deleted: [], held: [], waiting: [], failed: [] });
    expect(fake.has('bucket-3', 'a.txt')).toBeUndefined();
  });

  it("does not bring back a copy's source that was deleted since (the delete's event removes the copy)", async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T - 1000 });
    await replicateEvent(deps(), created(stores[0]!, 'a.txt'));
    fake.delete('bucket-1', 'a.txt'); // a user deletes it on server1 before the copy's event runs
    fake.writes.length = 0;
    expect(await replicateEvent(deps(), created(stores[1]!, 'a.txt'))).toEqual(nothing);
    expect(storeWrites()).toEqual([]);
    expect(await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T))).toMatchObject({ deleted: ['server2'], deleteKind: 'real' });
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });
});

describe('replicateEvent: a version written without dfs (adoption)', () => {
  // S3 dates a write to the second it started in: never after the event of its own completion.
  const direct = () => fake.direct('bucket-1', 'a.txt', 'raw', { mtime: T - 60_000, lastModified: T - 1000 });
  /** The event of the version `o` on server1: its ETag as S3 events carry it (no quotes). */
  const eventOf = (o: { etag: string }, over: { time?: number; seq?: string } = {}) => created(stores[0]!, 'a.txt', { ...over, etag: o.etag.replace(/"/g, '') });

  it('stamps it in place (CopyObject onto itself, IfMatch), made at the event time, then replicates it with that stamp', async () => {
    const raw = direct();
    const out = await replicateEvent(deps(), eventOf(raw, { time: T + 5, seq: '00A5' }));
    expect(out).toEqual({ copied: ['server2'], deleted: [], held: [], waiting: [], failed: [] });
    const adopt = copies().find((c) => c.Bucket === 'bucket-1');
    const copy = copies().find((c) => c.Bucket === 'bucket-2');
    expect(copies()).toHaveLength(2);
    expect(adopt).toEqual({
      Bucket: 'bucket-1', Key: 'a.txt', CopySource: 'bucket-1/a.txt', CopySourceIfMatch: raw.etag, MetadataDirective: 'REPLACE', IfMatch: raw.etag,
      Metadata: { mtime: formatMtime(T - 60_000), 'dfs-made': String(T + 5), 'dfs-id': expect.stringMatching(/^[0-9a-f]{24}$/), 'dfs-who': 'server1 (direct)', 'dfs-seq': '00A5' },
    });
    expect(copy).toMatchObject({ Bucket: 'bucket-2', IfNoneMatch: '*', Metadata: { ...adopt!.Metadata, [META.replicaOf]: 'server1' } });
    expect(fake.has('bucket-1', 'a.txt')!.metadata).toEqual(adopt!.Metadata);
    // In the journal's own order (by id): adoption first, although the copy may be written first.
    const byId = journal().sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(byId.map((e) => [e.action, e.from, e.to?.join(), e.reason])).toEqual([
      ['adopt', 'server1', undefined, `written into server1 without dfs: made ${iso(T + 5)}`],
      ['replicate', 'server1', 'server2', 'missing on server2'],
    ]);
    // One look at each store, none again after the stamping: the copy's answer says what it is.
    expect(s3mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Bucket).sort()).toEqual(['bucket-1', 'bucket-2']);
  });

  it('copies a multipart version it stamped under the ETag the stamping copy answered (S3 gives the copy a new one)', async () => {
    const raw = fake.direct('bucket-1', 'a.txt', 'raw', { mtime: T - 60_000, lastModified: T - 1000, etag: '"0123456789abcdef0123456789abcdef-2"' });
    const out = await replicateEvent(deps(), eventOf(raw, { time: T + 5 }));
    expect(out.copied).toEqual(['server2']);
    const [adopt, copy] = copies();
    expect(adopt).toMatchObject({ CopySourceIfMatch: raw.etag, IfMatch: raw.etag });
    expect(copy).toMatchObject({ Bucket: 'bucket-2', CopySourceIfMatch: fake.has('bucket-1', 'a.txt')!.etag });
    expect(fake.has('bucket-1', 'a.txt')!.etag).not.toBe(raw.etag);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('raw');
  });

  it('stamps a duplicate delivery of the same event identically, and another event differently', async () => {
    const idFor = async (e: ObjectEvent) => {
      direct();
      await replicateEvent(deps({}, 1), e);
      return fake.has('bucket-1', 'a.txt')!.metadata[META.id];
    };
    const e = eventOf(direct(), { seq: '00AA' });
    const first = await idFor(e);
    expect(await idFor(e)).toBe(first);
    expect(await idFor({ ...e, seq: '00AB' })).not.toBe(first);
  });

  it("keeps the identity and who that an API multipart upload started with; made is the completion's event time", async () => {
    const big = fake.direct('bucket-1', 'a.txt', 'big', { metadata: uploadMetadata('up-1', 'ann', T - 100), etag: 'abc-2' });
    await replicateEvent(deps(), eventOf(big, { time: T + 9, seq: '00B9' }));
    expect(fake.has('bucket-1', 'a.txt')!.metadata).toEqual({ mtime: formatMtime(T - 100), 'dfs-id': 'up-1', 'dfs-who': 'ann', 'dfs-made': String(T + 9), 'dfs-seq': '00B9' });
    expect(fake.has('bucket-2', 'a.txt')!.metadata).toMatchObject({ 'dfs-id': 'up-1', 'dfs-made': String(T + 9) });
  });

  it('drops an mtime more than 5 minutes past the event time (dated by made), and journals why', async () => {
    const raw = fake.direct('bucket-1', 'a.txt', 'raw', { mtime: T + 5 * 60_000 + 1 });
    await replicateEvent(deps({}, 1), eventOf(raw, { time: T }));
    expect(fake.has('bucket-1', 'a.txt')!.metadata).not.toHaveProperty('mtime');
    expect((await observeKey(deps({}, 1), 'a.txt')).copies.get('server1')!.mtimeMs).toBe(T);
    expect(journal()[0]!.reason).toBe(`written into server1 without dfs: made ${iso(T)}; its mtime ${iso(T + 5 * 60_000 + 1)} was more than 5 minutes ahead, clamped to when it was made`);
  });

  it("skips adoption when the event's ETag is not the object's: the newer write's own event handles it", async () => {
    direct();
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt', { etag: 'someotheretag' }))).toEqual(nothing);
    expect(fake.writes).toEqual([]);
  });

  it("settles a stamped version even when the event's ETag is another's (a copy landed since)", async () => {
    fake.stamped('bucket-1', 'a.txt', 'x', { mtime: T });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt', { etag: 'someotheretag' }))).toMatchObject({ copied: ['server2'] });
  });

  it('adopts nothing from an event without an ETag: it cannot show the version is the one it is about', async () => {
    direct();
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual(nothing);
    expect(fake.writes).toEqual([]);
    expect(fake.has('bucket-1', 'a.txt')!.metadata).not.toHaveProperty(META.made);
  });
  it("copies to the other stores alongside the stamping, not after it: the copy is made before the stamp's answer", async () => {
    const raw = direct();
    let copiedBeforeStamp: boolean | undefined;
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-1') copiedBeforeStamp = fake.has('bucket-2', 'a.txt') !== undefined;
    });
    expect(await replicateEvent(deps(), eventOf(raw))).toMatchObject({ copied: ['server2'], failed: [] });
    expect(copiedBeforeStamp).toBe(true);
    expect(fake.has('bucket-2', 'a.txt')!.metadata).toEqual({ ...fake.has('bucket-1', 'a.txt')!.metadata, [META.replicaOf]: 'server1' });
  });

  it("dates the adopt entry before the copy's even when both are written in the same millisecond", async () => {
    const raw = direct();
    jest.spyOn(Date, 'now').mockReturnValue(T + 100);
    try {
      await replicateEvent(deps(), eventOf(raw, { time: T + 5 }));
    } finally {
      jest.restoreAllMocks();
    }
    const byId = journal().sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(byId.map((e) => [e.action, e.time])).toEqual([['adopt', iso(T + 99)], ['replicate', iso(T + 100)]]);
  });

  it('stamps first, then settles, when settling changes its own store (here: a delete made after the write removes it)', async () => {
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T, who: 'bob', intents: [] }));
    const raw = direct();
    expect(await replicateEvent(deps(), eventOf(raw, { time: T - 1 }))).toMatchObject({ deleted: ['server1'], failed: [] });
    expect(storeWrites()).toEqual(['CopyObject bucket-1/a.txt', 'DeleteObject bucket-1/a.txt']);
  });

  it('stamps first, then copies, when the stamp may change the ETag the copies are pinned to (KMS: no MD5)', async () => {
    const raw = fake.put('bucket-1', 'a.txt', 'raw', { metadata: {}, lastModified: new Date(T - 1000), sse: 'aws:kms' });
    const order: string[] = [];
    fake.beforeWrite.push((cmd, i) => void order.push(`${cmd} ${i.Bucket}`));
    expect(await replicateEvent(deps(), eventOf(raw))).toMatchObject({ copied: ['server2'], failed: [] });
    expect(order.filter((w) => !w.includes('control'))).toEqual(['CopyObject bucket-1', 'CopyObject bucket-2']);
  });

  it('stamps first, then settles, when settling writes over its own store (a newer version elsewhere)', async () => {
    const raw = direct();
    fake.stamped('bucket-2', 'a.txt', 'newer', { mtime: T, made: T + 10 });
    const out = await replicateEvent(deps(), eventOf(raw, { time: T + 1 }));
    expect(out).toMatchObject({ copied: ['server1'], failed: [] });
    expect(storeWrites()).toEqual(['CopyObject bucket-1/a.txt', 'CopyObject bucket-1/a.txt']);
    expect(copies().filter((c) => c.Bucket === 'bucket-1').map((c) => c.CopySource)).toEqual(['bucket-1/a.txt', 'bucket-2/a.txt']);
    expect(fake.textOf('bucket-1', 'a.txt')).toBe('newer');
  });

  it('stamps first when any step writes over its own store, even beside one that does not (three stores)', async () => {
    const raw = direct();
    fake.stamped('bucket-2', 'a.txt', 'newer', { mtime: T, made: T + 10 });
    fake.stamped('bucket-3', 'a.txt', 'oldest', { mtime: T - 90_000, made: T - 90_000 });
    const out = await replicateEvent(deps({}, 3), eventOf(raw, { time: T + 1 }));
    expect(out).toMatchObject({ failed: [] });
    expect(out.copied.sort()).toEqual(['server1', 'server3']);
    expect(copies()[0]).toMatchObject({ Bucket: 'bucket-1', CopySource: 'bucket-1/a.txt' });
  });

  it('copies alongside the stamp when the other steps only wait on another store (three stores)', async () => {
    const raw = direct();
    fake.direct('bucket-2', 'a.txt', 'unstamped'); // its own event will date it
    const out = await replicateEvent(deps({}, 3), eventOf(raw, { time: T + 1 }));
    expect(out).toMatchObject({ copied: ['server3'], waiting: ['server2'], failed: [] });
    expect(copies()[0]).toMatchObject({ Bucket: 'bucket-3' });
  });

  it('does nothing more when a version it stamps first is replaced before the stamp (412)', async () => {
    const raw = fake.put('bucket-1', 'a.txt', 'raw', { metadata: {}, lastModified: new Date(T - 1000), sse: 'aws:kms' });
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-1' && fake.textOf('bucket-1', 'a.txt') === 'raw') fake.direct('bucket-1', 'a.txt', 'replaced');
    });
    expect(await replicateEvent(deps(), eventOf(raw))).toEqual(nothing);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
    expect(journal()).toEqual([]);
  });

  it('copies nothing and stamps nothing when the version is replaced before either (412 on both)', async () => {
    const raw = direct();
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'CopyObject' && fake.textOf('bucket-1', 'a.txt') === 'raw') fake.direct('bucket-1', 'a.txt', 'replaced');
    });
    // Looking again, it finds the new version unstamped: its own event dates it.
    expect(await replicateEvent(deps(), eventOf(raw))).toEqual({ ...nothing, waiting: ['server1'] });
    expect(fake.has('bucket-1', 'a.txt')!.metadata).toEqual({});
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
    expect(journal()).toEqual([]);
  });

  it('keeps the copy made before the version was replaced, stamped as the stamp would have been (the replacing write came after it)', async () => {
    const raw = direct();
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-1' && fake.textOf('bucket-1', 'a.txt') === 'raw') fake.direct('bucket-1', 'a.txt', 'replaced');
    });
    expect(await replicateEvent(deps(), eventOf(raw, { time: T + 5 }))).toEqual({ ...nothing, copied: ['server2'] });
    expect(fake.has('bucket-1', 'a.txt')!.metadata).toEqual({});
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('raw');
    expect(fake.has('bucket-2', 'a.txt')!.metadata).toMatchObject({ [META.made]: String(T + 5), [META.replicaOf]: 'server1' });
    expect(steps()).toEqual([['replicate', 'server1', 'server2', 'missing on server2']]);
  });

  it('stamps a version written before a delete as made then, so the delete removes it', async () => {
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T, who: 'bob', intents: [] }));
    const raw = direct();
    const out = await replicateEvent(deps(), eventOf(raw, { time: T - 1 }));
    expect(out).toEqual({ copied: [], deleted: ['server1'], held: [], waiting: [], failed: [] });
    expect(fake.has('bucket-1', 'a.txt')).toBeUndefined();
  });

  it('keeps a version written a millisecond after a delete, and replicates it', async () => {
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T, who: 'bob', intents: [] }));
    const raw = direct();
    expect(await replicateEvent(deps(), eventOf(raw, { time: T + 1 }))).toEqual({ copied: ['server2'], deleted: [], held: [], waiting: [], failed: [] });
  });
});

describe('replicateEvent: a version adopted from an event, and a later event of the same bytes', () => {
  // The same content written twice on server1: both versions have one ETag, and the first event
  // may be handled after the second write. The later event dates the version it finds.
  const raw = () => fake.direct('bucket-1', 'a.txt', 'raw', { mtime: T - 60_000, lastModified: T });
  const ev = (o: { etag: string }, time: number, seq: string, store = stores[0]!) => created(store, 'a.txt', { time, seq, etag: o.etag.replace(/"/g, '') });
  const meta = (bucket = 'bucket-1') => fake.has(bucket, 'a.txt')!.metadata;

  it('records the adopting event\'s sequencer in dfs-seq', async () => {
    await replicateEvent(deps({}, 1), ev(raw(), T, '00C0'));
    expect(meta()).toMatchObject({ [META.made]: String(T), [META.seq]: '00C0' });
  });

  it('re-stamps it with the time of an event one sequencer later, keeping its identity, who and mtime', async () => {
    const v = raw();
    await replicateEvent(deps({}, 1), ev(v, T, '00C0'));
    const first = meta();
    expect(await replicateEvent(deps({}, 1), ev(v, T + 20_000, '00C1'))).toEqual(nothing);
    expect(meta()).toEqual({ ...first, [META.made]: String(T + 20_000), [META.seq]: '00C1' });
    expect(journal().map((e) => [e.action, e.reason])).toEqual([
      ['adopt', `written into server1 without dfs: made ${iso(T)}`],
      ['adopt', `written into server1 without dfs: made ${iso(T + 20_000)}`],
    ]);
  });

  it('is not re-stamped by the same event again, nor by an earlier one', async () => {
    const v = raw();
    await replicateEvent(deps({}, 1), ev(v, T + 20_000, '00C1'));
    fake.writes.length = 0;
    await replicateEvent(deps({}, 1), ev(v, T + 20_000, '00C1'));
    await replicateEvent(deps({}, 1), ev(v, T, '00C0'));
    expect(fake.writes).toEqual([]);
    expect(meta()).toMatchObject({ [META.made]: String(T + 20_000), [META.seq]: '00C1' });
  });

  it("is not re-stamped by its own stamping's Copy event (same bytes, a greater sequencer): that would stamp it forever", async () => {
    const v = raw();
    await replicateEvent(deps({}, 1), ev(v, T, '00C0'));
    const first = meta();
    fake.writes.length = 0;
    await replicateEvent(deps({}, 1), { ...ev(v, T + 5, '00C1'), name: 'ObjectCreated:Copy' });
    expect(fake.writes).toEqual([]);
    expect(meta()).toEqual(first);
  });

  it('is stamped once through notifications: Put, then the Copy event of its own stamping, then a duplicate Put', async () => {
    const v = raw();
    const eTag = v.etag.replace(/"/g, '');
    await handle(deps({}, 1), notification('ObjectCreated:Put', 'bucket-1', 'a.txt', { time: T, sequencer: '00C0', eTag }));
    const first = meta();
    fake.writes.length = 0;
    await handle(deps({}, 1), notification('ObjectCreated:Copy', 'bucket-1', 'a.txt', { time: T + 5, sequencer: '00C1', eTag }));
    await handle(deps({}, 1), notification('ObjectCreated:Put', 'bucket-1', 'a.txt', { time: T, sequencer: '00C0', eTag }));
    expect(fake.writes).toEqual([]);
    expect(meta()).toEqual({ ...first, [META.made]: String(T), [META.seq]: '00C0' });
  });

  it('is not re-stamped by a later event of other bytes', async () => {
    const v = raw();
    await replicateEvent(deps({}, 1), ev(v, T, '00C0'));
    fake.writes.length = 0;
    await replicateEvent(deps({}, 1), ev({ etag: 'someotheretag' }, T + 20_000, '00C1'));
    expect(fake.writes).toEqual([]);
    expect(meta()).toMatchObject({ [META.made]: String(T), [META.seq]: '00C0' });
  });

  it("never re-stamps a replica, though it carries its original's dfs-seq", async () => {
    const v = raw();
    await replicateEvent(deps(), ev(v, T, '00C0')); // adopted on server1, copied to server2
    expect(meta('bucket-2')).toMatchObject({ [META.seq]: '00C0', [META.replicaOf]: 'server1' });
    fake.writes.length = 0;
    await replicateEvent(deps(), ev(fake.has('bucket-2', 'a.txt')!, T + 20_000, '00D0', stores[1]!));
    expect(fake.writes).toEqual([]);
    expect(meta('bucket-2')).toMatchObject({ [META.made]: String(T), [META.seq]: '00C0' });
  });

  it('never re-stamps a version written through dfs (it has no dfs-seq)', async () => {
    const v = fake.stamped('bucket-1', 'a.txt', 'api', { mtime: T, made: T });
    await replicateEvent(deps({}, 1), ev(v, T + 20_000, '00C1'));
    expect(fake.writes).toEqual([]);
    expect(meta()[META.made]).toBe(String(T));
  });

  it('keeps the second write of the same bytes through a delete between them, once the second event has come', async () => {
    const v = raw();
    await replicateEvent(deps(), ev(v, T, '00C0'));
    await replicateEvent(deps(), ev(v, T + 20_000, '00C1'));
    // A user's delete at T + 10 s on server2, its event last.
    fake.delete('bucket-2', 'a.txt');
    expect(await replicateEvent(deps(), removed(stores[1]!, 'a.txt', T + 10_000))).toMatchObject({ deleted: [], deleteKind: 'real' });
    expect(fake.textOf('bucket-1', 'a.txt')).toBe('raw');
  });

  it('keeps the second write of the same bytes when the first write\'s event comes after the delete\'s and before its own', async () => {
    // Written at T (event e1), deleted on server2 at T + 10 s (tombstone), the same bytes written
    // again on server1 at T + 20 s (e2). e1 is handled late: it finds the second version (same
    // ETag) and dates it T, under the tombstone, so settle deletes it; e2 then finds nothing.
    // A write made after a delete must survive it; LastModified (T + 20 s) shows the version is
    // younger than e1.
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T + 10_000, who: 'server2 (direct)', intents: [] }));
    const second = fake.direct('bucket-1', 'a.txt', 'raw', { lastModified: T + 20_000 });
    await replicateEvent(deps(), ev(second, T, '00C0'));
    await replicateEvent(deps(), ev(second, T + 20_000, '00C1'));
    expect(fake.textOf('bucket-1', 'a.txt')).toBe('raw');
  });
});

describe('replicateEvent: a delete', () => {
  it("raises the tombstone to a user's delete and deletes every copy made before it, recording each intent first", async () => {
    const p2 = fake.stamped('bucket-2', 'a.txt', 'hello', { mtime: T - 5000 });
    const p3 = fake.stamped('bucket-3', 'a.txt', 'hello', { mtime: T + 60_000, made: T });
    const before = Date.now();
    const out = await replicateEvent(deps({}, 3), removed(stores[0]!, 'a.txt', T, '0A'));
    expect({ ...out, deleted: out.deleted.sort() }).toEqual({ copied: [], deleted: ['server2', 'server3'], held: [], waiting: [], failed: [], deleteKind: 'real' });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: 'bucket-2', Key: 'a.txt', IfMatch: p2.etag });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: 'bucket-3', Key: 'a.txt', IfMatch: p3.etag });
    expect(tombstones()).toEqual([{
      key: 'a.txt', deletedAt: T, who: 'server1 (direct)',
      intents: [
        { id: expect.any(String), store: 'server2', etag: p2.etag, at: expect.any(Number), until: expect.any(Number) },
        { id: expect.any(String), store: 'server3', etag: p3.etag, at: expect.any(Number), until: expect.any(Number) },
      ],
    }]);
    expect(tombstones()[0]!.intents[0]!.at).toBeGreaterThanOrEqual(before);
    const deletes = fake.writes.findIndex((w) => w.startsWith('DeleteObject'));
    expect(fake.writes.slice(0, deletes).filter((w) => w.includes('tombstones/'))).toHaveLength(2); // the delete, then the intents
    expect(steps()[0]).toEqual(['deleted', 'server1', undefined, `deleted on server1 at ${iso(T)}`]);
    expect(steps().slice(1).map((s) => s[0])).toEqual(['delete', 'delete']);
  });

  it('keeps a copy made after the delete, whatever its mtime, and puts it in place of the dead ones', async () => {
    fake.stamped('bucket-2', 'a.txt', 'dead', { mtime: T + 60_000, made: T - 1 });
    fake.stamped('bucket-3', 'a.txt', 'written later', { mtime: T - 86_400_000, made: T + 1 });
    const out = await replicateEvent(deps({}, 3), removed(stores[0]!, 'a.txt', T));
    expect(out).toEqual({ copied: ['server2'], deleted: [], held: [], waiting: [], failed: [], deleteKind: 'real' });
    expect([fake.textOf('bucket-2', 'a.txt'), fake.textOf('bucket-3', 'a.txt')]).toEqual(['written later', 'written later']);
    expect(fake.has('bucket-1', 'a.txt')).toBeUndefined(); // a delete's event never fills a gap
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
  });

  it('takes the event of a delete it made itself as its echo, and does nothing else', async () => {
    fake.stamped('bucket-2', 'a.txt', 'hello', { mtime: T - 5000 });
    await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T));
    // A user writes a new version on server1 meanwhile, made before the echo's event time.
    fake.stamped('bucket-1', 'a.txt', 'new', { mtime: T + 1, made: T + 1 });
    fake.writes.length = 0;
    s3mock.resetHistory();
    const echo = removed(stores[1]!, 'a.txt', Date.now(), '0B');
    expect(await replicateEvent(deps(), echo)).toEqual({ ...nothing, deleteKind: 'echo' });
    expect(storeWrites()).toEqual([]);
    expect(s3mock).not.toHaveReceivedCommand(HeadObjectCommand); // it does not even look at the stores
    expect(fake.textOf('bucket-1', 'a.txt')).toBe('new');
    expect(tombstones()[0]!.deletedAt).toBe(T);
    expect(tombstones()[0]!.intents[0]!.event).toEqual({ seq: '0B', time: echo.time });
    // S3 delivers it again: nothing at all is written.
    fake.writes.length = 0;
    expect(await replicateEvent(deps(), echo)).toEqual({ ...nothing, deleteKind: 'echo' });
    expect(fake.writes).toEqual([]);
  });

  it('knows the echo of its delete when two settles of the key raced to delete the same copy', async () => {
    // Two settles of one key (a duplicate delivery of the user's delete, or replication and
    // reconcile) both see server2's dead copy before either deletes it. The second must not take
    // the first one's echo from it: its own delete waits while the first is pending there.
    const D = Date.now() - 60_000;
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: D, who: 'bob', intents: [] }));
    fake.stamped('bucket-2', 'a.txt', 'dead', { mtime: D - 5000 });
    const d = deps();
    const seen = await observeKey(d, 'a.txt');
    expect(await applyKeyPlan(d, seen, planKey(seen, () => false), 'replicate')).toMatchObject({ deleted: ['server2'] }); // the first settle
    const second = await applyKeyPlan(d, seen, planKey(seen, () => false), 'replicate'); // the second, from its earlier look
    expect(second).toMatchObject({ deleted: [], failed: ['server2'] });
    expect(s3mock.commandCalls(DeleteObjectCommand)).toHaveLength(1);
    fake.stamped('bucket-1', 'a.txt', 'written after the delete', { mtime: D + 10, made: D + 10 });
    const echoTime = Date.now();
    const echo = await replicateEvent(d, removed(stores[1]!, 'a.txt', echoTime, '0C'));
    expect(echo.deleteKind).toBe('echo');
    // One intent, the first settle's, and the echo bound to it.
    expect(tombstones()[0]!.intents).toEqual([expect.objectContaining({ store: 'server2', event: { seq: '0C', time: echoTime } })]);
    expect(tombstones()[0]!.intents[0]).not.toHaveProperty('failed');
    expect(tombstones()[0]!.deletedAt).toBe(D);
    expect(fake.textOf('bucket-1', 'a.txt')).toBe('written after the delete');
  });

  it('brings back a version a newer-mtime but earlier write replaced, when a delete between them comes late', async () => {
    const t1 = T;
    const t2 = T + 10_000;
    const t3 = T + 20_000;
    fake.stamped('bucket-1', 'a.txt', 'V', { mtime: 100, made: t1, id: 'v' });
    fake.stamped('bucket-2', 'a.txt', 'W', { mtime: 50, made: t3, id: 'w' });
    // W's event: V has the newer mtime and wins; W is kept first.
    expect(await replicateEvent(deps({}, 3), created(stores[1]!, 'a.txt', { time: t3 }))).toEqual({ ...nothing, copied: ['server2'] });
    expect(fake.textOf('control', 'superseded/a.txt/w')).toBe('W');
    // A user's delete on server3 at t2, its event late: V was made before it, W after.
    const out = await replicateEvent(deps({}, 3), removed(stores[2]!, 'a.txt', t2));
    expect({ ...out, copied: out.copied.sort() }).toEqual({ ...nothing, copied: ['server1', 'server2', 'server3'], deleteKind: 'real' });
    expect(['bucket-1', 'bucket-2', 'bucket-3'].map((b) => fake.textOf(b, 'a.txt'))).toEqual(['W', 'W', 'W']);
    // The copies' events find W on the stores: nothing is written; W stays kept until it expires.
    fake.writes.length = 0;
    expect(await replicateEvent(deps({}, 3), created(stores[0]!, 'a.txt'))).toEqual(nothing);
    expect(fake.textOf('control', 'superseded/a.txt/w')).toBe('W');
    expect(fake.writes).toEqual([]);
    expect(journal().map((e) => e.action)).toEqual(['keep', 'replicate', 'deleted', 'replicate', 'replicate', 'replicate']);
  });

  it("journals and applies a user's delete that our echo turns out to have displaced (a lower sequencer comes later)", async () => {
    const at = Date.now() - 1000; // our delete on server2, its intent already bound to 0C
    const userDelete = at + 50; // 0C was in fact a user's delete
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({
      key: 'a.txt', deletedAt: at - 60_000, who: 'bob', intents: [{ id: 'p', store: 'server2', etag: '"x"', at, event: { seq: '0C', time: userDelete } }],
    }));
    fake.stamped('bucket-1', 'a.txt', 'made between', { mtime: at + 10, made: at + 10 });
    const out = await replicateEvent(deps(), removed(stores[1]!, 'a.txt', at + 40, '0B'));
    expect(out).toEqual({ ...nothing, deleted: ['server1'], deleteKind: 'echo' });
    expect(tombstones()[0]).toMatchObject({ deletedAt: userDelete, who: 'server2 (direct)' });
    expect(steps()[0]).toEqual(['deleted', 'server2', undefined, "an earlier event on server2 turned out to be a user's delete, not ours"]);
  });

  it("takes a delete on a store long after any intent for a user's delete", async () => {
    fake.stamped('bucket-2', 'a.txt', 'hello', { mtime: T - 5000 });
    await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T));
    const later = Date.now() + 10 * 60_000;
    fake.stamped('bucket-1', 'a.txt', 'again', { mtime: T + 1, made: later - 10_000 });
    expect(await replicateEvent(deps(), removed(stores[1]!, 'a.txt', later))).toMatchObject({ deleted: ['server1'], deleteKind: 'real' });
    expect(tombstones()[0]).toMatchObject({ deletedAt: later, who: 'server2 (direct)' });
  });

  it('removes a write made before a later delete when its own event comes: a delete is final', async () => {
    fake.stamped('bucket-2', 'a.txt', 'old', { mtime: T - 60_000 });
    await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T)); // tombstone at T, server2 deleted
    fake.stamped('bucket-1', 'a.txt', 'written before the delete', { mtime: T - 30_000 });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toMatchObject({ copied: [], deleted: ['server1'] });
    expect(fake.has('bucket-1', 'a.txt')).toBeUndefined();
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('raises the tombstone for a delete of a key no store holds, writing no store', async () => {
    expect(await replicateEvent(deps(), removed(stores[1]!, 'a.txt', T))).toEqual({ ...nothing, deleteKind: 'real' });
    expect(storeWrites()).toEqual([]);
    expect(tombstones()).toEqual([{ key: 'a.txt', deletedAt: T, who: 'server2 (direct)', intents: [] }]);
    expect(journal().map((e) => e.action)).toEqual(['deleted']);
  });

  it('does nothing for a delete older than the tombstone', async () => {
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T, who: 'bob', intents: [] }));
    fake.stamped('bucket-2', 'a.txt', 'kept', { mtime: T + 5 });
    fake.writes.length = 0;
    expect(await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T - 1))).toEqual({ ...nothing, deleteKind: 'real' });
    expect(storeWrites()).toEqual([]);
  });

  it('keeps the version that won the race against its delete (412), its intent failed', async () => {
    fake.stamped('bucket-2', 'a.txt', 'old', { mtime: T - 5000 });
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'DeleteObject' && fake.textOf(i.Bucket!, 'a.txt') === 'old') fake.stamped('bucket-2', 'a.txt', 'new', { mtime: T + 2000 });
    });
    expect(await handle(deps(), notification('ObjectRemoved:Delete', 'bucket-1', 'a.txt'))).toEqual([{ ...nothing, deleteKind: 'real' }]);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('new');
    expect(tombstones()[0]!.intents).toEqual([expect.objectContaining({ store: 'server2', failed: true })]);
    expect(journal().map((e) => e.action)).toEqual(['deleted']);
  });

  describe('when S3 names who made each delete', () => {
    const SYSTEM = 'AWS:AROASYSTEMROLE';
    const withPrincipals = () => deps({ systemPrincipals: [SYSTEM] });

    // Soak seed 20506: a delete of ours whose answer never came (the store did not answer) left
    // its intent open; a user's delete straight in that store a moment later fitted its window
    // and was taken for its echo, so a version made before the user's delete came back.
    it("soak seed 20506: a user's delete inside the window of a delete of ours that got no answer is the user's, and what was made before it goes", async () => {
      fake.stamped('bucket-2', 'a.txt', 'dead', { mtime: T - 5000, made: T - 5000 });
      let down = true;
      fake.fail('bucket-2', networkError, { command: 'DeleteObject', when: () => down });
      const first = await replicateEvent(withPrincipals(), { ...removed(stores[0]!, 'a.txt', T), principal: 'AWS:AIDAUSER' });
      expect(first).toMatchObject({ deleteKind: 'real', failed: ['server2'] });
      expect(tombstones()[0]!.intents).toEqual([expect.objectContaining({ store: 'server2', until: expect.any(Number) })]);
      down = false;
      fake.stamped('bucket-1', 'a.txt', 'written after the first delete', { mtime: T + 100, made: T + 100 });
      fake.delete('bucket-2', 'a.txt'); // the user's own delete, on server2
      const at = Date.now();
      const out = await replicateEvent(withPrincipals(), { ...removed(stores[1]!, 'a.txt', at, '0F00'), principal: 'AWS:AIDAUSER' });
      expect(out).toMatchObject({ deleteKind: 'real', deleted: ['server1'] });
      expect(fake.has('bucket-1', 'a.txt')).toBeUndefined();
      expect(tombstones()[0]).toMatchObject({ deletedAt: at, who: 'server2 (direct)' });
      expect(tombstones()[0]!.intents[0]).not.toHaveProperty('event'); // still waiting for its own echo, if any
    });

    it("takes a delete by the system's role (any session of it) as an echo, outside every window too", async () => {
      fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T, who: 'bob', intents: [] }));
      fake.stamped('bucket-1', 'a.txt', 'made after the delete', { mtime: T + 5, made: T + 5 });
      fake.writes.length = 0;
      const out = await replicateEvent(withPrincipals(), { ...removed(stores[1]!, 'a.txt', T + 10), principal: `${SYSTEM}:s3-dfs-dev-reconcile` });
      expect(out).toEqual({ ...nothing, deleteKind: 'echo' });
      expect(fake.writes).toEqual([]);
      expect(fake.textOf('bucket-1', 'a.txt')).toBe('made after the delete');
    });

    it('goes by the intents when the event names nobody, or the system is not known', async () => {
      fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T, who: 'bob', intents: [] }));
      expect((await replicateEvent(withPrincipals(), removed(stores[1]!, 'a.txt', T + 10))).deleteKind).toBe('real');
      expect((await replicateEvent(deps(), { ...removed(stores[1]!, 'a.txt', T + 20), principal: SYSTEM })).deleteKind).toBe('real');
      expect(tombstones()[0]!.deletedAt).toBe(T + 20);
    });
  });

  it('is done when the peer it deletes was deleted meanwhile (404)', async () => {
    fake.stamped('bucket-2', 'a.txt', 'old', { mtime: T - 5000 });
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'DeleteObject' && i.Bucket === 'bucket-2') fake.delete('bucket-2', 'a.txt');
    });
    expect(await handle(deps(), notification('ObjectRemoved:Delete', 'bucket-1', 'a.txt'))).toEqual([{ ...nothing, deleteKind: 'real' }]);
    expect(pauses).toEqual([]);
    expect(tombstones()[0]!.intents).toEqual([expect.objectContaining({ failed: true })]);
  });
});

describe('replicateEvent: a target that vanished between HEAD and write (S3 answers 404)', () => {
  it('does nothing when the source of its copy was deleted meanwhile', async () => {
    fake.stamped('bucket-1', 'a.txt', 'short-lived', { mtime: T });
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'CopyObject') fake.delete('bucket-1', 'a.txt');
    });
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).toEqual([nothing]);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('copies afresh when the older target was deleted meanwhile', async () => {
    fake.stamped('bucket-1', 'a.txt', 'new', { mtime: T });
    fake.stamped('bucket-2', 'a.txt', 'old', { mtime: T - 5000 });
    let raced = false;
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'CopyObject' && !raced) {
        raced = true;
        fake.delete('bucket-2', 'a.txt');
      }
    });
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).toEqual([{ ...nothing, copied: ['server2'] }]);
    expect(copies().map((c) => [c.IfMatch !== undefined, c.IfNoneMatch])).toEqual([[true, undefined], [false, '*']]);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('new');
  });

  it("leaves the gap to the new version's own event when the source changed after its HEAD (CopySourceIfMatch)", async () => {
    const first = fake.stamped('bucket-1', 'a.txt', 'first', { mtime: T });
    let second: { etag: string } | undefined;
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'CopyObject' && !second) second = fake.stamped('bucket-1', 'a.txt', 'second', { mtime: T + 1000 });
    });
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).toEqual([nothing]);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).toEqual([{ ...nothing, copied: ['server2'] }]);
    expect(copies().map((c) => c.CopySourceIfMatch)).toEqual([first.etag, second!.etag]);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('second');
    expect(steps()).toEqual([['replicate', 'server1', 'server2', 'missing on server2']]);
  });
});

describe('replicateNotification', () => {
  it('makes one copy when S3 delivers the same event twice and both race to fill server2: the loser finds it equal', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    // Both deliveries HEAD server2 (nothing) before either copy lands; then both copy with IfNoneMatch '*'.
    let secondArrived: () => void = () => undefined;
    const bothHeaded = new Promise<void>((r) => (secondArrived = r));
    let firstLanded: Promise<unknown> | undefined;
    s3mock.on(CopyObjectCommand, { Bucket: 'bucket-2' }).callsFake(async (i: CopyObjectCommandInput) => {
      if (!firstLanded) {
        firstLanded = bothHeaded.then(() => fake.copy(i));
        return firstLanded;
      }
      secondArrived();
      await firstLanded;
      return fake.copy(i);
    });
    const event = notification('ObjectCreated:Put', 'bucket-1', 'a.txt', { sequencer: '0A' });
    const outcomes = (await Promise.all([handle(deps(), event), handle(deps(), event)])).flat();
    expect(copies().map((c) => c.IfNoneMatch)).toEqual(['*', '*']);
    expect(outcomes.flatMap((o) => o.copied)).toEqual(['server2']);
    expect(outcomes.flatMap((o) => o.failed)).toEqual([]);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('hello');
    expect(journal().filter((e) => e.action === 'replicate')).toHaveLength(1);
  });

  it('tries again in process while a store fails, pausing before each attempt, and answers once it succeeds', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    let down = true;
    fake.fail('bucket-2', networkError, { when: () => down });
    const outcomes = await replicateNotification(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'), {
      pause: async (n) => {
        pauses.push(n);
        down = false;
      },
    });
    expect(outcomes).toEqual([{ ...nothing, copied: ['server2'] }]);
    expect(pauses).toEqual([2]);
  });

  it(`gives up after ${ATTEMPTS} attempts and throws, so that Lambda retries the invocation`, async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    fake.fail('bucket-2', networkError, { command: 'CopyObject' });
    await expect(handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).rejects.toThrow('replication of a.txt from server1 failed for server2');
    expect(s3mock.commandCalls(CopyObjectCommand)).toHaveLength(ATTEMPTS);
    expect(pauses).toEqual([2, 3]);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('makes as many attempts as it is told, pausing only between them', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    fake.fail('bucket-2', networkError, { command: 'CopyObject' });
    const event = notification('ObjectCreated:Put', 'bucket-1', 'a.txt');
    await expect(replicateNotification(deps(), event, { pause, attempts: 1 })).rejects.toThrow('failed for server2');
    expect([s3mock.commandCalls(CopyObjectCommand).length, pauses]).toEqual([1, []]);
    await expect(replicateNotification(deps(), event, { pause, attempts: 2 })).rejects.toThrow('failed for server2');
    expect([s3mock.commandCalls(CopyObjectCommand).length, pauses]).toEqual([3, [2]]);
  });

  it('gives up on a key that keeps changing under every look', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    s3mock.on(CopyObjectCommand).rejects(precondition());
    await expect(handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).rejects.toThrow('failed for changing');
    expect(s3mock.commandCalls(CopyObjectCommand)).toHaveLength(ATTEMPTS * 4);
  });

  it('tries again, then throws, when the control bucket does not answer', async () => {
    fake.fail('control', networkError);
    await expect(handle(deps(), notification('ObjectRemoved:Delete', 'bucket-1', 'a.txt'))).rejects.toThrow('replication of a.txt from server1 failed for control');
    expect(pauses).toEqual([2, 3]);
  });

  it('reports records it cannot act on and replicates the others', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    const good = notification('ObjectCreated:Put', 'bucket-1', 'a.txt').Records[0]!;
    const bad = { ...good, s3: { ...good.s3, bucket: { name: 'elsewhere' } } };
    const rejected: string[] = [];
    const out = await replicateNotification(deps(), { Records: [bad, good] }, { pause, onRejected: (r) => rejected.push(r.reason) });
    expect(out).toEqual([{ ...nothing, copied: ['server2'] }]);
    expect(rejected).toEqual(['bucket elsewhere is not a configured store']);
  });

  it('decodes the key and the sequencer of each record', async () => {
    fake.stamped('bucket-1', 'dir/a b.txt', 'hello', { mtime: T });
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'dir/a b.txt'))).toEqual([{ ...nothing, copied: ['server2'] }]);
    await handle(deps(), notification('ObjectRemoved:Delete', 'bucket-2', 'gone.txt', { sequencer: '00FF' }));
    expect(tombstones()).toEqual([{ key: 'gone.txt', deletedAt: T, who: 'server2 (direct)', intents: [] }]);
  });
});

describe('handler (handlers/replicate.ts)', () => {
  afterEach(() => jest.restoreAllMocks());

  it('replicates the notification with the deps of the Lambda and logs the records it skips', async () => {
    mockDeps = deps();
    const warn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    const good = notification('ObjectCreated:Put', 'bucket-1', 'a.txt').Records[0]!;
    const bad = { ...good, eventName: 'ObjectTagging:Put' };
    expect(await handler({ Records: [bad, good] })).toEqual([{ ...nothing, copied: ['server2'] }]);
    expect(warn).toHaveBeenCalledWith('skipped S3 record', { reason: 'event ObjectTagging:Put is neither ObjectCreated nor ObjectRemoved', record: bad });
  });
});

describe('requesterOf: who made the request behind an event', () => {
  const ev = (principal?: string) => (principal === undefined ? {} : { principal });
  it('cannot tell without the system principals, or without a principal in the event', () => {
    expect([requesterOf({}, ev('AWS:ROLE')), requesterOf({ systemPrincipals: [] }, ev('AWS:ROLE')), requesterOf({ systemPrincipals: ['AWS:ROLE'] }, ev())]).toEqual([undefined, undefined, undefined]);
  });

  it('knows any of the system principals, alone or with a session; anyone else is a user', () => {
    const deps = { systemPrincipals: ['AWS:API', 'AWS:REPL'] };
    expect([requesterOf(deps, ev('AWS:REPL')), requesterOf(deps, ev('AWS:API:session-1')), requesterOf(deps, ev('AWS:APIX')), requesterOf(deps, ev('AWS:alice'))]).toEqual([
      'system', 'system', 'user', 'user',
    ]);
  });
});
