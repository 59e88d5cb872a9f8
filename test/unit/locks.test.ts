import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  acquireLock,
  DEFAULT_TTL_MS,
  listLocks,
  LockHeldError,
  lockGeneration,
  lockRecordKey,
  locksOf,
  lockToRelease,
  markDrain,
  MAX_TTL_MS,
  parseTtl,
  queueEntryKey,
  queuePrefix,
  removeLock,
  takeQueueSlot,
  type StoreLock,
} from '../../lib/locks';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, ObjectChangedError } from '../../lib/errors';
import type { Identity } from '../../lib/tokens';
import { T, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { s3Error } from '../helpers/mock-s3';

/*
 * The lock records of lib/locks.ts against a ConditionalS3 control bucket, which refuses a write
 * whose If-None-Match / If-Match no longer holds as S3 does: two lockers, a renewal racing a
 * takeover, a release racing a queued update are decided by the real protocol, not by call order.
 */

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const deps = { control: { bucket: 'control', s3: client } };
const KEY = 'docs/a.txt';
const alice: Identity = { name: 'alice', scope: 'write' };
const bob: Identity = { name: 'bob', scope: 'write' };
const HOUR = 3_600_000;

// Hardly a pause between attempts of a conditional write (lib/control.ts waits 0-10 ms times the
// attempt). Still random: a constant would make source-map's quicksort, run when a stack is
// formatted, recurse past the stack.
const random = Math.random;
beforeEach(() => jest.spyOn(Math, 'random').mockImplementation(() => random() * 0.01));
afterEach(() => jest.restoreAllMocks());

/** The record as stored, or undefined. */
const record = () => {
  const text = fake.textOf('control', lockRecordKey(KEY));
  return text === undefined ? undefined : (JSON.parse(text) as { key: string; locks: Record<string, StoreLock> });
};
const lockPuts = () => s3mock.commandCalls(PutObjectCommand).map((c) => c.args[0].input).filter((i) => i.Key === lockRecordKey(KEY));
/** A lock as a test's setup stores it. */
const lock = (over: Partial<StoreLock> = {}): StoreLock => ({ key: KEY, store: 'server1', holder: 'alice', since: new Date(T).toISOString(), expires: T + HOUR, next: 1, applied: 0, ...over });
/** The generation of lock(): its holder and since. */
const GEN = `alice ${new Date(T).toISOString()}`;
const store = (...locks: StoreLock[]) => fake.put('control', lockRecordKey(KEY), JSON.stringify({ key: KEY, locks: Object.fromEntries(locks.map((l) => [l.store, l])) }));

describe('record names', () => {
  it('key a record and a queue by the hash of the key, so that no key\'s queue lists another\'s', () => {
    expect(lockRecordKey('a')).toMatch(/^locks\/[0-9a-f]{40}$/);
    expect(lockRecordKey('a')).not.toBe(lockRecordKey('a/b'));
    expect(queuePrefix('a/b', 'server1').startsWith(queuePrefix('a', 'server1'))).toBe(false);
    expect(queueEntryKey('a', 'server1', 7)).toBe(`${queuePrefix('a', 'server1')}00000007`);
  });

  it('sort queue entries in number order', () => {
    const keys = [1, 2, 9, 10, 11, 100, 99_999_999].map((n) => queueEntryKey(KEY, 'server1', n));
    expect([...keys].sort()).toEqual(keys);
  });
});

describe('acquireLock', () => {
  it('creates the record only if absent (If-None-Match: *), holding who, since, the expiry and the reason', async () => {
    const got = await acquireLock(deps, KEY, 'server1', alice, { ttlMs: 120_000, reason: 'editing' }, T);
    const want = { key: KEY, store: 'server1', holder: 'alice', since: new Date(T).toISOString(), expires: T + 120_000, next: 1, applied: 0, reason: 'editing' };
    expect(got).toEqual(want);
    expect(record()).toEqual({ key: KEY, locks: { server1: want } });
    expect(lockPuts()).toEqual([expect.objectContaining({ IfNoneMatch: '*' })]);
    expect(lockPuts()[0]).not.toHaveProperty('IfMatch');
  });

  it('lasts an hour unless told', async () => {
    expect((await acquireLock(deps, KEY, 'server1', alice, {}, T)).expires).toBe(T + DEFAULT_TTL_MS);
    expect(DEFAULT_TTL_MS).toBe(HOUR);
  });

  it('merges a lock on another store into the record with If-Match on the ETag it read', async () => {
    const first = store(lock());
    await acquireLock(deps, KEY, 'server2', bob, {}, T);
    expect(Object.keys(record()!.locks).sort()).toEqual(['server1', 'server2']);
    expect(record()!.locks.server1).toEqual(lock());
    expect(lockPuts()).toEqual([expect.objectContaining({ IfMatch: first.etag })]);
  });

  it('lets exactly one of two concurrent lockers win; the other gets LockHeld (409) naming the holder and since', async () => {
    const got = await Promise.allSettled([acquireLock(deps, KEY, 'server1', alice, {}, T), acquireLock(deps, KEY, 'server1', bob, {}, T + 5)]);
    const won = got.filter((r): r is PromiseFulfilledResult<StoreLock> => r.status === 'fulfilled');
    const lost = got.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect([won.length, lost.length]).toEqual([1, 1]);
    const winner = won[0]!.value;
    expect(record()!.locks.server1).toEqual(winner);
    const err = lost[0]!.reason as LockHeldError;
    expect(err).toBeInstanceOf(LockHeldError);
    expect(err).toMatchObject({ status: 409, code: 'LockHeld', holder: winner.holder, since: winner.since });
    expect(err.message).toBe(`${KEY} is locked at server1 by ${winner.holder} since ${winner.since}`);
    // Both wrote only if absent; one was refused and looked again.
    expect(lockPuts().every((p) => p.IfNoneMatch === '*')).toBe(true);
    expect(fake.writes.filter((w) => w.endsWith(lockRecordKey(KEY)))).toHaveLength(1);
  });

  it('lets exactly one of eight concurrent lockers win', async () => {
    const who = Array.from({ length: 8 }, (_, i): Identity => ({ name: `user${i}`, scope: 'write' }));
    const got = await Promise.allSettled(who.map((w) => acquireLock(deps, KEY, 'server1', w, {}, T)));
    const winners = got.flatMap((r) => (r.status === 'fulfilled' ? [r.value.holder] : []));
    expect(winners).toHaveLength(1);
    for (const r of got) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'LockHeld', holder: winners[0] });
  });

  it('refuses someone else\'s live lock, writing nothing', async () => {
    store(lock({ expires: T + 1 }));
    const err = await acquireLock(deps, KEY, 'server1', bob, {}, T).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LockHeld', holder: 'alice', since: new Date(T).toISOString() });
    expect(fake.writes).toEqual([]);
  });

  it('renews the holder\'s own lock: a new expiry, since, count and queue kept, the reason replaced only when given', async () => {
    store(lock({ next: 4, applied: 1, reason: 'first', lastQueued: 'w3' }));
    const renewed = await acquireLock(deps, KEY, 'server1', alice, { ttlMs: 600_000 }, T + 5000);
    expect(renewed).toEqual(lock({ next: 4, applied: 1, reason: 'first', lastQueued: 'w3', expires: T + 5000 + 600_000 }));
    expect((await acquireLock(deps, KEY, 'server1', alice, { reason: 'second' }, T + 6000)).reason).toBe('second');
    expect(record()!.locks.server1).toMatchObject({ since: new Date(T).toISOString(), next: 4, applied: 1, reason: 'second' });
  });

  it('renews an expired lock of the holder\'s own, updates still held', async () => {
    store(lock({ expires: T - 1, next: 3 }));
    expect(await acquireLock(deps, KEY, 'server1', alice, {}, T)).toMatchObject({ expires: T + HOUR, next: 3, applied: 0 });
  });

  it('lets another take over a lock that expired with nothing queued, from 1 again', async () => {
    store(lock({ expires: T, next: 3, applied: 2 }));
    const taken = await acquireLock(deps, KEY, 'server1', bob, {}, T);
    expect(taken).toEqual({ key: KEY, store: 'server1', holder: 'bob', since: new Date(T).toISOString(), expires: T + HOUR, next: 1, applied: 0 });
  });

  it('calls a lock live until its expiry: one millisecond before, it is refused', async () => {
    store(lock({ expires: T + 1 }));
    await expect(acquireLock(deps, KEY, 'server1', bob, {}, T)).rejects.toThrow(LockHeldError);
    expect((await acquireLock(deps, KEY, 'server1', bob, {}, T + 1)).holder).toBe('bob');
  });

  it('refuses to take over an expired lock with held updates until they are drained', async () => {
    store(lock({ expires: T - HOUR, next: 3, applied: 0 }));
    const err = await acquireLock(deps, KEY, 'server1', bob, {}, T).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LockHeld', holder: 'alice' });
    expect((err as Error).message).toBe(`${KEY} is locked at server1 by alice since ${new Date(T).toISOString()} (expired, 2 update(s) to apply first)`);
    // One applied: one left, still refused; both applied: taken over.
    await markDrain(deps, KEY, 'server1', { applied: 1 });
    await expect(acquireLock(deps, KEY, 'server1', bob, {}, T)).rejects.toThrow('(expired, 1 update(s) to apply first)');
    await markDrain(deps, KEY, 'server1', { applied: 2 });
    expect((await acquireLock(deps, KEY, 'server1', bob, {}, T)).holder).toBe('bob');
  });

  it('refuses a lock being unlocked (draining): to another even when expired and empty, and to its holder\'s renewal', async () => {
    store(lock({ expires: T - 1, draining: { by: 'alice', since: new Date(T).toISOString() } }));
    await expect(acquireLock(deps, KEY, 'server1', bob, {}, T)).rejects.toThrow(LockHeldError);
    await expect(acquireLock(deps, KEY, 'server1', alice, {}, T)).rejects.toThrow(`${KEY} at server1 is being unlocked`);
    expect(fake.writes).toEqual([]);
  });

  it('retries S3\'s 409 ConditionalRequestConflict (a concurrent conditional write) and locks', async () => {
    let conflicts = 1;
    fake.fail('control', () => s3Error('ConditionalRequestConflict', 409, 'A conflicting conditional operation is currently in progress'), {
      command: 'PutObject',
      when: () => conflicts-- > 0,
    });
    expect((await acquireLock(deps, KEY, 'server1', alice, {}, T)).holder).toBe('alice');
    expect(lockPuts()).toHaveLength(2);
    expect(record()!.locks.server1!.holder).toBe('alice');
  });

  it('decides again when its write finds the record changed: a takeover racing the holder\'s renewal is refused', async () => {
    store(lock({ expires: T - 1 })); // expired, nothing queued: bob may take it over…
    let raced = false;
    fake.beforeWrite.push((cmd, i) => {
      // …but alice's renewal lands between bob's read and bob's write.
      if (cmd === 'PutObject' && i.Key === lockRecordKey(KEY) && !raced) {
        raced = true;
        store(lock({ expires: T + HOUR }));
      }
    });
    const err = await acquireLock(deps, KEY, 'server1', bob, {}, T).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LockHeld', holder: 'alice' });
    expect(record()!.locks.server1).toEqual(lock({ expires: T + HOUR }));
    expect(lockPuts()).toHaveLength(1); // refused (stale If-Match), then decided again from the fresh read
  });

  it('decides again when a renewal finds its lock released meanwhile: the lock is made afresh', async () => {
    store(lock({ next: 3, applied: 2 }));
    let raced = false;
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'PutObject' && i.Key === lockRecordKey(KEY) && !raced) {
        raced = true;
        fake.delete('control', lockRecordKey(KEY)); // an unlock removed it
      }
    });
    const renewed = await acquireLock(deps, KEY, 'server1', alice, {}, T + 10);
    expect(renewed).toMatchObject({ holder: 'alice', since: new Date(T + 10).toISOString(), next: 1, applied: 0 });
    expect(lockPuts().map((p) => (p.IfNoneMatch ? 'if-none-match' : 'if-match'))).toEqual(['if-match', 'if-none-match']);
  });

  it('gives up with ObjectChangedError when the record keeps changing under it', async () => {
    store(lock({ store: 'server2', holder: 'carol' }));
    let n = 0;
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'PutObject' && i.Key === lockRecordKey(KEY)) store(lock({ store: 'server2', holder: 'carol', next: ++n + 1 }));
    });
    await expect(acquireLock(deps, KEY, 'server1', alice, {}, T)).rejects.toThrow(ObjectChangedError);
    expect(record()!.locks.server1).toBeUndefined();
  });
});

describe('parseTtl', () => {
  it.each([
    [undefined, HOUR],
    [60, 60_000],
    ['60', 60_000],
    [3600, HOUR],
    [604_800, 7 * 86_400_000],
    ['604800', 7 * 86_400_000],
  ])('takes %j as %d ms', (raw, ms) => {
    expect(parseTtl(raw)).toBe(ms);
  });

  it('allows exactly 7 days at most', () => expect(MAX_TTL_MS).toBe(604_800_000));

  it.each([
    [59], ['59'], [0], [-60], [604_801], ['604801'], [60.5], ['60.5'], [59.999], [NaN], [Infinity], [1e21],
    [''], [' 60'], ['60 '], ['+60'], ['6e1'], ['0x3c'], ['sixty'], ['99999999'], [null], [true], [[60]], [{ s: 60 }],
  ])('refuses %p with 400 BadRequest', (raw) => {
    const err = (() => {
      try {
        parseTtl(raw);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ status: 400, message: 'ttl is whole seconds from 60 to 604800 (7 days)' });
  });
});

describe('lockToRelease', () => {
  it('gives the holder their lock, reading only', async () => {
    store(lock());
    expect(await lockToRelease(deps, KEY, 'server1', alice, false)).toEqual(lock());
    expect(fake.writes).toEqual([]);
  });

  it('refuses someone else\'s lock without force (403), naming the holder; with force it is theirs to release', async () => {
    store(lock());
    const err = await lockToRelease(deps, KEY, 'server1', bob, false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err).toMatchObject({ status: 403, message: `${KEY} at server1 is locked by alice since ${new Date(T).toISOString()}; unlock with force to take it over` });
    expect(await lockToRelease(deps, KEY, 'server1', bob, true)).toEqual(lock());
    expect(fake.writes).toEqual([]);
  });

  it('answers 404 when the key is not locked at that store, even when it is at another', async () => {
    await expect(lockToRelease(deps, KEY, 'server1', alice, true)).rejects.toMatchObject({ status: 404, message: `${KEY} is not locked at server1` });
    store(lock({ store: 'server2' }));
    await expect(lockToRelease(deps, KEY, 'server1', alice, false)).rejects.toThrow(NotFoundError);
  });
});

describe('takeQueueSlot', () => {
  it('numbers updates in arrival order, from the lock\'s next', async () => {
    store(lock());
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toEqual({ n: 1, fresh: true, gen: GEN });
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w2')).toEqual({ n: 2, fresh: true, gen: GEN });
    expect(await takeQueueSlot(deps, KEY, 'server1', null)).toEqual({ n: 3, fresh: true, gen: GEN });
    expect(record()!.locks.server1).toMatchObject({ next: 4, applied: 0 });
  });

  it('gives the same write twice in a row one number, without a write; again after another, a new one', async () => {
    store(lock());
    await takeQueueSlot(deps, KEY, 'server1', 'w1');
    const writes = fake.writes.length;
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toEqual({ n: 1, fresh: false, gen: GEN });
    expect(fake.writes).toHaveLength(writes);
    await takeQueueSlot(deps, KEY, 'server1', 'w2');
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toEqual({ n: 3, fresh: true, gen: GEN });
  });

  it('gives the same write a new number when asked for a fresh one (its old number was passed over)', async () => {
    store(lock());
    await takeQueueSlot(deps, KEY, 'server1', 'w1');
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1', { fresh: true })).toEqual({ n: 2, fresh: true, gen: GEN });
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toEqual({ n: 2, fresh: false, gen: GEN });
  });

  it('names the lock\'s generation, so that a later lock of the key is told apart', async () => {
    store(lock());
    const first = await takeQueueSlot(deps, KEY, 'server1', 'w1');
    store(lock({ holder: 'bob', since: new Date(T + 1).toISOString() }));
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toEqual({ n: 1, fresh: true, gen: `bob ${new Date(T + 1).toISOString()}` });
    expect(first!.gen).toBe(lockGeneration(lock()));
  });

  it('gives every delete a number of its own, and a write after a delete is new even if it came before', async () => {
    store(lock());
    await takeQueueSlot(deps, KEY, 'server1', 'w1');
    expect(await takeQueueSlot(deps, KEY, 'server1', null)).toEqual({ n: 2, fresh: true, gen: GEN });
    expect(await takeQueueSlot(deps, KEY, 'server1', null)).toEqual({ n: 3, fresh: true, gen: GEN });
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toEqual({ n: 4, fresh: true, gen: GEN });
  });

  it('answers undefined, writing nothing, when the store is not locked (the caller writes through)', async () => {
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toBeUndefined();
    store(lock({ store: 'server2' }));
    expect(await takeQueueSlot(deps, KEY, 'server1', 'w1')).toBeUndefined();
    expect(fake.writes).toEqual([]);
  });

  it('gives twelve concurrent updates the numbers 1 to 12, each once', async () => {
    store(lock());
    const slots = await Promise.all(Array.from({ length: 12 }, (_, i) => takeQueueSlot(deps, KEY, 'server1', `w${i}`)));
    expect(slots.map((s) => s!.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(record()!.locks.server1!.next).toBe(13);
  });
});

describe('markDrain and removeLock (release)', () => {
  it('marks the drain, and never lowers the count of applied updates', async () => {
    store(lock({ next: 4 }));
    const by = { by: 'alice', since: new Date(T).toISOString() };
    expect(await markDrain(deps, KEY, 'server1', { draining: by })).toMatchObject({ draining: by, applied: 0 });
    expect(await markDrain(deps, KEY, 'server1', { applied: 2 })).toMatchObject({ draining: by, applied: 2 });
    expect(await markDrain(deps, KEY, 'server1', { applied: 1 })).toMatchObject({ applied: 2 });
    expect(await markDrain(deps, KEY, 'server2', { applied: 1 })).toBeUndefined();
  });

  it('refuses to release while updates are left to apply (409), unless they are discarded', async () => {
    store(lock({ next: 3, applied: 1 }));
    const err = await removeLock(deps, KEY, 'server1', false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toBe(`${KEY} at server1 still has 1 update(s) to apply`);
    await removeLock(deps, KEY, 'server1', true);
    expect(record()).toBeUndefined();
  });

  it('deletes the record with its last lock, and keeps the others\' locks', async () => {
    store(lock(), lock({ store: 'server2', holder: 'bob' }));
    await removeLock(deps, KEY, 'server1', false);
    expect(record()).toEqual({ key: KEY, locks: { server2: lock({ store: 'server2', holder: 'bob' }) } });
    await removeLock(deps, KEY, 'server2', false);
    expect(record()).toBeUndefined();
    expect(await locksOf(deps, KEY)).toEqual(new Map());
  });

  it('decides again when an update is queued between its read and its write: the release is refused', async () => {
    store(lock({ next: 2, applied: 1 }));
    let raced = false;
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'PutObject' && i.Key === lockRecordKey(KEY) && !raced) {
        raced = true;
        store(lock({ next: 3, applied: 1, lastQueued: 'late' })); // a writer took slot 2
      }
    });
    await expect(removeLock(deps, KEY, 'server1', false)).rejects.toThrow(ConflictError);
    expect(record()!.locks.server1).toMatchObject({ next: 3, applied: 1 });
  });

  it('does nothing for a lock that is gone already', async () => {
    await removeLock(deps, KEY, 'server1', false);
    expect(fake.writes).toEqual([]);
  });
});

describe('listLocks', () => {
  it('lists every lock of every key, sorted by key then store', async () => {
    for (const [key, s, who] of [['b.txt', 'server2', bob], ['a.txt', 'server2', alice], ['b.txt', 'server1', alice]] as const) {
      await acquireLock(deps, key, s, who, {}, T);
    }
    expect((await listLocks(deps)).map((l) => `${l.key} ${l.store} ${l.holder}`)).toEqual(['a.txt server2 alice', 'b.txt server1 alice', 'b.txt server2 bob']);
  });

  it('lists nothing when nothing is locked', async () => {
    expect(await listLocks(deps)).toEqual([]);
  });
});
