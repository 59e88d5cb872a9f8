import { CopyObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { replicateEvent, replicateNotification, type ObjectEvent } from '../../lib/replicate';
import { StoreUnavailableError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { tombstoneKey } from '../../lib/tombstones';
import type { JournalEvent } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { T, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError } from '../helpers/mock-s3';

/*
 * replicateNotification's own contract (its in-process attempts, their pauses, what it throws
 * and what it passes on at once) and the failures of one event's steps that it must see: the
 * event's own store not answering, a stamping copy that fails, a control bucket that fails
 * beside a settle.
 */

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);

const stores: Store[] = [1, 2, 3].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
const deps = (n = 2): Deps => makeDeps(stores.slice(0, n), { control: { bucket: 'control', s3: client }, flavor: 'aws' });

const journal = () => fake.written<JournalEvent>('journal/');
const copies = () => s3mock.commandCalls(CopyObjectCommand).map((c) => c.args[0].input);
const nothing = { copied: [], deleted: [], held: [], waiting: [], failed: [] };

let seq = 0x500;
const nextSeq = () => (seq++).toString(16).toUpperCase().padStart(4, '0');

/** An S3 notification as AWS sends it, one record. */
const notification = (eventName: string, bucket: string, key: string, o: { eTag?: string } = {}) => ({
  Records: [{
    eventVersion: '2.1', eventSource: 'aws:s3', awsRegion: 'us-east-1', eventTime: new Date(T).toISOString(), eventName,
    s3: { s3SchemaVersion: '1.0', bucket: { name: bucket }, object: { key, size: 1, sequencer: nextSeq(), ...(o.eTag ? { eTag: o.eTag } : {}) } },
  }],
});

/** The event of a version written straight into server1 (no stamp), carrying its ETag. */
const directEvent = (o: { etag: string }, time = T): ObjectEvent => ({ store: stores[0]!, key: 'a.txt', kind: 'created', time, seq: nextSeq(), etag: o.etag.replace(/"/g, '') });

/** Pauses between in-process attempts, recorded instead of waited for. */
let pauses: number[];
const pause = async (n: number) => void pauses.push(n);
beforeEach(() => (pauses = []));

/** Fails the control bucket's PutObject of records under `prefix` (whose body holds `holding`, when given). */
const failControlWrites = (prefix: string, holding?: string) =>
  fake.fail('control', networkError, {
    command: 'PutObject',
    when: (i) => (i.Key ?? '').startsWith(prefix) && (holding === undefined || String((i as { Body?: unknown }).Body).includes(holding)),
  });

describe('replicateNotification: attempts and pauses', () => {
  afterEach(() => jest.restoreAllMocks());

  it('waits 800 ms before the second attempt and 1.6 s before the third when no pause is given', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    fake.fail('bucket-2', networkError, { command: 'CopyObject' });
    const delays: number[] = [];
    jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      fn();
      return 0;
    }) as unknown as typeof setTimeout);
    await expect(replicateNotification(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'))).rejects.toThrow('failed for server2');
    expect(delays).toEqual([800, 1600]);
    expect(copies()).toHaveLength(3);
  });

  it('names every store that failed in the error it throws', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    fake.fail('bucket-2', networkError, { command: 'CopyObject' });
    fake.fail('bucket-3', networkError, { command: 'CopyObject' });
    const err = await replicateNotification(deps(3), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'), { pause }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/^replication of a\.txt from server1 failed for (server2, server3|server3, server2)$/);
    expect(pauses).toEqual([2, 3]);
  });

  it('throws at once, without trying again, an error that is not a store failing (a tombstone record that is not an object)', async () => {
    fake.put('control', tombstoneKey('a.txt'), '5');
    const err = await replicateNotification(deps(), notification('ObjectRemoved:Delete', 'bucket-1', 'a.txt'), { pause }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(pauses).toEqual([]);
  });

  it('answers each event of a notification once it succeeds, and nothing for records it rejects', async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    const good = notification('ObjectCreated:Put', 'bucket-1', 'a.txt').Records[0]!;
    const bad = { ...good, eventName: 'ObjectTagging:Put' };
    const rejected: unknown[] = [];
    const out = await replicateNotification(deps(), { Records: [good, bad] }, { pause, onRejected: (r) => rejected.push(r.record) });
    expect(out).toEqual([{ ...nothing, copied: ['server2'] }]);
    expect(rejected).toEqual([bad]);
    expect(pauses).toEqual([]);
  });
});

describe("replicateEvent: the event's own store, and the stamping copy, failing", () => {
  it("reports the event's own store as failed when it does not answer, and copies nothing meanwhile", async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    fake.fail('bucket-1', networkError, { command: 'HeadObject' });
    expect(await replicateEvent(deps(), { store: stores[0]!, key: 'a.txt', kind: 'created', time: T, seq: nextSeq() })).toEqual({ ...nothing, failed: ['server1'] });
    expect(copies()).toEqual([]);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
  });

  it("tries the event again, then throws naming its own store, while that store does not answer", async () => {
    fake.stamped('bucket-1', 'a.txt', 'hello', { mtime: T });
    fake.fail('bucket-1', networkError, { command: 'HeadObject' });
    await expect(replicateNotification(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt'), { pause })).rejects.toThrow('replication of a.txt from server1 failed for server1');
    expect(pauses).toEqual([2, 3]);
  });

  it('tries again, and then throws, when the copy that stamps a version written without dfs fails (not a 412); the copy made alongside carries the stamp a retry gives', async () => {
    const raw = fake.direct('bucket-1', 'a.txt', 'raw', { lastModified: T - 1000 });
    fake.fail('bucket-1', networkError, { command: 'CopyObject' });
    await expect(replicateEvent(deps(), directEvent(raw))).rejects.toMatchObject({ name: 'StoreUnavailableError', store: 'server1' });
    const eTag = raw.etag.replace(/"/g, '');
    await expect(replicateNotification(deps(), notification('ObjectCreated:Put', 'bucket-1', 'a.txt', { eTag }), { pause })).rejects.toThrow('failed for server1');
    expect(pauses).toEqual([2, 3]);
    expect(fake.has('bucket-1', 'a.txt')!.metadata).toEqual({});
    // Copied once, alongside the first try; every try derives the same stamp from the event.
    expect(journal().map((e) => [e.action, e.to])).toEqual([['replicate', ['server2']]]);
  });
});

describe('replicateEvent: the control bucket failing beside the settle of an adopted version', () => {
  it("fails the event when the adoption's journal entry could not be written, once the settle beside it is done", async () => {
    const raw = fake.direct('bucket-1', 'a.txt', 'raw', { lastModified: T - 1000 });
    failControlWrites('journal/', '"action":"adopt"');
    const err = await replicateEvent(deps(), directEvent(raw)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ store: 'control' });
    // The settle was not abandoned halfway: its copy landed and was journalled.
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('raw');
    expect(journal().map((e) => e.action)).toEqual(['replicate']);
  });

  it("fails the event with the settle's own error when the settle fails and the adoption's entry was written", async () => {
    // Stamped as made before the delete at T: the settle deletes it, and cannot record its intent.
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({ key: 'a.txt', deletedAt: T, who: 'bob', intents: [] }));
    const raw = fake.direct('bucket-1', 'a.txt', 'raw', { lastModified: T - 1000 });
    failControlWrites('tombstones/');
    const err = await replicateEvent(deps(), directEvent(raw, T - 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ store: 'control' });
    expect(journal().map((e) => e.action)).toEqual(['adopt']);
    expect(fake.textOf('bucket-1', 'a.txt')).toBe('raw');
  });
});

describe('replicateEvent: a delete', () => {
  it('settles a delete with the tombstone it has just written: the tombstone is read once', async () => {
    fake.stamped('bucket-2', 'a.txt', 'made after', { mtime: T + 5, made: T + 5 });
    expect(await replicateEvent(deps(), { store: stores[0]!, key: 'a.txt', kind: 'removed', time: T, seq: nextSeq() })).toEqual({ ...nothing, copied: [], deleteKind: 'real' });
    const tombstoneReads = s3mock.commandCalls(GetObjectCommand).filter((c) => c.args[0].input.Bucket === 'control' && c.args[0].input.Key === tombstoneKey('a.txt'));
    expect(tombstoneReads).toHaveLength(1);
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('made after');
  });
});

describe("replicateEvent: who a user's delete is journalled as", () => {
  it("journals a user's delete as made directly on its store", async () => {
    await replicateEvent(deps(), { store: stores[1]!, key: 'a.txt', kind: 'removed', time: T, seq: nextSeq() });
    expect(journal().map((e) => [e.action, e.who])).toEqual([['deleted', 'server2 (direct)']]);
  });

  it("journals a user's delete that our echo turns out to have displaced as made directly on its store", async () => {
    const at = Date.now() - 1000;
    fake.put('control', tombstoneKey('a.txt'), JSON.stringify({
      key: 'a.txt', deletedAt: at - 60_000, who: 'bob', intents: [{ id: 'p', store: 'server2', etag: '"x"', at, event: { seq: '0C', time: at + 50 } }],
    }));
    expect(await replicateEvent(deps(), { store: stores[1]!, key: 'a.txt', kind: 'removed', time: at + 40, seq: '0B' })).toMatchObject({ deleteKind: 'echo' });
    expect(journal().map((e) => [e.action, e.who])).toEqual([['deleted', 'server2 (direct)']]);
  });
});
