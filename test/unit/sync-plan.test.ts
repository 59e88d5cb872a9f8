import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { applyEntries, applyPlan, reconcile } from '../../lib/sync';
import { AllStoresUnavailableError, ConflictError, ObjectChangedError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import { acquireLock, lockRecordKey } from '../../lib/locks';
import { tombstoneKey } from '../../lib/tombstones';
import type { JournalEvent } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { precondition, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';

/*
 * What reconcile's report says (counts, held and waiting names), how its walk looks at names
 * (which it HEADs, how many at once, what a failure mid-walk does), and how applyPlan and
 * applyEntries report what they could not settle. Against a ConditionalS3, as sync.test.ts.
 */

const HOUR = 3600_000;
const alice = { name: 'alice', scope: 'write' as const };

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const [s1, s2, s3] = [1, 2, 3].map((n): Store => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
const withStores = (stores: Store[], over: Partial<Deps> = {}) => makeDeps(stores, { control: { bucket: 'control', s3: client }, flavor: 'aws', ...over });
const two = (over: Partial<Deps> = {}) => withStores([s1!, s2!], over);
const three = (over: Partial<Deps> = {}) => withStores([s1!, s2!, s3!], over);
const journal = () => fake.records<JournalEvent>('journal/');
const iso = (ms: number) => new Date(ms).toISOString();
const setTombstone = (key: string, deletedAt: number) => fake.put('control', tombstoneKey(key), JSON.stringify({ key, deletedAt, who: 'bob', intents: [] }));
/** Keys of the HEADs the stores received, in order. */
const headed = () => s3mock.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.Key!);

let now: number;
beforeEach(() => (now = Date.now()));
/** A write made `ago` ms before now, through dfs. */
const stamped = (bucket: string, key: string, text: string, ago: number, id = `w-${text}`) => fake.stamped(bucket, key, text, { mtime: now - ago, made: now - ago, id });
/** `n` names that differ between server1 (older) and server2 (newer): each must be looked at. */
const differing = (n: number) => {
  const keys = Array.from({ length: n }, (_, i) => `k${String(i).padStart(2, '0')}.txt`);
  for (const key of keys) {
    stamped('bucket-1', key, 'old', 2 * HOUR);
    stamped('bucket-2', key, 'new', HOUR);
  }
  return keys;
};

describe('reconcile: the counts', () => {
  it('counts a name every listing shows alike as a match without a HEAD, and reports a real run as no dry run', async () => {
    stamped('bucket-1', 'same.txt', 'x', HOUR, 'w');
    stamped('bucket-2', 'same.txt', 'x', HOUR, 'w');
    const r = await reconcile(two());
    expect(r).toEqual({
      dryRun: false,
      counts: { match: 1, differ: 0, missing: { server1: 0, server2: 0 }, copies: 0, deletes: 0 },
      entries: [],
      unavailable: [],
      applied: { done: 0, failed: [] },
    });
    expect(s3mock).not.toHaveReceivedCommand(HeadObjectCommand);
  });

  it('counts a looked-at name alike everywhere as a match, one that differs as differ, and one a store lacks as neither', async () => {
    // A tombstone older than every copy: each name is looked at, none is dead.
    stamped('bucket-1', 'alive.txt', 'a', HOUR, 'a');
    stamped('bucket-2', 'alive.txt', 'a', HOUR, 'a');
    setTombstone('alive.txt', now - 2 * HOUR);
    stamped('bucket-1', 'diff.txt', 'old', 2 * HOUR);
    stamped('bucket-2', 'diff.txt', 'new', HOUR);
    stamped('bucket-1', 'kept.txt', 'k', 30 * 60_000);
    setTombstone('kept.txt', now - HOUR);
    const r = await reconcile(two(), { dryRun: true });
    expect(r.counts).toEqual({ match: 1, differ: 1, missing: { server1: 0, server2: 1 }, copies: 2, deletes: 0 });
    expect(r.entries.map((e) => [e.key, e.action])).toEqual([['diff.txt', 'copy'], ['kept.txt', 'copy']]);
  });

  it('copies a name missing on two stores in one entry, with a reason per store', async () => {
    stamped('bucket-1', 'a.txt', 'x', HOUR);
    const r = await reconcile(three(), { dryRun: true, force: true });
    expect(r.entries).toEqual([{ key: 'a.txt', action: 'copy', from: 'server1', to: ['server2', 'server3'], reason: 'missing on server2; missing on server3' }]);
    expect(r.counts).toMatchObject({ copies: 2, missing: { server1: 0, server2: 1, server3: 1 } });
  });

  it('looks at a name some store lacks when the listings cannot prove its copies equal, and copies the newest', async () => {
    // Multipart ETags of one size: the listings cannot tell whether server1 and server2 agree.
    fake.stamped('bucket-1', 'big.bin', 'aaaa', { mtime: now - 2 * HOUR, id: 'old', etag: 'abc-2' });
    fake.stamped('bucket-2', 'big.bin', 'bbbb', { mtime: now - HOUR, id: 'new', etag: 'def-2' });
    const r = await reconcile(three(), { dryRun: true, force: true });
    expect(r.entries).toEqual([{ key: 'big.bin', action: 'copy', from: 'server2', to: ['server1', 'server3'], reason: expect.stringMatching(/^server2 newer .*; missing on server3$/) }]);
    expect(new Set(headed())).toEqual(new Set(['big.bin']));
  });

  it('looks at a name some store lacks when it has a tombstone: a copy made before the delete is deleted, not spread', async () => {
    stamped('bucket-1', 'dead.txt', 'd', 2 * HOUR);
    setTombstone('dead.txt', now - HOUR);
    for (const k of ['a', 'b']) {
      stamped('bucket-1', `${k}.txt`, k, HOUR, k);
      stamped('bucket-2', `${k}.txt`, k, HOUR, k);
    }
    const r = await reconcile(two(), { dryRun: true });
    expect(r.entries).toEqual([{ key: 'dead.txt', action: 'delete', from: ['server1'], deletedAt: iso(now - HOUR), reason: expect.stringContaining('before the delete') }]);
    expect(headed()).toEqual(['dead.txt', 'dead.txt']);
  });

  it('reconciles a stack whose stores are all empty without force: nothing to refuse', async () => {
    const r = await reconcile(two(), { dryRun: true });
    expect(r).toEqual({ dryRun: true, counts: { match: 0, differ: 0, missing: { server1: 0, server2: 0 }, copies: 0, deletes: 0 }, entries: [], unavailable: [] });
  });

  it('plans an old orphan as if stamped on a dry run, and stamps nothing', async () => {
    fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: now - 3 * HOUR });
    setTombstone('o.txt', now - 4 * HOUR); // a tombstone: the name is looked at
    const r = await reconcile(two({ eventMaxAgeMs: HOUR }), { dryRun: true, force: true });
    expect(r.entries).toEqual([{ key: 'o.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2' }]);
    expect(r).not.toHaveProperty('waiting');
    expect(fake.writes).toEqual([]);
    expect(fake.has('bucket-1', 'o.txt')!.metadata).toEqual({});
  });

  it('journals why it dated an orphan it stamped', async () => {
    fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: now - 3 * HOUR });
    expect(await applyPlan(two({ eventMaxAgeMs: HOUR }), ['o.txt'])).toEqual({ done: 1, failed: [] });
    expect(journal().filter((e) => e.action === 'adopt')).toEqual([
      expect.objectContaining({ action: 'adopt', key: 'o.txt', from: 'server1', reason: `no event stamped it: made taken as ${iso(now - 3 * HOUR)} from S3's LastModified` }),
    ]);
  });
});

describe('reconcile: held and waiting names', () => {
  it('reports copies into locked stores as held, in store order whatever the order of the stores', async () => {
    const [l1, l2] = [await acquireLock(two(), 'a.txt', 'server1', alice), await acquireLock(two(), 'a.txt', 'server2', alice)];
    stamped('bucket-3', 'a.txt', 'x', HOUR);
    const r = await reconcile(withStores([s3!, s2!, s1!]), { dryRun: true, force: true });
    expect(r.entries).toEqual([{ key: 'a.txt', action: 'copy', from: 'server3', to: ['server2', 'server1'], reason: 'missing on server2; missing on server1' }]);
    expect(r.held).toEqual([
      { key: 'a.txt', store: 'server1', holder: 'alice', since: l1.since },
      { key: 'a.txt', store: 'server2', holder: 'alice', since: l2.since },
    ]);
  });

  it('reports a delete into a locked store as held, and an orphan waiting in a locked store as waiting only', async () => {
    stamped('bucket-1', 'dead.txt', 'd', 2 * HOUR, 'd');
    stamped('bucket-2', 'dead.txt', 'd', 2 * HOUR, 'd');
    setTombstone('dead.txt', now - HOUR);
    fake.direct('bucket-1', 'young.txt', 'y', { lastModified: now - 60_000 });
    fake.direct('bucket-2', 'young.txt', 'y', { lastModified: now - 60_000 });
    setTombstone('young.txt', now - 2 * HOUR);
    for (const k of ['a', 'b']) {
      stamped('bucket-1', `${k}.txt`, k, HOUR, k);
      stamped('bucket-2', `${k}.txt`, k, HOUR, k);
    }
    const lock = await acquireLock(two(), 'dead.txt', 'server2', alice);
    await acquireLock(two(), 'young.txt', 'server1', alice);
    const r = await reconcile(two({ eventMaxAgeMs: HOUR }), { dryRun: true, now });
    expect(r.entries).toEqual([{ key: 'dead.txt', action: 'delete', from: ['server1', 'server2'], deletedAt: iso(now - HOUR), reason: expect.stringContaining('before the delete') }]);
    expect(r.held).toEqual([{ key: 'dead.txt', store: 'server2', holder: 'alice', since: lock.since }]);
    expect(r.waiting).toEqual([{ key: 'young.txt', stores: ['server1', 'server2'], reason: 'written outside dfs; its own S3 event has not stamped it yet' }]);
  });

  it('reports waiting names in key order whichever was looked at first', async () => {
    for (const key of ['a.txt', 'b.txt']) {
      fake.direct('bucket-1', key, 'y', { lastModified: now - 60_000 });
      fake.direct('bucket-2', key, 'y', { lastModified: now - 60_000 });
      setTombstone(key, now - HOUR);
    }
    // a.txt's HEADs are answered only well after b.txt's: b.txt is recorded first.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    fake.hold((command, input) => {
      if (command !== 'HeadObject') return undefined;
      if (input.Key === 'b.txt') setTimeout(release, 100);
      return input.Key === 'a.txt' ? released : undefined;
    });
    const r = await reconcile(two({ eventMaxAgeMs: HOUR }), { dryRun: true, now });
    expect(r.waiting!.map((w) => w.key)).toEqual(['a.txt', 'b.txt']);
  });
});

describe('reconcile: the walk', () => {
  it('HEADs at most 32 names at once', async () => {
    differing(100);
    // server1's HEADs are held until the walk stops starting new ones (or one too many starts).
    const pending = new Set<string>();
    let most = 0;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let last = -1;
    const poll = setInterval(() => (pending.size === last ? release() : (last = pending.size)), 100);
    fake.hold((command, input) => {
      if (command !== 'HeadObject' || input.Bucket !== 'bucket-1') return undefined;
      pending.add(input.Key!);
      most = Math.max(most, pending.size);
      if (pending.size > 32) release();
      return released.then(() => void pending.delete(input.Key!));
    });
    try {
      const r = await reconcile(two(), { dryRun: true });
      expect(r.entries).toHaveLength(100);
    } finally {
      clearInterval(poll);
    }
    expect(most).toBe(32);
  });

  it('turns the control bucket failing during a look into a 409, and starts no look after it', async () => {
    const keys = differing(100);
    fake.fail('control', networkError, { command: 'GetObject', when: (i) => i.Key === lockRecordKey('k00.txt') });
    await expect(reconcile(two())).rejects.toThrow(new ConflictError('control stopped answering during reconcile; nothing was applied, try again'));
    expect(headed()).not.toContain(keys[99]);
    expect(fake.writes).toEqual([]);
  });

  it('turns the failure of the last look into a 409 as well', async () => {
    differing(1);
    fake.fail('control', networkError, { command: 'GetObject', when: (i) => i.Key === lockRecordKey('k00.txt') });
    await expect(reconcile(two())).rejects.toThrow(new ConflictError('control stopped answering during reconcile; nothing was applied, try again'));
    expect(fake.writes).toEqual([]);
  });

  it('turns a store whose HEAD fails mid-walk, its listing having answered, into a 409 too: the name is not left out unsaid', async () => {
    differing(3);
    fake.fail('bucket-2', networkError, { command: 'HeadObject', when: (i) => (i as { Key?: string }).Key === 'k01.txt' });
    await expect(reconcile(two(), { dryRun: true })).rejects.toThrow(new ConflictError('server2 stopped answering during reconcile; nothing was applied, try again'));
    await expect(reconcile(two())).rejects.toThrow(ConflictError);
    expect(fake.writes).toEqual([]);
  });

  /** 1001 names alike on server1 and server2 (two listing pages), and one only on server1 first. */
  const twoPages = () => {
    stamped('bucket-1', 'a-first.txt', 'f', HOUR);
    for (let i = 0; i < 1001; i++) {
      stamped('bucket-1', `p${String(i).padStart(4, '0')}`, 'x', HOUR, 'same');
      stamped('bucket-2', `p${String(i).padStart(4, '0')}`, 'x', HOUR, 'same');
    }
  };
  const laterPage = (i: unknown) => (i as { ContinuationToken?: string }).ContinuationToken !== undefined;

  it('turns a store whose listing stops answering mid-walk into a 409, applying nothing', async () => {
    twoPages();
    fake.fail('bucket-2', networkError, { command: 'ListObjectsV2', when: laterPage });
    await expect(reconcile(two())).rejects.toThrow(new ConflictError('server2 stopped answering during reconcile; nothing was applied, try again'));
    expect(fake.writes).toEqual([]);
  });

  it('throws a mid-walk listing error that is not a store failing as it is', async () => {
    twoPages();
    fake.fail('bucket-2', () => s3Error('NotFound', 404), { command: 'ListObjectsV2', when: laterPage });
    await expect(reconcile(two())).rejects.toMatchObject({ name: 'NotFound' });
    expect(fake.writes).toEqual([]);
  });

  it("asks for a listing's next page before looking at the names of the first", async () => {
    twoPages();
    stamped('bucket-2', 'a-first.txt', 'other', 2 * HOUR); // now differs: looked at
    await reconcile(two(), { dryRun: true });
    const order = s3mock.calls().map((c) => c.args[0]);
    const firstHead = order.findIndex((c) => c instanceof HeadObjectCommand);
    const nextPage = order.findIndex((c) => c instanceof ListObjectsV2Command && c.input.ContinuationToken !== undefined);
    expect(firstHead).toBeGreaterThan(-1);
    expect(nextPage).toBeGreaterThan(-1);
    expect(nextPage).toBeLessThan(firstHead);
  });
});

describe('reconcile: stores that do not answer', () => {
  it('throws a listing error that is not a store failing, instead of taking the store for unavailable', async () => {
    stamped('bucket-1', 'a.txt', 'x', HOUR);
    fake.fail('bucket-2', () => s3Error('NotFound', 404), { command: 'ListObjectsV2' });
    await expect(reconcile(two(), { force: true })).rejects.toMatchObject({ name: 'NotFound' });
  });

  it('refuses with AllStoresUnavailable when no store answers, force or not', async () => {
    fake.fail('bucket-1', networkError);
    fake.fail('bucket-2', networkError);
    await expect(reconcile(two())).rejects.toThrow(AllStoresUnavailableError);
    await expect(reconcile(two(), { force: true })).rejects.toThrow(AllStoresUnavailableError);
  });

  it('names every store that does not answer in its refusal', async () => {
    fake.fail('bucket-2', networkError);
    fake.fail('bucket-3', networkError);
    await expect(reconcile(three())).rejects.toThrow(new ConflictError('server2, server3 unavailable: reconciling without it could undo its changes (use force to go on with the others)'));
  });

  it('with force, plans and counts on the stores that answered only', async () => {
    stamped('bucket-1', 'a.txt', 'x', HOUR);
    stamped('bucket-1', 'b.txt', 'y', HOUR, 'b');
    stamped('bucket-2', 'b.txt', 'y', HOUR, 'b');
    fake.fail('bucket-3', networkError);
    const r = await reconcile(three(), { dryRun: true, force: true });
    expect(r).toEqual({
      dryRun: true,
      counts: { match: 1, differ: 0, missing: { server1: 0, server2: 1 }, copies: 1, deletes: 0 },
      entries: [{ key: 'a.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2' }],
      unavailable: ['server3'],
    });
  });
});

describe('applyPlan: what it could not settle', () => {
  it('with force, calls a key settled on every store that answered done, and still reports a store that answered but failed', async () => {
    stamped('bucket-1', 'a.txt', 'x', HOUR);
    stamped('bucket-1', 'b.txt', 'y', HOUR);
    fake.fail('bucket-3', networkError);
    fake.fail('bucket-2', networkError, { command: 'CopyObject', when: (i) => i.Key === 'b.txt' });
    expect(await applyPlan(three(), ['a.txt', 'b.txt'], undefined, undefined, Date.now(), true)).toEqual({
      done: 1,
      failed: [{ key: 'b.txt', error: 'not settled on server2; the next reconcile retries' }],
    });
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('x');
  });

  it('reports a key whose copy found its target changed as changed meanwhile, after the stores that failed', async () => {
    stamped('bucket-1', 'a.txt', 'new', HOUR);
    stamped('bucket-2', 'a.txt', 'old', 2 * HOUR);
    fake.fail('bucket-3', networkError);
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-2' && fake.textOf('bucket-2', 'a.txt') === 'old') stamped('bucket-2', 'a.txt', 'newer', 0);
    });
    expect(await applyPlan(three(), ['a.txt'])).toEqual({ done: 0, failed: [{ key: 'a.txt', error: 'not settled on server3, (changed meanwhile); the next reconcile retries' }] });
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('newer');
  });

  it('reports a store that stops answering while an orphan is stamped, and goes on with the next key', async () => {
    fake.direct('bucket-1', 'o.txt', 'orphan', { lastModified: now - 3 * HOUR });
    stamped('bucket-1', 'b.txt', 'y', HOUR);
    fake.fail('bucket-1', networkError, { command: 'CopyObject' });
    const progress: [number, number][] = [];
    const r = await applyPlan(two({ eventMaxAgeMs: HOUR }), ['o.txt', 'b.txt'], (done, total) => progress.push([done, total]));
    expect(r).toEqual({ done: 1, failed: [{ key: 'o.txt', error: 'server1 is unavailable; the next reconcile retries' }] });
    expect(progress).toEqual([[1, 2], [2, 2]]);
    expect(journal().map((e) => [e.action, e.key])).toEqual([['reconcile', 'b.txt']]);
    expect(fake.has('bucket-2', 'o.txt')).toBeUndefined();
  });

  it('throws an error that is not a store failing instead of leaving it to the next reconcile', async () => {
    stamped('bucket-1', 'a.txt', 'x', HOUR);
    fake.fail('control', precondition, { command: 'GetObject', when: (i) => i.Key === lockRecordKey('a.txt') });
    await expect(applyPlan(two(), ['a.txt'])).rejects.toThrow(ObjectChangedError);
  });
});

describe('applyEntries: force', () => {
  it('passes force on: without it a store that does not answer leaves the key unsettled, with it the others are settled', async () => {
    stamped('bucket-1', 'a.txt', 'x', HOUR);
    fake.fail('bucket-3', networkError);
    const body = { entries: [{ key: 'a.txt' }] };
    expect(await applyEntries(three(), body)).toEqual({ done: 0, failed: [{ key: 'a.txt', error: 'not settled on server3; the next reconcile retries' }] });
    expect(await applyEntries(three(), body, { force: true })).toEqual({ done: 1, failed: [] });
    expect(fake.textOf('bucket-2', 'a.txt')).toBe('x');
  });
});
