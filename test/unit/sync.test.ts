import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { APPLY_BATCH, applyEntries, applyPlan, orphanMadeAt, reconcile } from '../../lib/sync';
import { BadRequestError, ConflictError, InvalidKeyError } from '../../lib/errors';
import type { FailedInvocation, FailureQueue } from '../../lib/failures';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { META } from '../../lib/stamps';
import { tombstoneKey, type Tombstone } from '../../lib/tombstones';
import type { JournalEvent } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError } from '../helpers/mock-s3';

/*
 * orphanMadeAt is pure: a truth table. Reconcile itself runs against a ConditionalS3 (stores and
 * control bucket), with an in-memory failure queue.
 */

const HOUR = 3600_000;
const SEC = 1000;

describe('orphanMadeAt', () => {
  const D = Date.UTC(2026, 0, 2, 3, 4, 5, 500); // the delete, mid-second
  const MAX = HOUR; // how long its event may still come
  const OLD = D + 10 * HOUR; // now, long after every event
  const at = (lm: number, etag = '"e"') => ({ lastModifiedMs: lm, etag });
  const t = { deletedAt: D };

  it('takes LastModified when there is no tombstone', () => {
    expect(orphanMadeAt(at(D - 5 * SEC), undefined, OLD, MAX)).toBe(D - 5 * SEC);
  });

  it('takes LastModified when it is after the delete', () => {
    expect(orphanMadeAt(at(D + 1), t, OLD, MAX)).toBe(D + 1);
    expect(orphanMadeAt(at(D + 1, '"abc-2"'), t, OLD, MAX)).toBe(D + 1);
  });

  it('waits for the event of a young orphan at or before the delete (undefined)', () => {
    expect(orphanMadeAt(at(D), t, D + 10, MAX)).toBeUndefined();
    expect(orphanMadeAt(at(D - 5 * SEC), t, D - 5 * SEC + MAX - 1, MAX)).toBeUndefined();
  });

  it('decides once the orphan is exactly as old as the event age', () => {
    expect(orphanMadeAt(at(D - 5 * SEC), t, D - 5 * SEC + MAX, MAX)).toBe(D - 5 * SEC);
  });

  it('keeps an old multipart upload (LastModified dates its start), made just after the delete', () => {
    expect(orphanMadeAt(at(D - 5 * HOUR, '"abc-3"'), t, OLD, MAX)).toBe(D + 1);
  });

  it('keeps an old write of the delete\'s own second: it may have been made after it', () => {
    expect(orphanMadeAt(at(D), t, OLD, MAX)).toBe(D + 1);
    expect(orphanMadeAt(at(D - 999), t, OLD, MAX)).toBe(D + 1);
  });

  it('calls an old write whose second ended before the delete dead (made at its LastModified)', () => {
    expect(orphanMadeAt(at(D - SEC), t, OLD, MAX)).toBe(D - SEC);
    expect(orphanMadeAt(at(D - 5 * HOUR), t, OLD, MAX)).toBe(D - 5 * HOUR);
  });

  it('waits for the event of a young orphan even without a tombstone: a delete earlier in its second may be on its way', () => {
    // LastModified is cut to the second. A delete at S+0.3 whose event is still in flight, and a
    // write at S+0.7 (LastModified S): taken as made at S, the write would die when the delete's
    // event raised the tombstone to S+0.3. Its own event stamps it exactly.
    const S = Date.UTC(2026, 0, 2, 3, 4, 5);
    expect(orphanMadeAt(at(S), undefined, S + 2 * SEC, MAX)).toBeUndefined();
    expect(orphanMadeAt(at(S), undefined, S + MAX - 1, MAX)).toBeUndefined();
    expect(orphanMadeAt(at(S), undefined, S + MAX, MAX)).toBe(S);
  });

  it('waits for the event of a young orphan written after the tombstone: a later delete in its second may be on its way', () => {
    const S = Date.UTC(2026, 0, 2, 3, 4, 5);
    expect(orphanMadeAt(at(S), { deletedAt: S - HOUR }, S + 2 * SEC, MAX)).toBeUndefined();
    expect(orphanMadeAt(at(S), { deletedAt: S - HOUR }, S + MAX - 1, MAX)).toBeUndefined();
    expect(orphanMadeAt(at(S), { deletedAt: S - HOUR }, S + MAX, MAX)).toBe(S);
  });
});

describe('reconcile', () => {
  const client = testClient();
  const { s3mock, fake } = useConditionalS3(client);
  const stores: Store[] = [1, 2, 3].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
  const deps = (over: Partial<Deps> = {}, n = 2) => makeDeps(stores.slice(0, n), { control: { bucket: 'control', s3: client }, flavor: 'aws', ...over });
  const journal = () => fake.records<JournalEvent>('journal/');
  const storeWrites = () => fake.writes.filter((w) => !w.includes(' control/'));
  const setTombstone = (key: string, deletedAt: number) => fake.put('control', tombstoneKey(key), JSON.stringify({ key, deletedAt, who: 'bob', intents: [] }));
  let now: number;
  beforeEach(() => (now = Date.now()));
  /** A write made `ago` ms before now, through dfs. */
  const stamped = (bucket: string, key: string, text: string, ago: number, id = `w-${text}`) =>
    fake.stamped(bucket, key, text, { mtime: now - ago, made: now - ago, id });

  /** An in-memory failure queue: what it holds, what reconcile received and removed. */
  class MemoryQueue implements FailureQueue {
    private hidden = new Set<string>();
    readonly removed: string[] = [];
    receives = 0;
    constructor(public items: FailedInvocation[]) {}
    async receive(max: number) {
      this.receives++;
      const out = this.items.filter((i) => !this.hidden.has(i.id)).slice(0, max);
      out.forEach((i) => this.hidden.add(i.id));
      return out;
    }
    async remove(id: string) {
      this.removed.push(id);
      this.items = this.items.filter((i) => i.id !== id);
    }
  }
  const removedEvent = (bucket: string, key: string, time: number) => ({
    Records: [{ eventName: 'ObjectRemoved:Delete', eventTime: new Date(time).toISOString(), s3: { bucket: { name: bucket }, object: { key, sequencer: '0A' } } }],
  });

  it('reports a dry run like rclone check and writes nothing', async () => {
    stamped('bucket-1', 'same.txt', 'x', HOUR, 'w');
    stamped('bucket-2', 'same.txt', 'x', HOUR, 'w');
    stamped('bucket-1', 'only1.txt', 'y', HOUR);
    stamped('bucket-1', 'diff.txt', 'old', 2 * HOUR);
    stamped('bucket-2', 'diff.txt', 'new', HOUR);
    const r = await reconcile(deps(), { dryRun: true });
    expect(r).toEqual({
      dryRun: true,
      counts: { match: 1, differ: 1, missing: { server1: 0, server2: 1 }, copies: 2, deletes: 0 },
      entries: [
        { key: 'diff.txt', action: 'copy', from: 'server2', to: ['server1'], reason: expect.stringMatching(/^server2 newer/) },
        { key: 'only1.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2' },
      ],
      unavailable: [],
    });
    expect(fake.writes).toEqual([]);
  });

  it('applies the plan when not a dry run, journalling each step as reconcile', async () => {
    stamped('bucket-1', 'only1.txt', 'y', HOUR);
    stamped('bucket-1', 'diff.txt', 'old', 2 * HOUR);
    stamped('bucket-2', 'diff.txt', 'new', HOUR);
    const r = await reconcile(deps());
    expect(r.applied).toEqual({ done: 2, failed: [] });
    expect([fake.textOf('bucket-1', 'diff.txt'), fake.textOf('bucket-2', 'only1.txt')]).toEqual(['new', 'y']);
    expect(journal().map((e) => [e.action, e.key])).toEqual([['reconcile', 'diff.txt'], ['reconcile', 'only1.txt']]);
  });

  it('plans a name only missing somewhere, never deleted, without a HEAD', async () => {
    stamped('bucket-1', 'only1.txt', 'y', HOUR);
    const r = await reconcile(deps(), { dryRun: true, force: true });
    expect(r.entries).toEqual([{ key: 'only1.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2' }]);
    expect(s3mock).not.toHaveReceivedCommand(HeadObjectCommand);
  });

  it('reads the tombstone only of names the tombstone listing holds', async () => {
    for (const key of ['a.txt', 'b.txt', 'gone.txt']) {
      stamped('bucket-1', key, 'old', 2 * HOUR);
      stamped('bucket-2', key, 'new', HOUR);
    }
    setTombstone('gone.txt', now - 3 * HOUR);
    const r = await reconcile(deps(), { dryRun: true });

    expect(r.entries.map((e) => e.key)).toEqual(['a.txt', 'b.txt', 'gone.txt']);
    const tombstoneGets = s3mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input).filter((i) => i.Bucket === 'control' && i.Key?.startsWith('tombstones/'));
    expect(tombstoneGets.map((i) => i.Key)).toEqual([tombstoneKey('gone.txt')]);
  });

  it('goes on merging while a name\'s HEADs are unanswered, and reports in key order', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}.txt`);
    for (const key of keys) {
      stamped('bucket-1', key, 'old', 2 * HOUR);
      stamped('bucket-2', key, 'new', HOUR);
    }
    // The first name's HEAD on server2 is held until the 33rd name has been HEADed: a walk that
    // waited for a batch of 32 names' HEADs before merging the next would never get there.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const headed: string[] = [];
    fake.hold((command, input) => {
      if (command !== 'HeadObject') return undefined;
      headed.push(input.Key!);
      if (input.Key === 'k32.txt') release();
      return input.Key === 'k00.txt' && input.Bucket === 'bucket-2' ? released : undefined;
    });
    const r = await reconcile(deps(), { dryRun: true });

    expect(new Set(headed)).toEqual(new Set(keys));
    expect(r.entries.map((e) => e.key)).toEqual(keys);
  });

  it('deletes copies made before their tombstone and keeps one made after it', async () => {
    stamped('bucket-1', 'dead.txt', 'd', 2 * HOUR);
    stamped('bucket-2', 'dead.txt', 'd', 2 * HOUR);
    setTombstone('dead.txt', now - HOUR);
    stamped('bucket-1', 'kept.txt', 'k', 30 * 60_000);
    setTombstone('kept.txt', now - HOUR);
    stamped('bucket-1', 'other1.txt', 'o', HOUR, 'o');
    stamped('bucket-2', 'other1.txt', 'o', HOUR, 'o');
    stamped('bucket-1', 'other2.txt', 'p', HOUR, 'p');
    stamped('bucket-2', 'other2.txt', 'p', HOUR, 'p');
    const r = await reconcile(deps());
    expect(r.entries).toEqual([
      { key: 'dead.txt', action: 'delete', from: ['server1', 'server2'], deletedAt: new Date(now - HOUR).toISOString(), reason: expect.stringContaining('before the delete') },
      { key: 'kept.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2' },
    ]);
    expect(fake.has('bucket-1', 'dead.txt') ?? fake.has('bucket-2', 'dead.txt')).toBeUndefined();
    expect(fake.textOf('bucket-2', 'kept.txt')).toBe('k');
  });

  it('brings back a kept version of a name no store lists any more (soak seed 2037): a late delete took every copy', async () => {
    // W (mtime 50) was replaced by V (mtime 100, made before it) and kept; a delete between the
    // two then removed V everywhere. Only the control bucket still knows the name.
    fake.stamped('control', 'superseded/dir/d.txt/w', 'W', { mtime: 50, made: now - HOUR, id: 'w' });
    fake.put('control', tombstoneKey('dir/d.txt'), JSON.stringify({ key: 'dir/d.txt', deletedAt: now - 2 * HOUR, who: 'bob', intents: [], kept: true }));
    stamped('bucket-1', 'other.txt', 'o', HOUR, 'o');
    stamped('bucket-2', 'other.txt', 'o', HOUR, 'o');
    const dry = await reconcile(deps(), { dryRun: true });
    expect(dry.entries).toEqual([{ key: 'dir/d.txt', action: 'copy', from: 'superseded', to: ['server1', 'server2'], reason: 'missing on server1; missing on server2' }]);
    const r = await reconcile(deps());
    expect(r.applied).toEqual({ done: 1, failed: [] });
    expect([fake.textOf('bucket-1', 'dir/d.txt'), fake.textOf('bucket-2', 'dir/d.txt')]).toEqual(['W', 'W']);
    // Once a later delete makes it dead, the name stays gone.
    fake.put('control', tombstoneKey('dir/d.txt'), JSON.stringify({ key: 'dir/d.txt', deletedAt: now, who: 'bob', intents: [], kept: true }));
    fake.delete('bucket-1', 'dir/d.txt');
    fake.delete('bucket-2', 'dir/d.txt');
    expect((await reconcile(deps(), { force: true })).entries).toEqual([]);
    expect(fake.has('bucket-1', 'dir/d.txt') ?? fake.has('bucket-2', 'dir/d.txt')).toBeUndefined();
  });

  it('stamps an old orphan from LastModified and deletes it when its second ended before the delete', async () => {
    fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: now - 3 * HOUR });
    fake.direct('bucket-2', 'o.txt', 'orphan', { lastModified: now - 3 * HOUR });
    setTombstone('o.txt', now - 2 * HOUR);
    const r = await reconcile(deps({ eventMaxAgeMs: HOUR }), { force: true });
    expect(r.applied).toEqual({ done: 1, failed: [] });
    expect(fake.has('bucket-1', 'o.txt') ?? fake.has('bucket-2', 'o.txt')).toBeUndefined();
    expect(journal().map((e) => e.action)).toEqual(['adopt', 'adopt', 'reconcile', 'reconcile']);
  });

  it('stamps an old orphan without tombstone as made at its LastModified, then spreads it', async () => {
    fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: now - 3 * HOUR });
    await reconcile(deps({ eventMaxAgeMs: HOUR }), { force: true });
    expect(fake.has('bucket-1', 'o.txt')!.metadata[META.made]).toBe(String(now - 3 * HOUR));
    expect(fake.has('bucket-2', 'o.txt')!.metadata).toMatchObject({ [META.made]: String(now - 3 * HOUR), [META.replicaOf]: 'server1' });
  });

  it('stamps a multipart orphan in place, then looks again before copying it (the stamping changed its ETag)', async () => {
    const orphan = fake.direct('bucket-1', 'big.bin', 'parts', { lastModified: now - 3 * HOUR, etag: 'abc-2' });
    const r = await reconcile(deps({ eventMaxAgeMs: HOUR }), { force: true });
    expect(r.applied).toEqual({ done: 1, failed: [] });
    expect(fake.has('bucket-1', 'big.bin')!.etag).not.toBe(orphan.etag);
    expect(fake.textOf('bucket-2', 'big.bin')).toBe('parts');
  });

  it('leaves an orphan replaced while it was being stamped to the new version\'s event', async () => {
    fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: now - 3 * HOUR });
    fake.stamped('bucket-2', 'x.txt', 'x', { mtime: now - HOUR });
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-1' && fake.textOf('bucket-1', 'o.txt') === 'orphan') fake.direct('bucket-1', 'o.txt', 'replaced', { lastModified: now });
    });
    const r = await reconcile(deps({ eventMaxAgeMs: HOUR }), { force: true });
    expect(r.applied!.failed).toEqual([]);
    expect(fake.has('bucket-1', 'o.txt')!.metadata).toEqual({});
    expect(fake.has('bucket-2', 'o.txt')).toBeUndefined();
  });

  it('leaves a young orphan under a tombstone to its own event, reporting it as waiting', async () => {
    fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: now - 60_000 });
    fake.direct('bucket-2', 'o.txt', 'orphan', { lastModified: now - 60_000 });
    setTombstone('o.txt', now - 30_000);
    const r = await reconcile(deps({ eventMaxAgeMs: HOUR }), { now });
    expect(r.entries).toEqual([]);
    expect(r.waiting).toEqual([{ key: 'o.txt', stores: ['server1', 'server2'], reason: 'written outside dfs; its own S3 event has not stamped it yet' }]);
    expect(storeWrites()).toEqual([]);
  });

  it('replays the failure queue first when not a dry run: a delete whose event failed is not undone', async () => {
    stamped('bucket-2', 'a.txt', 'x', HOUR);
    const queue = new MemoryQueue([{ id: 'm1', notification: removedEvent('bucket-1', 'a.txt', now - 30 * 60_000) }]);
    const r = await reconcile(deps({ failures: queue }), { force: true });
    expect(r.replayed).toEqual({ replayed: 1, failed: 0 });
    expect(queue.removed).toEqual(['m1']);
    expect(fake.has('bucket-1', 'a.txt') ?? fake.has('bucket-2', 'a.txt')).toBeUndefined();
    expect(fake.records<Tombstone>('tombstones/')[0]).toMatchObject({ deletedAt: now - 30 * 60_000, who: 'server1 (direct)' });
  });

  it('replays the failure queue only within replayBudgetMs: none at all with 0', async () => {
    stamped('bucket-2', 'a.txt', 'x', HOUR);
    const queue = new MemoryQueue([{ id: 'm1', notification: removedEvent('bucket-1', 'a.txt', now - 30 * 60_000) }]);
    const r = await reconcile(deps({ failures: queue }), { force: true, replayBudgetMs: 0 });
    expect(r.replayed).toEqual({ replayed: 0, failed: 0 });
    expect(queue.receives).toBe(0);
    expect(queue.items.map((i) => i.id)).toEqual(['m1']);
  });

  it('does not replay the failure queue on a dry run', async () => {
    stamped('bucket-2', 'a.txt', 'x', HOUR);
    const queue = new MemoryQueue([{ id: 'm1', notification: removedEvent('bucket-1', 'a.txt', now - 30 * 60_000) }]);
    const r = await reconcile(deps({ failures: queue }), { dryRun: true, force: true });
    expect(queue.receives).toBe(0);
    expect(r).not.toHaveProperty('replayed');
    expect(r.entries).toEqual([{ key: 'a.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1' }]);
    expect(fake.writes).toEqual([]);
  });

  it('keeps a notification that fails again in the queue, and goes on with the others', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
    try {
      stamped('bucket-1', 'b.txt', 'y', HOUR);
      fake.fail('bucket-3', networkError);
      const queue = new MemoryQueue([
        { id: 'bad', notification: { Records: [{ eventName: 'ObjectCreated:Put', eventTime: new Date(now).toISOString(), s3: { bucket: { name: 'bucket-1' }, object: { key: 'b.txt', sequencer: '0B' } } }] } },
        { id: 'empty', notification: null },
      ]);
      const d = deps({ failures: queue }, 3);
      const running = reconcile(d, { force: true });
      running.catch(() => undefined);
      await jest.runAllTimersAsync();
      const r = await running;
      expect(r.replayed).toEqual({ replayed: 1, failed: 1 });
      expect(queue.removed).toEqual(['empty']);
      expect(queue.items.map((i) => i.id)).toEqual(['bad']);
    } finally {
      jest.useRealTimers();
    }
  });

  describe('guards', () => {
    it('refuses, writing nothing, when a store is down, and goes on with the others with force', async () => {
      stamped('bucket-1', 'a.txt', 'x', HOUR);
      fake.fail('bucket-3', networkError);
      await expect(reconcile(deps({}, 3))).rejects.toThrow(new ConflictError('server3 unavailable: reconciling without it could undo its changes (use force to go on with the others)'));
      expect(fake.writes).toEqual([]);
      const r = await reconcile(deps({}, 3), { force: true });
      expect(r.unavailable).toEqual(['server3']);
      expect(fake.textOf('bucket-2', 'a.txt')).toBe('x');
    });

    it('refuses to fill a completely empty store without force', async () => {
      stamped('bucket-1', 'a.txt', 'x', HOUR);
      await expect(reconcile(deps(), { dryRun: true })).rejects.toThrow(/server2 is completely empty/);
    });

    it('allows deleting exactly half of a store and refuses one more without force', async () => {
      for (const k of ['a', 'b', 'c', 'd']) {
        stamped('bucket-1', `${k}.txt`, k, 2 * HOUR, k);
        stamped('bucket-2', `${k}.txt`, k, 2 * HOUR, k);
      }
      setTombstone('a.txt', now - HOUR);
      setTombstone('b.txt', now - HOUR);
      expect((await reconcile(deps(), { dryRun: true })).counts.deletes).toBe(4);
      setTombstone('c.txt', now - HOUR);
      await expect(reconcile(deps(), { dryRun: true })).rejects.toThrow('the plan deletes 3 of 4 objects on server1 (over 50 %): refusing; use force');
      expect((await reconcile(deps(), { dryRun: true, force: true })).counts.deletes).toBe(6);
    });
  });

  describe('applyEntries', () => {
    it('uses only the keys: a forged delete of a live file, dated far in the future, deletes nothing', async () => {
      stamped('bucket-1', 'a.txt', 'x', HOUR, 'w');
      stamped('bucket-2', 'a.txt', 'x', HOUR, 'w');
      const forged = { key: 'a.txt', action: 'delete', from: ['server1', 'server2'], deletedAt: '2999-01-01T00:00:00.000Z', reason: 'trust me' };
      expect(await applyEntries(deps(), { entries: [forged] })).toEqual({ done: 1, failed: [] });
      expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
      expect(s3mock).not.toHaveReceivedCommand(PutObjectCommand);
      expect(fake.records('tombstones/')).toEqual([]);
    });

    it('decides each key anew: a forged copy from the older store copies the newer one instead', async () => {
      stamped('bucket-1', 'a.txt', 'old', 2 * HOUR);
      stamped('bucket-2', 'a.txt', 'new', HOUR);
      await applyEntries(deps(), { entries: [{ key: 'a.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'x' }] });
      expect([fake.textOf('bucket-1', 'a.txt'), fake.textOf('bucket-2', 'a.txt')]).toEqual(['new', 'new']);
      expect(s3mock).toHaveReceivedCommandTimes(CopyObjectCommand, 1);
    });

    it.each([
      ['no entries', { entries: [] }, BadRequestError],
      [`more than ${APPLY_BATCH} entries`, { entries: Array.from({ length: APPLY_BATCH + 1 }, (_, i) => ({ key: `k${i}` })) }, BadRequestError],
      ['an entry without a key', { entries: [{ action: 'copy' }] }, BadRequestError],
      ['not an object', 'apply please', BadRequestError],
      ['an invalid key', { entries: [{ key: '../etc/passwd' }] }, InvalidKeyError],
    ])('refuses %s before touching anything', async (_, body, type) => {
      await expect(applyEntries(deps(), body)).rejects.toThrow(type);
      expect(s3mock.calls()).toHaveLength(0);
    });
  });

  describe('applyPlan', () => {
    it('collects the keys it could not settle instead of throwing, and counts the rest', async () => {
      stamped('bucket-1', 'a.txt', 'x', HOUR);
      stamped('bucket-1', 'b.txt', 'y', HOUR);
      fake.fail('bucket-2', networkError, { command: 'CopyObject', when: (i) => (i as { Key?: string }).Key === 'a.txt' });
      const progress: [number, number][] = [];
      const r = await applyPlan(deps(), ['a.txt', 'b.txt'], (done, total) => progress.push([done, total]));
      expect(r).toEqual({ done: 1, failed: [{ key: 'a.txt', error: 'not settled on server2; the next reconcile retries' }] });
      expect(progress).toEqual([[1, 2], [2, 2]]);
    });

    it('dates orphans by the now it is given: one younger than the event age waits, one exactly as old is stamped', async () => {
      const lm = now - 10 * HOUR;
      fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: lm });
      expect(await applyPlan(deps({ eventMaxAgeMs: HOUR }), ['o.txt'], undefined, undefined, lm + HOUR - 1)).toEqual({ done: 1, failed: [] });
      expect(fake.has('bucket-1', 'o.txt')!.metadata).toEqual({});
      expect(fake.has('bucket-2', 'o.txt')).toBeUndefined();
      await applyPlan(deps({ eventMaxAgeMs: HOUR }), ['o.txt'], undefined, undefined, lm + HOUR);
      expect(fake.has('bucket-1', 'o.txt')!.metadata[META.made]).toBe(String(lm));
      expect(fake.textOf('bucket-2', 'o.txt')).toBe('orphan');
    });

    it("gets reconcile's now: an orphan young at that time is left to its event when applied too", async () => {
      const then = now - 10 * HOUR;
      fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: then - 30 * 60_000 });
      stamped('bucket-2', 'o.txt', 'stamped', 11 * HOUR); // server3 lacks it: the plan copies there
      const r = await reconcile(deps({ eventMaxAgeMs: HOUR }, 3), { now: then, force: true });
      expect(r.entries).toEqual([{ key: 'o.txt', action: 'copy', from: 'server2', to: ['server3'], reason: 'missing on server3' }]);
      expect(r.applied).toEqual({ done: 1, failed: [] });
      expect(fake.has('bucket-1', 'o.txt')!.metadata).toEqual({});
      expect(fake.textOf('bucket-3', 'o.txt')).toBe('stamped');
    });

    it('names a store that does not answer at all', async () => {
      fake.fail('bucket-2', networkError);
      stamped('bucket-1', 'a.txt', 'x', HOUR);
      expect(await applyPlan(deps(), ['a.txt'])).toEqual({ done: 0, failed: [{ key: 'a.txt', error: 'not settled on server2; the next reconcile retries' }] });
    });
  });
});
