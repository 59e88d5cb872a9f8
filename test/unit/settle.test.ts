import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { acquireLock, queueEntryKey } from '../../lib/locks';
import { applyKeyPlan, ARCHIVE, isNewer, keepVersion, knownSame, observeKey, planKey, settleKey, type KeyView } from '../../lib/settle';
import { META, writeMetadata } from '../../lib/stamps';
import { CLOCK_SKEW_MS, tombstoneKey, type Tombstone } from '../../lib/tombstones';
import type { ObjectHead, Store } from '../../lib/stores';
import type { JournalEvent } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { T, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';

/*
 * planKey is the decision half of settling a key (pure: every row a plain call); applyKeyPlan
 * and settleKey act on a ConditionalS3 that refuses stale conditional writes as S3 does.
 */

const iso = (ms: number) => new Date(ms).toISOString();

interface CopyOpts {
  mtime?: number;
  made?: number;
  id?: string;
  etag?: string;
  size?: number;
  replicaOf?: string;
  unstamped?: boolean;
}

/** A copy as HEAD describes it: stamped (made = mtime unless told) unless `unstamped`. */
function copyOf(store: string, o: CopyOpts = {}): ObjectHead {
  const mtime = o.mtime ?? T;
  const made = o.made ?? mtime;
  const id = o.id ?? `w-${store}`;
  const metadata = o.unstamped ? { mtime: String(mtime) } : writeMetadata({ id, madeMs: made, who: 'ann' }, mtime);
  if (o.replicaOf) metadata[META.replicaOf] = o.replicaOf;
  return {
    store,
    size: o.size ?? 10,
    etag: o.etag ?? `"etag-${store}"`,
    mtimeMs: mtime,
    ...(o.unstamped ? {} : { stamp: { id, madeMs: made, who: 'ann' } }),
    lastModifiedMs: made,
    checksums: {},
    etagIsMd5: true,
    metadata,
  };
}

const tombstone = (deletedAt: number): Tombstone => ({ key: 'k.txt', deletedAt, who: 'bob', intents: [] });
const view = (copies: [string, ObjectHead | null][], deletedAt?: number): KeyView => ({
  key: 'k.txt',
  copies: new Map(copies),
  unavailable: [],
  ...(deletedAt !== undefined ? { tombstone: tombstone(deletedAt) } : {}),
});
const all = () => true;
const none = () => false;

describe('isNewer', () => {
  const v = (mtimeMs: number, etag: string) => ({ mtimeMs, etag });

  it('orders by mtime first, one millisecond apart', () => {
    expect(isNewer(v(T + 1, '"0000"'), v(T, '"ffff"'))).toBe(true);
    expect(isNewer(v(T, '"ffff"'), v(T + 1, '"0000"'))).toBe(false);
  });

  it('breaks an mtime tie by ETag, quotes ignored, so exactly one side wins', () => {
    expect([isNewer(v(T, '"bbbb"'), v(T, 'aaaa')), isNewer(v(T, 'aaaa'), v(T, '"bbbb"'))]).toEqual([true, false]);
  });

  it('calls nothing newer than itself or an equal version', () => {
    expect(isNewer(v(T, '"aaaa"'), v(T, '"aaaa"'))).toBe(false);
    expect(isNewer(v(T, '"aaaa"'), v(T, 'aaaa'))).toBe(false);
  });

  it('ignores when S3 wrote the copy', () => {
    const written: ObjectHead = { ...copyOf('a', { etag: '"aaaa"' }), lastModifiedMs: T + 99_000 };
    expect(isNewer(written, copyOf('b', { mtime: T + 1, etag: '"aaaa"' }))).toBe(false);
  });
});

describe('knownSame', () => {
  it('takes two copies of one write (same id, same size) as the same, whatever their ETags', () => {
    const a = copyOf('server1', { id: 'w', etag: '"abc-3"' });
    const b = copyOf('server2', { id: 'w', etag: '"def-2"' });
    expect(knownSame(a, b)).toBe(true);
    expect(knownSame(b, a)).toBe(true);
  });

  it('does not trust the id when the sizes differ', () => {
    expect(knownSame(copyOf('server1', { id: 'w', size: 10, etag: '"a-2"' }), copyOf('server2', { id: 'w', size: 11, etag: '"a-2"' }))).toBe(false);
  });

  it('falls back to the cheap evidence for different writes: equal MD5s, different MD5s, undecidable multipart ETags', () => {
    expect(knownSame(copyOf('a', { etag: '"aaaa"' }), copyOf('b', { etag: '"aaaa"' }))).toBe(true);
    expect(knownSame(copyOf('a', { etag: '"aaaa"' }), copyOf('b', { etag: '"bbbb"' }))).toBe(false);
    expect(knownSame(copyOf('a', { etag: '"x-2"' }), copyOf('b', { etag: '"y-3"' }))).toBe(false);
  });

  it('does not take an unstamped copy as the same write as anything', () => {
    expect(knownSame(copyOf('a', { unstamped: true, etag: '"x-2"' }), copyOf('b', { unstamped: true, etag: '"x-3"' }))).toBe(false);
  });
});

describe('knownSame with one copy stamped and one not', () => {
  it('falls back to the ETags either way round', () => {
    const stamped = copyOf('a', { etag: '"e1"' });
    const raw = copyOf('b', { unstamped: true, etag: '"e1"' });
    expect([knownSame(stamped, raw), knownSame(raw, stamped)]).toEqual([true, true]);
  });
});

describe('planKey', () => {
  it('has nothing to do when every store holds the same write', () => {
    const p = planKey(view([['server1', copyOf('server1', { id: 'w', etag: '"e"' })], ['server2', copyOf('server2', { id: 'w', etag: '"e"' })]]), all);
    expect(p.steps).toEqual([]);
    expect(p.winner?.store).toBe('server1');
  });

  it('has nothing to do for a name no store holds', () => {
    expect(planKey(view([['server1', null], ['server2', null]], T), all)).toEqual({ key: 'k.txt', steps: [] });
  });

  it('deletes every dead copy when no live write is left, each conditional on its ETag', () => {
    const p = planKey(view([['server1', copyOf('server1', { made: T - 5 })], ['server2', copyOf('server2', { made: T - 1, mtime: T + 99 })], ['server3', null]], T), all);
    expect(p).toEqual({
      key: 'k.txt',
      steps: [
        { op: 'delete', store: 'server1', etag: '"etag-server1"', reason: `server1's version was made ${iso(T - 5)}, before the delete at ${iso(T)}` },
        { op: 'delete', store: 'server2', etag: '"etag-server2"', reason: `server2's version was made ${iso(T - 1)}, before the delete at ${iso(T)}` },
      ],
    });
  });

  it('calls a copy made exactly at the delete dead, and one made a millisecond later live', () => {
    expect(planKey(view([['server1', copyOf('server1', { made: T })]], T), all).steps).toMatchObject([{ op: 'delete', store: 'server1' }]);
    const later = planKey(view([['server1', copyOf('server1', { made: T + 1 })], ['server2', null]], T), all);
    expect(later.steps).toEqual([{ op: 'copy', from: 'server1', to: 'server2', over: null, reason: 'missing on server2' }]);
  });

  it('replaces a dead copy with the live winner, whatever their mtimes', () => {
    // The dead copy carries a later mtime: a delete beats mtime, and the later write wins.
    const dead = copyOf('server1', { made: T - 10, mtime: T + 60_000 });
    const live = copyOf('server2', { made: T + 10, mtime: T - 60_000 });
    const p = planKey(view([['server1', dead], ['server2', live]], T), none);
    expect(p.winner).toBe(live);
    expect(p.steps).toEqual([{
      op: 'copy', from: 'server2', to: 'server1', over: '"etag-server1"',
      reason: expect.stringMatching(new RegExp(`^server1's version was made ${iso(T - 10)}, before the delete at ${iso(T)}; `)),
    }]);
  });

  it('overwrites a live older copy with the newer one, conditional on the older ETag', () => {
    const p = planKey(view([['server1', copyOf('server1', { mtime: T })], ['server2', copyOf('server2', { mtime: T + 1000 })]]), none);
    expect(p.steps).toEqual([{ op: 'copy', from: 'server2', to: 'server1', over: '"etag-server1"', reason: `server2 newer (${iso(T + 1000)} vs server1 ${iso(T)})` }]);
  });

  it('says "Sizes differ" with both sizes when they do', () => {
    const p = planKey(view([['server1', copyOf('server1', { size: 10 })], ['server2', copyOf('server2', { size: 12, mtime: T + 1000 })]]), none);
    expect(p.steps[0]!.reason).toBe(`Sizes differ (server2 12 vs server1 10), server2 newer (${iso(T + 1000)} vs ${iso(T)})`);
  });

  it('has nothing to do for copies of one write with different multipart ETags', () => {
    const p = planKey(view([['server1', copyOf('server1', { id: 'w', etag: '"a-2"' })], ['server2', copyOf('server2', { id: 'w', etag: '"b-3"' })]]), all);
    expect(p.steps).toEqual([]);
  });

  it('has nothing to do for different writes whose content the ETags prove equal', () => {
    const p = planKey(view([['server1', copyOf('server1', { etag: '"same"', mtime: T })], ['server2', copyOf('server2', { etag: '"same"', mtime: T + 5000 })]]), all);
    expect(p.steps).toEqual([]);
  });

  it('copies the newer of different writes whose content cannot be told apart cheaply', () => {
    const p = planKey(view([['server1', copyOf('server1', { etag: '"a-2"', mtime: T })], ['server2', copyOf('server2', { etag: '"b-2"', mtime: T + 1 })]]), all);
    expect(p.steps).toEqual([{ op: 'copy', from: 'server2', to: 'server1', over: '"a-2"', reason: `server2 newer (${iso(T + 1)} vs server1 ${iso(T)})` }]);
  });

  it('leaves an unstamped copy to its own event: a wait step, never a source, never a target', () => {
    const newestButUnstamped = copyOf('server1', { unstamped: true, mtime: T + 99_000 });
    const p = planKey(view([['server1', newestButUnstamped], ['server2', copyOf('server2', { mtime: T })], ['server3', null]]), all);
    expect(p.winner?.store).toBe('server2');
    expect(p.steps).toEqual([
      { op: 'wait', store: 'server1', reason: 'server1 holds a version written outside dfs that its own event has not stamped yet' },
      { op: 'copy', from: 'server2', to: 'server3', over: null, reason: 'missing on server3' },
    ]);
  });

  it('neither deletes nor copies over an unstamped copy under a tombstone', () => {
    const p = planKey(view([['server1', copyOf('server1', { unstamped: true, mtime: T - 99_000 })], ['server2', copyOf('server2', { made: T - 1 })]], T), all);
    expect(p.steps).toEqual([
      { op: 'wait', store: 'server1', reason: expect.any(String) },
      { op: 'delete', store: 'server2', etag: '"etag-server2"', reason: expect.any(String) },
    ]);
  });

  it('plans only waits when only unstamped copies exist', () => {
    const p = planKey(view([['server1', copyOf('server1', { unstamped: true })], ['server2', null]]), all);
    expect(p).toEqual({ key: 'k.txt', steps: [{ op: 'wait', store: 'server1', reason: expect.any(String) }] });
  });

  it('fills a gap only when fill(winner) allows, and asks it about the winner', () => {
    const w = copyOf('server1');
    const fill = jest.fn(() => false);
    expect(planKey(view([['server1', w], ['server2', null]]), fill).steps).toEqual([]);
    expect(fill).toHaveBeenCalledWith(w);
    expect(planKey(view([['server1', w], ['server2', null]]), all).steps).toEqual([{ op: 'copy', from: 'server1', to: 'server2', over: null, reason: 'missing on server2' }]);
  });

  it('replaces dead and older copies even when fill forbids filling gaps', () => {
    const p = planKey(view([['server1', copyOf('server1', { mtime: T + 5 })], ['server2', copyOf('server2', { mtime: T })], ['server3', null]]), none);
    expect(p.steps.map((s) => [s.op, s.op === 'copy' ? s.to : ''])).toEqual([['copy', 'server2']]);
  });

  it('breaks a tie on mtime by ETag, the same way whatever the order of the stores', () => {
    const a = copyOf('server1', { etag: '"a"' });
    const b = copyOf('server2', { etag: '"c"' });
    const c = copyOf('server3', { etag: '"b"' });
    const orders: [string, ObjectHead][][] = [
      [['server1', a], ['server2', b], ['server3', c]],
      [['server3', c], ['server2', b], ['server1', a]],
      [['server2', b], ['server3', c], ['server1', a]],
    ];
    for (const order of orders) {
      const p = planKey(view(order), all);
      expect(p.winner).toBe(b);
      expect(p.steps.map((s) => (s.op === 'copy' ? `${s.from}->${s.to}` : s.op)).sort()).toEqual(['server2->server1', 'server2->server3']);
    }
  });

  it('with three stores and two writes, copies the newest over the other and into the gap', () => {
    const p = planKey(view([['server1', copyOf('server1', { mtime: T })], ['server2', copyOf('server2', { mtime: T + 1000 })], ['server3', null]]), all);
    expect(p.steps).toEqual([
      { op: 'copy', from: 'server2', to: 'server1', over: '"etag-server1"', reason: `server2 newer (${iso(T + 1000)} vs server1 ${iso(T)})` },
      { op: 'copy', from: 'server2', to: 'server3', over: null, reason: 'missing on server3' },
    ]);
  });

  it('with three stores, leaves the stores already holding the winner alone', () => {
    const p = planKey(view([
      ['server1', copyOf('server1', { id: 'w', mtime: T + 1000, etag: '"n"' })],
      ['server2', copyOf('server2', { mtime: T })],
      ['server3', copyOf('server3', { id: 'w', mtime: T + 1000, etag: '"n"' })],
    ]), all);
    expect(p.steps).toEqual([{ op: 'copy', from: 'server1', to: 'server2', over: '"etag-server2"', reason: expect.stringMatching(/^server1 newer/) }]);
  });

  describe('with kept versions (a tombstone\'s key)', () => {
    const KEPT = 'superseded/k.txt/w';
    const kept = (o: CopyOpts = {}) => ({ objectKey: KEPT, head: copyOf(ARCHIVE, { id: 'w', etag: '"etag-w"', ...o }) });
    const withKept = (v: KeyView, ...k: ReturnType<typeof kept>[]): KeyView => ({ ...v, kept: k });

    it('copies a live kept version that wins back from the control bucket, over dead copies and into gaps, whatever fill says', () => {
      const w = kept({ made: T + 20, mtime: 50 });
      const dead = copyOf('server1', { made: T, mtime: 100, id: 'v' });
      const p = planKey(withKept(view([['server1', dead], ['server2', { ...dead, store: 'server2' }], ['server3', null]], T + 10), w), none);
      expect(p.winner).toBe(w.head);
      expect(p.steps).toEqual([
        { op: 'copy', from: ARCHIVE, fromKey: KEPT, to: 'server1', over: '"etag-server1"', reason: `server1's version was made ${iso(T)}, before the delete at ${iso(T + 10)}; a write made after it wins` },
        { op: 'copy', from: ARCHIVE, fromKey: KEPT, to: 'server2', over: '"etag-server1"', reason: expect.stringMatching(/^server2's version was made/) },
        { op: 'copy', from: ARCHIVE, fromKey: KEPT, to: 'server3', over: null, reason: 'missing on server3' },
      ]);
    });

    it('copies from a store holding the kept write when one does, and keeps the kept one: the view may be old (soak seed 2037)', () => {
      const w = kept({ made: T + 20, mtime: 50 });
      const onStore = copyOf('server2', { id: 'w', made: T + 20, mtime: 50, etag: '"etag-w"' });
      const p = planKey(withKept(view([['server1', copyOf('server1', { made: T, mtime: 100, id: 'v' })], ['server2', onStore]], T + 10), w), none);
      expect(p.winner).toBe(onStore);
      expect(p.steps).toEqual([
        { op: 'copy', from: 'server2', to: 'server1', over: '"etag-server1"', reason: expect.stringMatching(/^server1's version was made/) },
      ]);
    });

    it('forgets a kept version made at the delete (dead), and keeps one made a millisecond later', () => {
      const live = copyOf('server1', { made: T + 50, mtime: 200, id: 'x' });
      expect(planKey(withKept(view([['server1', live]], T + 20), kept({ made: T + 20, mtime: 50 })), none).steps).toEqual([
        { op: 'forget', objectKey: KEPT, reason: 'kept version made before the delete' },
      ]);
      expect(planKey(withKept(view([['server1', live]], T + 19), kept({ made: T + 20, mtime: 50 })), none).steps).toEqual([]);
    });

    it('leaves a live kept version that loses alone: a later delete may still make it the winner', () => {
      const p = planKey(withKept(view([['server1', copyOf('server1', { made: T, mtime: 100, id: 'v' })], ['server2', null]], T - 1), kept({ made: T + 20, mtime: 50 })), none);
      expect(p.winner?.store).toBe('server1');
      expect(p.steps).toEqual([]);
    });
  });

  it('copies a write from a store that holds it rather than from where it is kept, whichever ETag is higher', () => {
    const onStore = copyOf('server1', { id: 'w', etag: '"aaaa"', mtime: T + 5, made: T + 5 });
    const keptHead = { ...copyOf(ARCHIVE, { id: 'w', etag: '"ffff"', mtime: T + 5, made: T + 5 }), store: ARCHIVE };
    const v: KeyView = { ...view([['server1', onStore], ['server2', null]], T), kept: [{ objectKey: `superseded/${'k.txt'}/w`, head: keptHead }] };
    const p = planKey(v, all);
    expect(p.winner).toBe(onStore);
    expect(p.steps).toEqual([expect.objectContaining({ op: 'copy', from: 'server1', to: 'server2' })]);
  });

  it('copies the kept version that wins from its own key, not from the first kept', () => {
    const older = { ...copyOf(ARCHIVE, { id: 'a', mtime: T + 5, made: T + 5 }), store: ARCHIVE };
    const newer = { ...copyOf(ARCHIVE, { id: 'b', mtime: T + 6, made: T + 6 }), store: ARCHIVE };
    const v: KeyView = { ...view([['server1', null]], T), kept: [{ objectKey: 'superseded/k.txt/a', head: older }, { objectKey: 'superseded/k.txt/b', head: newer }] };
    expect(planKey(v, none).steps).toEqual([expect.objectContaining({ op: 'copy', from: ARCHIVE, fromKey: 'superseded/k.txt/b', to: 'server1' })]);
  });

  it('is pure: the same view gives the same plan', () => {
    const v = view([['server1', copyOf('server1', { made: T - 1 })], ['server2', copyOf('server2', { made: T + 1 })], ['server3', null]], T);
    expect(planKey(v, all)).toEqual(planKey(v, all));
  });
});

describe('applyKeyPlan and settleKey', () => {
  const client = testClient();
  const { s3mock, fake } = useConditionalS3(client);
  const stores: Store[] = [1, 2, 3].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
  const deps = (n = 2) => makeDeps(stores.slice(0, n), { control: { bucket: 'control', s3: client }, flavor: 'aws' });
  const KEY = 'k.txt';
  const journal = () => fake.written<JournalEvent>('journal/');
  const storedTombstone = () => fake.records<Tombstone>('tombstones/')[0];
  const setTombstone = (t: Tombstone) => fake.put('control', tombstoneKey(KEY), JSON.stringify(t));
  const settle = (d = deps(), fill = all) => settleKey(d, KEY, { fill, by: 'replicate' });

  it('copies the winner with its stamp and mtime, naming where it came from, and journals it', async () => {
    const w = fake.stamped('bucket-1', KEY, 'new', { mtime: T, id: 'w1' });
    const out = await settle();
    expect(out).toMatchObject({ copied: ['server2'], deleted: [], held: [], waiting: [], failed: [], stale: false });
    expect(fake.has('bucket-2', KEY)!.metadata).toEqual({ ...w.metadata, [META.replicaOf]: 'server1' });
    expect(s3mock).toHaveReceivedCommandWith(CopyObjectCommand, { Bucket: 'bucket-2', IfNoneMatch: '*', CopySourceIfMatch: w.etag });
    expect(journal().map((e) => [e.action, e.from, e.to, e.reason])).toEqual([['replicate', 'server1', ['server2'], 'missing on server2']]);
  });

  it("journals reconcile's steps as reconcile", async () => {
    fake.stamped('bucket-1', KEY, 'new', { mtime: T });
    await settleKey(deps(), KEY, { fill: all, by: 'reconcile' });
    expect(journal().map((e) => e.action)).toEqual(['reconcile']);
  });

  it('marks the outcome stale when a copy is refused with 412, journalling no copy', async () => {
    fake.stamped('bucket-1', KEY, 'first', { mtime: T });
    const d = deps();
    const v = await observeKey(d, KEY);
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-2') fake.stamped('bucket-2', KEY, 'second', { mtime: T + 1000 });
    });
    const out = await applyKeyPlan(d, v, planKey(v, all), 'replicate');
    expect(out).toEqual({ copied: [], deleted: [], held: [], heldAs: {}, waiting: [], failed: [], stale: true });
    expect(fake.textOf('bucket-2', KEY)).toBe('second');
    expect(journal()).toEqual([]);
  });

  it('looks again after a refused copy and settles on what it finds: the newer write that won the race spreads', async () => {
    fake.stamped('bucket-1', KEY, 'first', { mtime: T });
    let raced = false;
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'CopyObject' && i.Bucket === 'bucket-2' && !raced) {
        raced = true;
        fake.stamped('bucket-2', KEY, 'second', { mtime: T + 1000 });
      }
    });
    const out = await settle();
    expect(out).toMatchObject({ copied: ['server1'], failed: [], stale: false });
    expect([fake.textOf('bucket-1', KEY), fake.textOf('bucket-2', KEY)]).toEqual(['second', 'second']);
    expect(s3mock.commandCalls(CopyObjectCommand).map((c) => c.args[0].input.Bucket)).toEqual(['bucket-2', 'bucket-1']);
  });

  it("reports a key that keeps changing under every look as failed ('changing') after four rounds", async () => {
    fake.stamped('bucket-1', KEY, 'x', { mtime: T });
    s3mock.on(CopyObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const out = await settle();
    expect(out.failed).toEqual(['changing']);
    expect(out.stale).toBe(true);
    expect(s3mock.commandCalls(CopyObjectCommand)).toHaveLength(4);
  });

  it('records the delete intent in the tombstone before it sends the DeleteObject', async () => {
    const dead = fake.stamped('bucket-2', KEY, 'old', { mtime: T - 5000 });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    let seenAtDelete: Tombstone | undefined;
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'DeleteObject') seenAtDelete = storedTombstone();
    });
    const before = Date.now();
    const out = await settle();
    expect(out).toMatchObject({ copied: [], deleted: ['server2'], failed: [], stale: false });
    // The intent, the delete, then the intent closed: its echo is dated before the call returned.
    expect(fake.writes.filter((w) => !w.includes('journal/'))).toEqual(['PutObject control/tombstones/k.txt', 'DeleteObject bucket-2/k.txt', 'PutObject control/tombstones/k.txt']);
    const closed = storedTombstone()!.intents[0]!;
    expect(closed.until! - closed.at).toBeGreaterThanOrEqual(CLOCK_SKEW_MS);
    expect(seenAtDelete!.intents).toEqual([{ id: expect.stringMatching(/^[0-9a-f]{24}$/), store: 'server2', etag: dead.etag, at: expect.any(Number) }]);
    expect(seenAtDelete!.intents[0]!.at).toBeGreaterThanOrEqual(before);
    expect(s3mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: 'bucket-2', Key: KEY, IfMatch: dead.etag });
    expect(journal().map((e) => [e.action, e.to, e.who])).toEqual([['delete', ['server2'], 'bob']]); // under who deleted
  });

  it('records all the intents of one plan in one tombstone write, and closes them in one more', async () => {
    fake.stamped('bucket-1', KEY, 'a', { mtime: T - 1 });
    fake.stamped('bucket-2', KEY, 'b', { mtime: T - 2 });
    fake.stamped('bucket-3', KEY, 'c', { mtime: T - 3 });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    const out = await settle(deps(3));
    expect(out.deleted.sort()).toEqual(['server1', 'server2', 'server3']);
    const writes = fake.writes.filter((w) => !w.includes('journal/'));
    expect(writes.filter((w) => w.includes('tombstones/'))).toHaveLength(2);
    expect([writes[0], writes.at(-1)]).toEqual(['PutObject control/tombstones/k.txt', 'PutObject control/tombstones/k.txt']);
    expect(storedTombstone()!.intents.map((i) => [i.store, typeof i.until])).toEqual([['server1', 'number'], ['server2', 'number'], ['server3', 'number']]);
  });

  it('fails the intent of a delete S3 refused at once (412), and looks again: the write that replaced it is kept', async () => {
    fake.stamped('bucket-2', KEY, 'old', { mtime: T - 5000 });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    fake.beforeWrite.push((cmd) => {
      if (cmd === 'DeleteObject' && fake.textOf('bucket-2', KEY) === 'old') fake.stamped('bucket-2', KEY, 'new', { mtime: T + 2000 });
    });
    const out = await settle(deps(), none);
    expect(out).toMatchObject({ deleted: [], failed: [], stale: false });
    expect(fake.textOf('bucket-2', KEY)).toBe('new');
    expect(storedTombstone()!.intents).toEqual([expect.objectContaining({ store: 'server2', failed: true })]);
    expect(storedTombstone()!.deletedAt).toBe(T);
  });

  it("turns the event a refused delete's intent had taken into a user's delete (its time joins deletedAt) and marks it stale", async () => {
    fake.stamped('bucket-2', KEY, 'old', { mtime: T - 5000 });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    // A user deletes server2's copy first; its event is taken for our echo before our delete is refused.
    fake.beforeWrite.push((cmd) => {
      if (cmd !== 'DeleteObject' || !fake.has('bucket-2', KEY)) return;
      fake.delete('bucket-2', KEY);
      const t = storedTombstone()!;
      setTombstone({ ...t, intents: t.intents.map((i) => ({ ...i, event: { seq: '0A', time: T + 7 } })) });
    });
    const d = deps();
    const v = await observeKey(d, KEY);
    const out = await applyKeyPlan(d, v, planKey(v, none), 'replicate');
    expect(out).toEqual({ copied: [], deleted: [], held: [], heldAs: {}, waiting: [], failed: [], stale: true });
    expect(storedTombstone()).toEqual({
      key: KEY, deletedAt: T + 7, who: 'server2 (direct)',
      intents: [expect.objectContaining({ store: 'server2', failed: true, event: { seq: '0A', time: T + 7 } })],
    });
  });

  it('keeps the intent of a delete refused only after an SDK retry: the first attempt may have done it', async () => {
    fake.stamped('bucket-2', KEY, 'old', { mtime: T - 5000 });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    s3mock.on(DeleteObjectCommand).rejects(Object.assign(s3Error('PreconditionFailed', 412), { $metadata: { httpStatusCode: 412, attempts: 2 } }));
    const d = deps();
    const v = await observeKey(d, KEY);
    const out = await applyKeyPlan(d, v, planKey(v, none), 'replicate');
    expect(out.stale).toBe(true);
    expect(storedTombstone()!.intents).toEqual([expect.not.objectContaining({ failed: true })]);
  });

  it('sends no delete to a store where a delete of its own is pending (its echo comes first), and names it failed', async () => {
    fake.stamped('bucket-1', KEY, 'a', { mtime: T - 1 });
    const dead2 = fake.stamped('bucket-2', KEY, 'b', { mtime: T - 2 });
    const pending = { id: 'p', store: 'server2', etag: dead2.etag, at: Date.now() };
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [pending] });
    const d = deps();
    const v = await observeKey(d, KEY);
    const out = await applyKeyPlan(d, v, planKey(v, none), 'replicate');
    expect(out).toEqual({ copied: [], deleted: ['server1'], held: [], heldAs: {}, waiting: [], failed: ['server2'], stale: false });
    expect(fake.writes.filter((w) => w.startsWith('DeleteObject'))).toEqual([`DeleteObject bucket-1/${KEY}`]);
    expect(storedTombstone()!.intents.filter((i) => i.store === 'server2')).toEqual([pending]);
  });

  it('soak seed 41069: lands how its deletes ended though it loses 40 tombstone writes in a row, so the next delete there is not held back', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0); // no pauses between the lost writes
    for (const n of [1, 2, 3]) fake.stamped(`bucket-${n}`, KEY, `v${n}`, { mtime: T - n });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    // server3's copy is replaced just before our delete reaches it: refused at once (412).
    fake.beforeWrite.push((cmd, input) => {
      if (cmd === 'DeleteObject' && input.Bucket === 'bucket-3' && fake.textOf('bucket-3', KEY) === 'v3') fake.stamped('bucket-3', KEY, 'v3 again', { mtime: T - 3 });
    });
    // Then the handlers of our echoes (and their retries) win the tombstone 40 times before we do.
    let deleted = 0;
    let lost = 0;
    fake.beforeWrite.push((cmd, input) => {
      if (cmd === 'DeleteObject') deleted++;
      if (cmd !== 'PutObject' || input.Key !== tombstoneKey(KEY) || deleted < 3 || lost >= 40) return;
      const t = storedTombstone()!;
      lost++;
      setTombstone({ ...t, intents: t.intents.map((i) => (i.store === 'server1' ? { ...i, event: { seq: lost.toString(16), time: T, system: true } } : i)) });
    });
    try {
      const d = deps(3);
      const v = await observeKey(d, KEY);
      const out = await applyKeyPlan(d, v, planKey(v, none), 'replicate');
      expect(out).toMatchObject({ deleted: ['server1', 'server2'], failed: [], stale: true }); // server3 changed
      expect(lost).toBe(40);
      expect(storedTombstone()!.intents.map((i) => [i.store, i.until !== undefined, i.failed === true])).toEqual([
        ['server1', true, false],
        ['server2', true, false],
        ['server3', false, true],
      ]);
      // server3's dead copy is deleted by the next settle, not held back until INTENT_WINDOW_MS.
      const next = await applyKeyPlan(d, await observeKey(d, KEY), planKey(await observeKey(d, KEY), none), 'reconcile');
      expect(next).toMatchObject({ deleted: ['server3'], failed: [] });
    } finally {
      jest.restoreAllMocks();
    }
  });

  describe('locks, and the condition of each step', () => {
    const alice = { name: 'alice', scope: 'write' as const };
    const lockAt = (store: string, who = alice) => acquireLock(deps(), KEY, store, who, {}, Date.now());
    const newerOn1 = () => fake.stamped('bucket-1', KEY, 'new', { mtime: T + 5, id: 'w-new', who: 'carol' });
    const olderOn2 = () => fake.stamped('bucket-2', KEY, 'old', { mtime: T, id: 'w-old' });

    it("holds a copy into a store someone else has locked in that lock's queue, and says which number it took", async () => {
      newerOn1();
      olderOn2();
      await lockAt('server2');
      const out = await settle();
      expect(out).toMatchObject({ copied: [], held: ['server2'], heldAs: { server2: 1 }, failed: [], stale: false });
      expect(fake.textOf('bucket-2', KEY)).toBe('old');
      // Queued under the writer of the version, as a put of its bytes and stamp, marked a replica.
      expect(journal().map((e) => [e.action, e.to, e.who])).toEqual([['queued', ['server2'], 'carol']]);
      const entry = fake.has('control', queueEntryKey(KEY, 'server2', 1))!;
      expect(entry.bytes.toString()).toBe('new');
      expect(entry.metadata).toMatchObject({ 'dfs-queue-op': 'put', [META.id]: 'w-new', [META.replicaOf]: 'server1' });
    });

    it('holds it even when replication acts for the lock holder: the system never holds a lock', async () => {
      newerOn1();
      olderOn2();
      await lockAt('server2');
      const out = await settleKey(deps(), KEY, { fill: all, by: 'replicate', actor: 'alice' });
      expect(out).toMatchObject({ copied: [], held: ['server2'] });
    });

    it("writes straight into a store the API's caller has locked themselves", async () => {
      newerOn1();
      olderOn2();
      await lockAt('server2');
      const out = await settleKey(deps(), KEY, { fill: all, by: 'api', actor: 'alice' });
      expect(out).toMatchObject({ copied: ['server2'], held: [], heldAs: {} });
      expect(fake.textOf('bucket-2', KEY)).toBe('new');
    });

    it('holds a delete into a locked store, with no intent and no DeleteObject', async () => {
      fake.stamped('bucket-2', KEY, 'dead', { mtime: T - 5 });
      setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
      await lockAt('server2');
      const out = await settle();
      expect(out).toMatchObject({ deleted: [], held: ['server2'], heldAs: { server2: 1 }, stale: false });
      expect(fake.has('bucket-2', KEY)).toBeDefined();
      expect(storedTombstone()!.intents).toEqual([]);
      expect(s3mock).not.toHaveReceivedCommand(DeleteObjectCommand);
      expect(journal().map((e) => [e.action, e.who])).toEqual([['queued', 'bob']]); // who deleted
      expect(fake.has('control', queueEntryKey(KEY, 'server2', 1))!.metadata).toMatchObject({ 'dfs-queue-op': 'delete' });
    });

    it('looks again when the lock a delete saw is gone before the delete could be held', async () => {
      fake.stamped('bucket-2', KEY, 'dead', { mtime: T - 5 });
      const d = deps();
      const v = await observeKey(d, KEY);
      const gone = { key: KEY, store: 'server2', holder: 'alice', since: iso(T), expires: Date.now() + 60_000, next: 1, applied: 0 };
      const seen: KeyView = { ...v, locks: new Map([['server2', gone]]), tombstone: { key: KEY, deletedAt: T, who: 'bob', intents: [] } };
      const out = await applyKeyPlan(d, seen, planKey(seen, all), 'replicate');
      expect(out).toMatchObject({ deleted: [], held: [], stale: true });
      expect(fake.has('bucket-2', KEY)).toBeDefined();
    });

    it('names the control bucket failed when it cannot forget a kept version, and still deletes the dead copies', async () => {
      fake.stamped('bucket-2', KEY, 'dead', { mtime: T - 5 });
      const keptHead = fake.stamped('control', `${ARCHIVE}/${KEY}/old`, 'old', { mtime: T - 9, id: 'old' });
      setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [], kept: true });
      fake.fail('control', () => s3Error('InternalError', 500), { command: 'DeleteObject' });
      const out = await settle();
      expect(keptHead).toBeDefined();
      expect(out).toMatchObject({ deleted: ['server2'], failed: [ARCHIVE] });
      expect(fake.has('control', `${ARCHIVE}/${KEY}/old`)).toBeDefined();
    });

    it('looks again when the lock it saw is gone before its update could be held', async () => {
      newerOn1();
      olderOn2();
      fake.stamped('bucket-3', KEY, 'dead', { mtime: T - 5, made: T - 5 });
      const d = deps(3);
      const v = await observeKey(d, KEY);
      const gone = { key: KEY, holder: 'alice', since: iso(T), expires: Date.now() + 60_000, next: 1, applied: 0 };
      const seen: KeyView = { ...v, locks: new Map([['server2', { ...gone, store: 'server2' }], ['server3', { ...gone, store: 'server3' }]]), tombstone: { key: KEY, deletedAt: T - 1, who: 'bob', intents: [] } };
      const out = await applyKeyPlan(d, seen, planKey(seen, all), 'replicate');
      expect(out).toMatchObject({ copied: [], held: [], deleted: [], stale: true });
    });

    it('copies into a gap only while it is a gap: a write that fills it first is kept, and the plan is stale', async () => {
      newerOn1();
      fake.beforeWrite.push((cmd, input) => {
        if (cmd === 'CopyObject' && input.Bucket === 'bucket-2' && !fake.has('bucket-2', KEY)) fake.stamped('bucket-2', KEY, 'theirs', { mtime: T + 9, id: 'w-theirs' });
      });
      const d = deps();
      const v = await observeKey(d, KEY);
      const out = await applyKeyPlan(d, v, planKey(v, all), 'replicate');
      expect(out).toMatchObject({ copied: [], stale: true });
      expect(fake.textOf('bucket-2', KEY)).toBe('theirs');
    });

    it("journals replication's copy under the writer of the version it copies", async () => {
      fake.stamped('bucket-1', KEY, 'new', { mtime: T + 5, id: 'w-new', who: 'carol' });
      await settle();
      expect(journal().map((e) => [e.action, e.who])).toEqual([['replicate', 'carol']]);
    });

    it('throws what is no store failure (a plan naming a store it does not know) rather than calling the store failed', async () => {
      newerOn1();
      const d = deps();
      const v = await observeKey(d, KEY);
      const plan = { key: KEY, winner: v.copies.get('server1')!, steps: [{ op: 'copy' as const, from: 'server1', to: 'server9', over: null, reason: 'a bug' }] };
      await expect(applyKeyPlan(d, v, plan, 'replicate')).rejects.toThrow(/server9/);
    });

    it('keeps a version in the control bucket only where none is kept yet', async () => {
      fake.stamped('bucket-1', KEY, 'V', { mtime: 100, made: T, id: 'v' });
      fake.stamped('bucket-2', KEY, 'W', { mtime: 50, made: T + 20_000, id: 'w' });
      await settle();
      expect(s3mock).toHaveReceivedCommandWith(CopyObjectCommand, { Bucket: 'control', Key: `superseded/${KEY}/w`, IfNoneMatch: '*' });
    });

    it('does not copy over a version it could not keep (the control bucket down): that store failed, its version stays', async () => {
      fake.stamped('bucket-1', KEY, 'V', { mtime: 100, made: T, id: 'v' });
      fake.stamped('bucket-2', KEY, 'W', { mtime: 50, made: T + 20_000, id: 'w' });
      fake.fail('control', () => s3Error('InternalError', 500), { command: 'CopyObject' });
      const out = await settle();
      expect(out).toMatchObject({ copied: [], failed: ['server2'] });
      expect(fake.textOf('bucket-2', KEY)).toBe('W');
    });
  });

  describe('observeKey', () => {
    const heads = () => s3mock.calls().filter((c) => c.args[0].constructor.name === 'HeadObjectCommand').map((c) => (c.args[0].input as { Bucket: string }).Bucket);

    it('does not HEAD again the copy its caller has just HEADed', async () => {
      fake.stamped('bucket-1', KEY, 'x', { mtime: T });
      const d = deps();
      const head = (await observeKey(d, KEY)).copies.get('server1')!;
      s3mock.resetHistory();
      const v = await observeKey(d, KEY, { head });
      expect(heads()).toEqual(['bucket-2']);
      expect(v.copies.get('server1')).toBe(head);
    });

    it('says nothing of locks when there are none', async () => {
      fake.stamped('bucket-1', KEY, 'x', { mtime: T });
      expect('locks' in (await observeKey(deps(), KEY))).toBe(false);
    });

    it('leaves out a kept version listed but gone before its HEAD', async () => {
      setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [], kept: true });
      fake.put('control', `superseded/${KEY}/gone`, 'x');
      fake.put('control', `superseded/${KEY}/here`, 'y');
      s3mock.on(HeadObjectCommand, { Bucket: 'control', Key: `superseded/${KEY}/gone` }).rejects(s3Error('NotFound', 404));
      const v = await observeKey(deps(), KEY);
      expect(v.kept!.map((k) => k.objectKey)).toEqual([`superseded/${KEY}/here`]);
    });
  });

  describe('kept versions', () => {
    // V made at t1 with mtime 100 on server1; W made later, at t3, with mtime 50 on server2.
    // Newest-wins copies V over W; a delete at t2 (t1 < t2 < t3) whose event comes late makes
    // V dead, and W, made after it, the winner.
    const t1 = T;
    const t3 = T + 20_000;
    const KEPT = `superseded/${KEY}/w`;
    const kept = () => fake.has('control', KEPT);
    const listedKept = () => s3mock.commandCalls(ListObjectsV2Command).filter((c) => c.args[0].input.Prefix?.startsWith('superseded/'));
    let v: ReturnType<typeof fake.stamped>;
    let w: ReturnType<typeof fake.stamped>;
    beforeEach(() => {
      v = fake.stamped('bucket-1', KEY, 'V', { mtime: 100, made: t1, id: 'v' });
      w = fake.stamped('bucket-2', KEY, 'W', { mtime: 50, made: t3, id: 'w' });
    });

    it('keeps a live version made after the winner in the control bucket before copying over it, and reads no kept versions without a tombstone', async () => {
      const out = await settle();
      expect(out).toMatchObject({ copied: ['server2'], failed: [], stale: false });
      expect([fake.textOf('bucket-1', KEY), fake.textOf('bucket-2', KEY)]).toEqual(['V', 'V']);
      expect(kept()).toMatchObject({ bytes: Buffer.from('W'), etag: w.etag, metadata: w.metadata });
      // Marked in the key's tombstone (one made for it, deleted at 0: never), kept, then replaced.
      expect(fake.writes.filter((x) => !x.includes('journal/'))).toEqual([`PutObject control/tombstones/${KEY}`, `CopyObject control/${KEPT}`, `CopyObject bucket-2/${KEY}`]);
      expect(storedTombstone()).toEqual({ key: KEY, deletedAt: 0, who: '', intents: [], kept: true });
      expect(journal().map((e) => [e.action, e.from, e.reason])).toEqual([
        ['keep', 'server2', `made ${iso(t3)}, after the version replacing it: kept until no late delete can make it the winner`],
        ['replicate', 'server1', expect.stringMatching(/^server1 newer/)],
      ]);
      // Marked, so looked at again; with no delete, V still wins and nothing more is done.
      const seen = await observeKey(deps(), KEY);
      expect(seen.kept!.map((k) => k.objectKey)).toEqual([KEPT]);
      expect(planKey(seen, () => true).steps).toEqual([]);
    });

    it.each([
      ['at the same time as the winner', 0, false],
      ['a millisecond after the winner', 1, true],
    ])('keeps a replaced version made %s: %s', async (_, after, keeps) => {
      fake.stamped('bucket-2', KEY, 'W', { mtime: 50, made: t1 + after, id: 'w' });
      await settle();
      expect(fake.textOf('bucket-2', KEY)).toBe('V');
      expect(kept() !== undefined).toBe(keeps);
    });

    it('copies the kept version back to every store once a delete between the two is known, then forgets it', async () => {
      await settle();
      setTombstone({ key: KEY, deletedAt: t3 - 1, who: 'bob', intents: [], kept: true }); // the late delete, a millisecond before W
      const back = await settle();
      expect({ ...back, copied: back.copied.sort() }).toMatchObject({ copied: ['server1', 'server2'], deleted: [], failed: [], stale: false });
      expect(back.plan.steps).toEqual([
        expect.objectContaining({ op: 'copy', from: ARCHIVE, fromKey: KEPT, to: 'server1', over: v.etag }),
        expect.objectContaining({ op: 'copy', from: ARCHIVE, fromKey: KEPT, to: 'server2', over: v.etag }),
      ]);
      expect(s3mock).toHaveReceivedCommandWith(CopyObjectCommand, { Bucket: 'bucket-1', CopySource: `control/${KEPT}`, CopySourceIfMatch: w.etag, IfMatch: v.etag });
      expect([fake.textOf('bucket-1', KEY), fake.textOf('bucket-2', KEY)]).toEqual(['W', 'W']);
      expect(fake.has('bucket-1', KEY)!.metadata).toEqual({ ...w.metadata, [META.replicaOf]: ARCHIVE });
      // The copies' events settle the key again: W is on the stores, nothing to do; the kept
      // one stays until a delete makes it dead or it expires.
      const again = await settle();
      expect(again.plan.steps).toEqual([]);
      expect(kept()).toBeDefined();
      expect([fake.textOf('bucket-1', KEY), fake.textOf('bucket-2', KEY)]).toEqual(['W', 'W']);
    });

    it('soak seed 2037: a settle acting on an old view does not forget a kept version that another settle has just put V over', async () => {
      // B looks before the delete between V and W is known: V is live and wins, so W is kept first ...
      const viewB = await observeKey(deps(), KEY);
      await keepVersion(deps(), stores[1]!, KEY, viewB.copies.get('server2')!);
      // ... the late delete is recorded, and C looks: V dead, W on server2 and kept.
      setTombstone({ key: KEY, deletedAt: t3 - 1, who: 'bob', intents: [], kept: true });
      const viewC = await observeKey(deps(), KEY);
      expect(planKey(viewC, all).winner?.store).toBe('server2');
      // B's copy of V over W lands before C acts (its keep finds W kept already).
      expect((await applyKeyPlan(deps(), viewB, planKey(viewB, all), 'replicate')).copied).toEqual(['server2']);
      expect(fake.textOf('bucket-2', KEY)).toBe('V');
      // C's copy from server2 finds its source changed; it looks again and copies W back from where it is kept.
      const c = await settleKey(deps(), KEY, { fill: all, by: 'replicate', view: viewC });
      expect(c.failed).toEqual([]);
      expect([fake.textOf('bucket-1', KEY), fake.textOf('bucket-2', KEY)]).toEqual(['W', 'W']);
      expect(kept()).toBeDefined();
    });

    it('forgets a kept version a later delete made dead, deleting the dead copies too', async () => {
      await settle();
      setTombstone({ key: KEY, deletedAt: t3, who: 'bob', intents: [], kept: true }); // W made exactly at the delete: dead
      const out = await settle();
      expect(out.plan.steps).toContainEqual({ op: 'forget', objectKey: KEPT, reason: 'kept version made before the delete' });
      expect(out).toMatchObject({ copied: [], failed: [], stale: false });
      expect(out.deleted.sort()).toEqual(['server1', 'server2']);
      expect(kept()).toBeUndefined();
      expect(fake.has('bucket-1', KEY) ?? fake.has('bucket-2', KEY)).toBeUndefined();
    });

    it("reads only this key's kept versions, not a longer key's under the same prefix", async () => {
      await settle();
      fake.stamped('control', `superseded/${KEY}/sub/x`, 'other', { mtime: 1, made: t3 + 1, id: 'x' });
      setTombstone({ key: KEY, deletedAt: t3 - 1, who: 'bob', intents: [], kept: true });
      const seen = await observeKey(deps(), KEY);
      expect(seen.kept!.map((k) => [k.objectKey, k.head.stamp?.id])).toEqual([[KEPT, 'w']]);
      expect(listedKept().map((c) => c.args[0].input.Prefix)).toEqual([`superseded/${KEY}/`]);
    });
  });

  it('lets one of two settles running at once delete a dead copy; the other leaves it to the first (one intent, one DeleteObject)', async () => {
    const dead = fake.stamped('bucket-2', KEY, 'old', { mtime: T - 5000 });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    const d = deps();
    const seen = await observeKey(d, KEY);
    const outs = await Promise.all([1, 2].map(() => applyKeyPlan(d, seen, planKey(seen, none), 'replicate')));
    expect(outs.map((o) => [o.deleted, o.failed]).sort()).toEqual([[[], ['server2']], [['server2'], []]]);
    expect(s3mock.commandCalls(DeleteObjectCommand).map((c) => c.args[0].input)).toEqual([{ Bucket: 'bucket-2', Key: KEY, IfMatch: dead.etag }]);
    expect(storedTombstone()!.intents).toEqual([expect.objectContaining({ store: 'server2', etag: dead.etag })]);
  });

  it('puts a store that is down for the copy in failed, and the others copied', async () => {
    fake.stamped('bucket-1', KEY, 'x', { mtime: T });
    fake.fail('bucket-3', networkError, { command: 'CopyObject' });
    const out = await settle(deps(3));
    expect(out).toMatchObject({ copied: ['server2'], failed: ['server3'], stale: false });
  });

  it('puts a store whose delete fails in failed, its intent left pending', async () => {
    fake.stamped('bucket-2', KEY, 'old', { mtime: T - 5000 });
    setTombstone({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
    fake.fail('bucket-2', () => s3Error('InternalError', 500), { command: 'DeleteObject' });
    const out = await settle();
    expect(out).toMatchObject({ deleted: [], failed: ['server2'], stale: false });
    expect(fake.has('bucket-2', KEY)).toBeDefined();
    expect(storedTombstone()!.intents).toEqual([expect.not.objectContaining({ failed: true })]);
  });

  it('carries the stores that did not answer the look into failed, and settles the rest', async () => {
    fake.stamped('bucket-1', KEY, 'x', { mtime: T });
    fake.fail('bucket-3', networkError, { command: 'HeadObject' });
    const out = await settle(deps(3));
    expect(out).toMatchObject({ copied: ['server2'], failed: ['server3'] });
    expect(out.view.unavailable).toEqual(['server3']);
  });

  it('reports waiting stores and touches nothing there', async () => {
    fake.direct('bucket-1', KEY, 'raw', { mtime: T + 5 });
    fake.stamped('bucket-2', KEY, 'x', { mtime: T });
    const out = await settle();
    expect(out).toMatchObject({ copied: [], waiting: ['server1'], failed: [] });
    expect(fake.writes).toEqual([]);
  });

  it('settles from the view it is given, without looking first', async () => {
    fake.stamped('bucket-1', KEY, 'x', { mtime: T });
    const d = deps();
    const v = await observeKey(d, KEY);
    s3mock.resetHistory();
    await settleKey(d, KEY, { fill: all, by: 'api', view: v });
    expect(s3mock.commandCalls(CopyObjectCommand)).toHaveLength(1);
    expect(s3mock.calls().filter((c) => c.args[0].constructor.name === 'HeadObjectCommand')).toHaveLength(0);
  });
});
