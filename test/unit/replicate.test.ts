import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type CopyObjectCommandInput,
  type DeleteObjectCommandInput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import type { Readable } from 'node:stream';
import { isNewer, knownEqual, replicateEvent, REPLICA_OF, SOURCE_ETAG, type ObjectEvent } from '../../lib/replicate';
import { handleS3Event } from '../../handlers/replicate';
import type { Deps } from '../../lib/deps';
import type { ObjectHead, Store } from '../../lib/stores';
import type { JournalEvent } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { FakeS3, networkError, s3Error } from '../helpers/mock-s3';

/*
 * Real S3 behaviour that s3rver lacks: conditional writes. The fake below answers CopyObject,
 * PutObject and DeleteObject as S3 does with If-None-Match / If-Match / x-amz-copy-source-if-match,
 * so these tests can show that replication never overwrites a write that landed after its HEAD.
 */

const T = Date.UTC(2026, 0, 2, 3, 4, 5);
const precondition = () => s3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
const noSuchKey = () => s3Error('NoSuchKey', 404, 'The specified key does not exist.');
const unquote = (etag: string) => etag.replace(/^"|"$/g, '');

type WriteHook = (command: 'CopyObject' | 'PutObject' | 'DeleteObject', input: { Bucket?: string; Key?: string }) => void;

/** FakeS3 plus the writes replication makes, each honouring its conditions as S3 does. */
class ConditionalS3 extends FakeS3 {
  /** Runs before each write is decided: the place for a concurrent write to land. */
  readonly beforeWrite: WriteHook[] = [];
  /** LastModified of the next write. */
  now = T;

  constructor(mock: AwsClientStub<S3Client>) {
    super(mock);
    mock.on(CopyObjectCommand).callsFake(async (i: CopyObjectCommandInput) => this.copy(i));
    mock.on(PutObjectCommand).callsFake(async (i: PutObjectCommandInput) => {
      this.beforeWrite.forEach((h) => h('PutObject', i));
      this.checkTarget(i);
      const body = typeof i.Body === 'string' || i.Body instanceof Uint8Array ? Buffer.from(i.Body) : Buffer.concat(await (i.Body as Readable).toArray());
      const o = this.put(i.Bucket!, i.Key!, body, { metadata: i.Metadata, lastModified: new Date(this.now) });
      return { ETag: o.etag };
    });
    mock.on(DeleteObjectCommand).callsFake(async (i: DeleteObjectCommandInput) => {
      this.beforeWrite.forEach((h) => h('DeleteObject', i));
      const cur = this.buckets.get(i.Bucket!)?.get(i.Key!);
      if (i.IfMatch !== undefined) {
        if (!cur) throw noSuchKey();
        if (unquote(i.IfMatch) !== unquote(cur.etag)) throw precondition();
      }
      this.delete(i.Bucket!, i.Key!);
      return {};
    });
  }

  copy(i: CopyObjectCommandInput) {
    this.beforeWrite.forEach((h) => h('CopyObject', i));
    const slash = i.CopySource!.indexOf('/');
    const src = this.buckets.get(i.CopySource!.slice(0, slash))?.get(decodeURIComponent(i.CopySource!.slice(slash + 1)));
    if (!src) throw noSuchKey();
    if (i.CopySourceIfMatch !== undefined && unquote(i.CopySourceIfMatch) !== unquote(src.etag)) throw precondition();
    this.checkTarget(i);
    this.put(i.Bucket!, i.Key!, src.bytes, { etag: src.etag, metadata: i.Metadata, lastModified: new Date(this.now) });
    return { CopyObjectResult: { ETag: src.etag } };
  }

  private checkTarget(i: { Bucket?: string; Key?: string; IfMatch?: string; IfNoneMatch?: string }) {
    const cur = this.buckets.get(i.Bucket!)?.get(i.Key!);
    if (i.IfNoneMatch === '*' && cur) throw precondition();
    if (i.IfMatch !== undefined) {
      if (!cur) throw noSuchKey();
      if (unquote(i.IfMatch) !== unquote(cur.etag)) throw precondition();
    }
  }
}

const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
const s3mock = mockClient(client);
let fake: ConditionalS3;

/** server1..3 on bucket-1..3, one endpoint (so copies stay inside S3); the journal on `control`. */
const stores: Store[] = [1, 2, 3].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
const deps = (over: Partial<Deps> = {}, n = 2) =>
  makeDeps(stores.slice(0, n), { control: { bucket: 'control', s3: client }, flavor: 'aws', ...over });

beforeEach(() => {
  s3mock.reset();
  fake = new ConditionalS3(s3mock);
});

/** A user's write: content, logical mtime, written (LastModified) at `written`. */
const write = (bucket: string, key: string, text: string, mtime: number, written = mtime) =>
  fake.put(bucket, key, text, { mtime, lastModified: new Date(written) });
const has = (bucket: string, key: string) => fake.buckets.get(bucket)?.get(key);
const textOf = (bucket: string, key: string) => has(bucket, key)?.bytes.toString();
const controlObjects = (prefix: string) =>
  [...(fake.buckets.get('control') ?? new Map()).entries()]
    .filter(([k]) => k.startsWith(prefix))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, o]) => JSON.parse(o.bytes.toString()));
const journal = (): JournalEvent[] => controlObjects('journal/');
const tombstones = () => controlObjects('tombstones/');
const steps = () => journal().map((e) => [e.action, e.from, e.to?.join(), e.reason]);
const copies = () => s3mock.commandCalls(CopyObjectCommand).map((c) => c.args[0].input);
const storeWrites = () =>
  [...s3mock.commandCalls(CopyObjectCommand), ...s3mock.commandCalls(PutObjectCommand), ...s3mock.commandCalls(DeleteObjectCommand)]
    .map((c) => c.args[0].input as { Bucket?: string })
    .filter((i) => i.Bucket !== 'control');

const created = (store: Store, key: string, time = T): ObjectEvent => ({ store, key, kind: 'created', time });
const removed = (store: Store, key: string, time: number): ObjectEvent => ({ store, key, kind: 'removed', time });

/** An S3 notification as AWS sends it: one record, key URL-encoded with "+" for space. */
const notification = (eventName: string, bucket: string, key: string, time = T) => ({
  Records: [{
    eventVersion: '2.1', eventSource: 'aws:s3', awsRegion: 'us-east-1', eventTime: new Date(time).toISOString(), eventName,
    s3: { s3SchemaVersion: '1.0', bucket: { name: bucket }, object: { key: encodeURIComponent(key).replace(/%20/g, '+'), size: 1, sequencer: '01' } },
  }],
});

/** handleS3Event on each event at once, its retry back-off run on fake timers so no test waits for real. */
async function handleAll(d: Deps, events: unknown[]) {
  jest.useFakeTimers();
  try {
    const all = Promise.all(events.map((e) => handleS3Event(d, e)));
    all.catch(() => undefined);
    await jest.runAllTimersAsync();
    return await all;
  } finally {
    jest.useRealTimers();
  }
}
const handle = async (d: Deps, event: unknown) => (await handleAll(d, [event]))[0]!;

function head(store: string, over: Partial<ObjectHead> = {}): ObjectHead {
  return { store, size: 10, etag: '"aaaa"', mtimeMs: T, writtenMs: T, checksums: {}, etagIsMd5: true, metadata: {}, ...over };
}

describe('isNewer', () => {
  it('orders by logical mtime first', () => {
    expect(isNewer(head('a', { mtimeMs: T + 1, etag: '"0000"' }), head('b', { etag: '"ffff"' }))).toBe(true);
    expect(isNewer(head('a', { etag: '"ffff"' }), head('b', { mtimeMs: T + 1, etag: '"0000"' }))).toBe(false);
  });

  it('breaks an mtime tie by ETag, quotes ignored, so exactly one side wins', () => {
    const a = head('a', { etag: '"bbbb"' });
    const b = head('b', { etag: 'aaaa' });
    expect([isNewer(a, b), isNewer(b, a)]).toEqual([true, false]);
  });

  it('calls nothing newer than itself or an equal version', () => {
    expect(isNewer(head('a'), head('a'))).toBe(false);
    expect(isNewer(head('a', { etag: '"aaaa"' }), head('b', { etag: 'aaaa' }))).toBe(false);
  });

  it('ignores when S3 wrote the copy', () => {
    expect(isNewer(head('a', { writtenMs: T + 99_000 }), head('b', { mtimeMs: T + 1 }))).toBe(false);
  });
});

describe('knownEqual', () => {
  it('takes a replica whose dfs-source-etag names the other copy as equal (the loop guard), either way round', () => {
    const source = head('server1', { etag: '"abc-3"' });
    const replica = head('server2', { etag: '"def-2"', metadata: { [SOURCE_ETAG]: 'abc-3', [REPLICA_OF]: 'server1' } });
    expect(knownEqual(source, replica)).toBe(true);
    expect(knownEqual(replica, source)).toBe(true);
  });

  it('does not trust the link when the sizes differ', () => {
    const source = head('server1', { etag: '"aaaa"', size: 10 });
    const replica = head('server2', { etag: '"bbbb"', size: 11, metadata: { [SOURCE_ETAG]: 'aaaa' } });
    expect(knownEqual(source, replica)).toBe(false);
  });

  it('does not take a link to another version as equal', () => {
    const source = head('server1', { etag: '"abc-3"' });
    const replica = head('server2', { etag: '"def-2"', metadata: { [SOURCE_ETAG]: 'older-2' } });
    expect(knownEqual(source, replica)).toBeUndefined();
  });

  it('falls back to the cheap evidence: equal MD5s, different MD5s, undecidable multipart ETags', () => {
    expect(knownEqual(head('a'), head('b'))).toBe(true);
    expect(knownEqual(head('a'), head('b', { etag: '"bbbb"' }))).toBe(false);
    expect(knownEqual(head('a', { etag: '"x-2"' }), head('b', { etag: '"y-3"' }))).toBeUndefined();
  });
});

describe('replicateEvent: a write', () => {
  it('copies a new object to a peer that has none, conditional on the peer still having none', async () => {
    const src = fake.put('bucket-1', 'a.txt', 'hello', { mtime: T - 500, metadata: { owner: 'ann' }, lastModified: new Date(T) });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: ['server2'], deleted: [], skipped: [], failed: [] });
    expect(copies()).toEqual([{
      Bucket: 'bucket-2', Key: 'a.txt', CopySource: 'bucket-1/a.txt', CopySourceIfMatch: src.etag, MetadataDirective: 'REPLACE',
      Metadata: { owner: 'ann', mtime: String(T - 500), [REPLICA_OF]: 'server1', [SOURCE_ETAG]: unquote(src.etag) },
      IfNoneMatch: '*',
    }]);
    expect(textOf('bucket-2', 'a.txt')).toBe('hello');
    expect(steps()).toEqual([['replicate', 'server1', 'server2', 'created']]);
  });

  it('overwrites an older peer only if it still holds the version it was compared with (IfMatch)', async () => {
    write('bucket-1', 'a.txt', 'new', T);
    const old = write('bucket-2', 'a.txt', 'old', T - 1000);
    await replicateEvent(deps(), created(stores[0]!, 'a.txt'));
    expect(copies()).toEqual([expect.objectContaining({ Bucket: 'bucket-2', IfMatch: old.etag })]);
    expect(copies()[0]).not.toHaveProperty('IfNoneMatch');
    expect(textOf('bucket-2', 'a.txt')).toBe('new');
    expect(steps()).toEqual([['replicate', 'server1', 'server2', 'modified']]);
  });

  it('never overwrites a newer peer: copies the newer version back over the older write instead', async () => {
    const old = write('bucket-1', 'a.txt', 'old', T - 1000);
    write('bucket-2', 'a.txt', 'new', T);
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: ['server1'], deleted: [], skipped: [], failed: [] });
    expect(copies()).toEqual([expect.objectContaining({
      Bucket: 'bucket-1', CopySource: 'bucket-2/a.txt', IfMatch: old.etag,
      Metadata: expect.objectContaining({ mtime: String(T), [REPLICA_OF]: 'server2' }),
    })]);
    expect([textOf('bucket-1', 'a.txt'), textOf('bucket-2', 'a.txt')]).toEqual(['new', 'new']);
    expect(steps()).toEqual([['replicate', 'server2', 'server1', `server2 newer (${new Date(T).toISOString()} vs ${new Date(T - 1000).toISOString()})`]]);
  });

  it('does not copy back over a write that landed since its HEAD (412), and retries', async () => {
    write('bucket-1', 'a.txt', 'old', T - 1000);
    write('bucket-2', 'a.txt', 'new', T);
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-1' && textOf('bucket-1', 'a.txt') === 'old') write('bucket-1', 'a.txt', 'newest', T + 1000);
    });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: [], deleted: [], skipped: [], failed: ['server2'] });
    expect(textOf('bucket-1', 'a.txt')).toBe('newest');
    // The retry (or the newest write's own event) then takes it to server2.
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toMatchObject({ copied: ['server2'] });
    expect(textOf('bucket-2', 'a.txt')).toBe('newest');
  });

  it('makes the event of its own copy a no-op that writes nothing, not even the journal', async () => {
    write('bucket-1', 'a.txt', 'hello', T);
    await replicateEvent(deps(), created(stores[0]!, 'a.txt'));
    s3mock.resetHistory();
    const before = journal().length;
    expect(await replicateEvent(deps(), created(stores[1]!, 'a.txt'))).toEqual({ copied: [], deleted: [], skipped: ['server1'], failed: [] });
    expect(storeWrites()).toEqual([]);
    expect(journal()).toHaveLength(before);
  });

  it('journals a skip, and copies nothing, when the source is gone since its event', async () => {
    write('bucket-2', 'a.txt', 'peer', T);
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: [], deleted: [], skipped: [], failed: [] });
    expect(storeWrites()).toEqual([]);
    expect(steps()).toEqual([['skip', 'server1', undefined, 'gone since the event (a later delete replicates itself)']]);
  });

  it('URL-encodes CopySource per segment on AWS', async () => {
    const key = 'dir one/a+b%c#?€ & ü.txt';
    write('bucket-1', key, 'x', T);
    await replicateEvent(deps({ flavor: 'aws' }), created(stores[0]!, key));
    expect(copies()[0]!.CopySource).toBe('bucket-1/dir%20one/a%2Bb%25c%23%3F%E2%82%AC%20%26%20%C3%BC.txt');
    expect(textOf('bucket-2', key)).toBe('x');
  });

  it('encodes CopySource with encodeURI for s3rver, which decodes it with decodeURI', async () => {
    const key = 'dir one/a+b%c#?€ & ü.txt';
    write('bucket-1', key, 'x', T);
    await replicateEvent(deps({ flavor: 's3rver' }), created(stores[0]!, key));
    expect(copies()[0]!.CopySource).toBe(`bucket-1/${encodeURI(key)}`);
    expect(copies()[0]!.CopySource).toBe('bucket-1/dir%20one/a+b%25c#?%E2%82%AC%20&%20%C3%BC.txt');
    expect(decodeURI(copies()[0]!.CopySource!.slice('bucket-1/'.length))).toBe(key);
  });

  it('on s3rver, streams a copy over an existing object (its CopyObject would keep the old ETag)', async () => {
    write('bucket-1', 'a.txt', 'new', T);
    const old = write('bucket-2', 'a.txt', 'old', T - 1000);
    expect(await replicateEvent(deps({ flavor: 's3rver' }), created(stores[0]!, 'a.txt'))).toMatchObject({ copied: ['server2'] });
    expect(s3mock).not.toHaveReceivedCommand(CopyObjectCommand);
    expect(s3mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'bucket-2', Key: 'a.txt', IfMatch: old.etag });
    expect(textOf('bucket-2', 'a.txt')).toBe('new');
    expect(has('bucket-2', 'a.txt')!.etag).toBe(has('bucket-1', 'a.txt')!.etag);
  });

  it('streams through this process, still conditional, when the stores are on different endpoints', async () => {
    const other = new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
    const otherMock = mockClient(other);
    const otherFake = new ConditionalS3(otherMock);
    try {
      const src = write('bucket-1', 'a.txt', 'far away', T);
      const d = deps();
      d.stores = [stores[0]!, { ...stores[1]!, s3: other }];
      expect(await replicateEvent(d, created(d.stores[0]!, 'a.txt'))).toMatchObject({ copied: ['server2'] });
      expect(s3mock).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'bucket-1', Key: 'a.txt', IfMatch: src.etag });
      expect(otherMock).toHaveReceivedCommandWith(PutObjectCommand, {
        Bucket: 'bucket-2', Key: 'a.txt', IfNoneMatch: '*',
        Metadata: { mtime: String(T), [REPLICA_OF]: 'server1', [SOURCE_ETAG]: unquote(src.etag) },
      });
      expect(otherFake.buckets.get('bucket-2')!.get('a.txt')!.bytes.toString()).toBe('far away');
    } finally {
      otherMock.restore();
    }
  });

  it('copies to every peer that needs it and reports a peer that is down as failed', async () => {
    write('bucket-1', 'a.txt', 'hello', T);
    fake.fail('bucket-3', networkError);
    expect(await replicateEvent(deps({}, 3), created(stores[0]!, 'a.txt'))).toEqual({ copied: ['server2'], deleted: [], skipped: [], failed: ['server3'] });
    expect(textOf('bucket-2', 'a.txt')).toBe('hello');
  });
});

describe('replicateEvent: a write that races another (S3 answers 412)', () => {
  it('counts a copy refused with 412 as failed, not copied, and journals no replicate', async () => {
    write('bucket-1', 'a.txt', 'first', T);
    // Between our HEAD (none on server2) and our copy, a user writes a newer version there.
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-2' && !has('bucket-2', 'a.txt')) write('bucket-2', 'a.txt', 'second', T + 1000);
    });
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toEqual({ copied: [], deleted: [], skipped: [], failed: ['server2'] });
    expect(textOf('bucket-2', 'a.txt')).toBe('second');
    expect(journal().filter((e) => e.action === 'replicate')).toEqual([]);
  });

  it('retries the event and decides again: the newer write that won the race is kept, and spreads', async () => {
    write('bucket-1', 'a.txt', 'first', T);
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-2' && !has('bucket-2', 'a.txt')) write('bucket-2', 'a.txt', 'second', T + 1000);
    });
    const outcomes = await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'));
    expect(outcomes).toEqual([{ copied: ['server1'], deleted: [], skipped: [], failed: [] }]);
    // First attempt: copy to server2 refused. Second: server2 is newer, so it comes back to server1.
    expect(copies().map((c) => [c.Bucket, c.IfNoneMatch ?? c.IfMatch !== undefined])).toEqual([['bucket-2', '*'], ['bucket-1', true]]);
    expect([textOf('bucket-1', 'a.txt'), textOf('bucket-2', 'a.txt')]).toEqual(['second', 'second']);
    expect(steps()).toEqual([['replicate', 'server2', 'server1', expect.stringMatching(/^server2 newer/)]]);
  });

  it('retries when the source changed after its HEAD (CopySourceIfMatch), and copies the new version', async () => {
    const first = write('bucket-1', 'a.txt', 'first', T);
    let second: { etag: string } | undefined;
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'CopyObject' && !second) second = write('bucket-1', 'a.txt', 'second', T + 1000);
    });
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).toEqual([
      { copied: ['server2'], deleted: [], skipped: [], failed: [] },
    ]);
    expect(copies().map((c) => c.CopySourceIfMatch)).toEqual([first.etag, second!.etag]);
    expect(textOf('bucket-2', 'a.txt')).toBe('second');
    expect(steps()).toEqual([['replicate', 'server1', 'server2', 'created']]);
  });

  it('makes one copy when S3 delivers the same event twice and both race to fill server2: the loser gets 412, retries, finds it equal', async () => {
    write('bucket-1', 'a.txt', 'hello', T);
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
    const event = notification('ObjectCreated:Put', 'bucket-1', 'a.txt');
    const outcomes = (await handleAll(deps(), [event, event])).flat();

    expect(copies().map((c) => c.IfNoneMatch)).toEqual(['*', '*']);
    expect(outcomes.flatMap((o) => o.copied)).toEqual(['server2']);
    expect(outcomes.flatMap((o) => o.failed)).toEqual([]);
    expect(textOf('bucket-2', 'a.txt')).toBe('hello');
    expect(journal().filter((e) => e.action === 'replicate')).toHaveLength(1);
  });

  it("leaves a store the copy's event finds empty to the original write's event (three stores)", async () => {
    write('bucket-1', 'a.txt', 'hello', T);
    const d = deps({}, 3);
    // server1's event has copied to server2 and not yet to server3.
    await replicateEvent({ ...d, stores: d.stores.slice(0, 2) }, created(d.stores[0]!, 'a.txt'));
    s3mock.resetHistory();
    const out = await replicateEvent(d, created(d.stores[1]!, 'a.txt'));
    expect({ ...out, skipped: out.skipped.sort() }).toEqual({ copied: [], deleted: [], skipped: ['server1', 'server3'], failed: [] });
    expect(storeWrites()).toEqual([]);
    expect(await replicateEvent(d, created(d.stores[0]!, 'a.txt'))).toMatchObject({ copied: ['server3'], skipped: ['server2'] });
  });

  it("does not bring back a copy's source that was deleted since (the delete's event removes the copy)", async () => {
    write('bucket-1', 'a.txt', 'hello', T - 1000);
    await replicateEvent(deps(), created(stores[0]!, 'a.txt'));
    fake.delete('bucket-1', 'a.txt'); // a user deletes it on server1 before the copy's event runs
    s3mock.resetHistory();
    expect(await replicateEvent(deps(), created(stores[1]!, 'a.txt'))).toEqual({ copied: [], deleted: [], skipped: ['server1'], failed: [] });
    expect(storeWrites()).toEqual([]);
    expect(await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T))).toMatchObject({ deleted: ['server2'] });
    expect(has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('gives up after three attempts and throws, so that Lambda retries the invocation', async () => {
    write('bucket-1', 'a.txt', 'hello', T);
    s3mock.on(CopyObjectCommand).rejects(precondition());
    await expect(handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).rejects.toThrow(
      'replication of a.txt from server1 failed for server2',
    );
    expect(s3mock.commandCalls(CopyObjectCommand)).toHaveLength(3);
    expect(has('bucket-2', 'a.txt')).toBeUndefined();
  });
});

describe('replicateEvent: a delete', () => {
  it('tombstones the key, then deletes the peer conditional on the version it saw (IfMatch)', async () => {
    const peer = write('bucket-2', 'a.txt', 'hello', T - 5000);
    expect(await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T))).toEqual({ copied: [], deleted: ['server2'], skipped: [], failed: [] });
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: 'bucket-2', Key: 'a.txt', IfMatch: peer.etag });
    expect(has('bucket-2', 'a.txt')).toBeUndefined();
    expect(tombstones()).toEqual([{ key: 'a.txt', time: T, who: 'server1 (event)', echoes: { server2: expect.any(Number) } }]);
    expect(steps()).toEqual([['delete', 'server1', 'server2', 'deleted']]);
  });

  it('does not copy a write to a peer when a later delete has tombstoned the key', async () => {
    write('bucket-2', 'a.txt', 'old', T - 60_000, T - 60_000);
    await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T)); // tombstone at T, server2 deleted
    write('bucket-1', 'a.txt', 'written before the delete', T - 30_000, T - 30_000);
    s3mock.resetHistory();
    expect(await replicateEvent(deps(), created(stores[0]!, 'a.txt'))).toMatchObject({ copied: [], skipped: ['server2'] });
    expect(has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it("treats the delete event of a copy it removed itself as an echo: a write made since survives", async () => {
    write('bucket-2', 'a.txt', 'hello', T - 5000);
    await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T));
    // A user writes a new version on server1; S3 dates writes to the second, so it can look
    // older than the echo's event (which S3 stamps when replication deleted server2's copy).
    const now = Date.now();
    write('bucket-1', 'a.txt', 'new', now, now);
    s3mock.resetHistory();
    expect(await replicateEvent(deps(), removed(stores[1]!, 'a.txt', now + 1000))).toEqual({
      copied: [], deleted: [], skipped: ['server1'], failed: [],
    });
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(has('bucket-1', 'a.txt')).toBeDefined();
  });

  it('takes a delete on a store far from the echo time for a new delete', async () => {
    write('bucket-2', 'a.txt', 'hello', T - 5000);
    await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T));
    const later = Date.now() + 60_000;
    write('bucket-1', 'a.txt', 'again', T + 1, later - 10_000);
    expect(await replicateEvent(deps(), removed(stores[1]!, 'a.txt', later))).toMatchObject({ deleted: ['server1'] });
  });

  it('keeps a peer written after the delete and journals the conflict', async () => {
    write('bucket-2', 'a.txt', 'written later', T - 10_000, T + 1000);
    expect(await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T))).toEqual({ copied: [], deleted: [], skipped: ['server2'], failed: [] });
    expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(textOf('bucket-2', 'a.txt')).toBe('written later');
    expect(steps()).toEqual([[
      'conflict', 'server1', 'server2',
      `server2 written after the delete (${new Date(T + 1000).toISOString()} vs ${new Date(T).toISOString()}): kept`,
    ]]);
  });

  it('does nothing when the object was created again on its store since (its own event replicates it)', async () => {
    write('bucket-1', 'a.txt', 'again', T + 10);
    write('bucket-2', 'a.txt', 'old', T - 10);
    expect(await replicateEvent(deps(), removed(stores[0]!, 'a.txt', T))).toEqual({ copied: [], deleted: [], skipped: ['server2'], failed: [] });
    expect(storeWrites()).toEqual([]);
    expect(tombstones()).toEqual([]);
  });

  it('skips peers that hold nothing (the event of a replicated delete)', async () => {
    expect(await replicateEvent(deps(), removed(stores[1]!, 'a.txt', T))).toEqual({ copied: [], deleted: [], skipped: ['server1'], failed: [] });
    expect(storeWrites()).toEqual([]);
    expect(journal()).toEqual([]);
  });

  it('retries a delete refused with 412 and keeps the version that won the race', async () => {
    write('bucket-2', 'a.txt', 'old', T - 5000);
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'DeleteObject' && textOf(i.Bucket!, 'a.txt') === 'old') write('bucket-2', 'a.txt', 'new', T + 2000);
    });
    expect(await handle(deps(), notification('ObjectRemoved:Delete', 'bucket-1', 'a.txt'))).toEqual([
      { copied: [], deleted: [], skipped: ['server2'], failed: [] },
    ]);
    expect(textOf('bucket-2', 'a.txt')).toBe('new');
    expect(journal().map((e) => e.action)).toEqual(['conflict']);
  });
});

describe('replicateEvent: a target that vanished between HEAD and write (S3 answers 404)', () => {
  it('retries a delete whose peer was deleted meanwhile, and is done', async () => {
    write('bucket-2', 'a.txt', 'old', T - 5000);
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'DeleteObject' && i.Bucket === 'bucket-2') fake.delete('bucket-2', 'a.txt');
    });
    expect(await handle(deps(), notification('ObjectRemoved:Delete', 'bucket-1', 'a.txt'))).toEqual([
      { copied: [], deleted: [], skipped: ['server2'], failed: [] },
    ]);
  });

  it('retries a copy whose source was deleted meanwhile, and skips', async () => {
    write('bucket-1', 'a.txt', 'short-lived', T);
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'CopyObject') fake.delete('bucket-1', 'a.txt');
    });
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).toEqual([
      { copied: [], deleted: [], skipped: [], failed: [] },
    ]);
    expect(has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it('retries a copy whose older target was deleted meanwhile, and copies it afresh', async () => {
    write('bucket-1', 'a.txt', 'new', T);
    write('bucket-2', 'a.txt', 'old', T - 5000);
    let raced = false;
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'CopyObject' && !raced) {
        raced = true;
        fake.delete('bucket-2', 'a.txt');
      }
    });
    expect(await handle(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).toEqual([
      { copied: ['server2'], deleted: [], skipped: [], failed: [] },
    ]);
    expect(copies().map((c) => [c.IfMatch !== undefined, c.IfNoneMatch])).toEqual([[true, undefined], [false, '*']]);
    expect(textOf('bucket-2', 'a.txt')).toBe('new');
  });
});
