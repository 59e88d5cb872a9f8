import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CompleteMultipartUploadCommandInput,
  type CreateMultipartUploadCommandInput,
} from '@aws-sdk/client-s3';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { drainExpiredLocks, lockFile, unlockFile } from '../../lib/locking';
import { acquireLock, LockHeldError, lockRecordKey, locksOf, queuePrefix } from '../../lib/locks';
import { holdUpdate } from '../../lib/queue';
import { applyKeyPlan, observeKey, planKey, settleKey } from '../../lib/settle';
import { completeUpload, putFile, startUpload } from '../../lib/upload';
import { deleteFile } from '../../lib/delete';
import { reconcile } from '../../lib/sync';
import { META, writeMetadata } from '../../lib/stamps';
import { recordDelete, updateTombstone } from '../../lib/tombstones';
import { AllStoresUnavailableError, BadRequestError, ForbiddenError, NotFoundError } from '../../lib/errors';
import { forgetTokens, type Identity } from '../../lib/tokens';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import type { JournalEvent } from '../../lib/types';
import { handler } from '../../handlers/api';
import { makeDeps } from '../helpers/deps';
import { T, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError } from '../helpers/mock-s3';
import { apiEvent, putTestTokens, tokenRecord } from '../helpers/apigw';

/*
 * Locks as the API, replication, reconcile and writers meet them (lib/locking.ts, and the lock
 * checks in lib/settle.ts, lib/upload.ts and lib/sync.ts), on a ConditionalS3 holding the stores
 * and the control bucket.
 */

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const stores: Store[] = [1, 2].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
const deps = (over: Partial<Deps> = {}) => makeDeps(stores, { control: { bucket: 'control', s3: client }, flavor: 'aws', ...over });
const KEY = 'fileB.txt';
const alice: Identity = { name: 'alice', scope: 'write' };
const bob: Identity = { name: 'bob', scope: 'write' };
const HOUR = 3_600_000;

const random = Math.random;
beforeEach(() => jest.spyOn(Math, 'random').mockImplementation(() => random() * 0.01)); // hardly a pause between attempts
afterEach(() => jest.restoreAllMocks());

const stamp = (text: string, mtime: number, who = 'ann') => writeMetadata({ id: `id-${text}`, madeMs: mtime, who }, mtime);
/** `text` written through dfs on `bucket`. */
const put = (bucket: string, text: string, mtime = T, who = 'ann') => fake.put(bucket, KEY, text, { metadata: stamp(text, mtime, who) });
const held = () => [fake.textOf('bucket-1', KEY), fake.textOf('bucket-2', KEY)];
const journal = () => fake.written<JournalEvent>('journal/');
const lockOf = async (store = 'server1') => (await locksOf(deps(), KEY)).get(store);
/** The queue entries of KEY at server1 that hold an update (not a drain's markers): op and bytes. */
const queued = (store = 'server1') =>
  [...(fake.buckets.get('control') ?? new Map())]
    .filter(([k, o]) => k.startsWith(queuePrefix(KEY, store)) && o.metadata['dfs-queue-op'] !== 'skipped')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, o]) => `${o.metadata['dfs-queue-op']} ${o.bytes.toString()}`.trim());
const storeWrites = () => fake.writes.filter((w) => /bucket-\d/.test(w));

describe('lockFile', () => {
  it('locks a file some store holds, for its holder, and journals it with the expiry and the reason', async () => {
    put('bucket-2', 'v1');
    const lock = await lockFile(deps(), KEY, 'server1', alice, { reason: 'editing', ttl: 120 });
    expect(lock).toMatchObject({ key: KEY, store: 'server1', holder: 'alice', reason: 'editing', next: 1, applied: 0 });
    expect(lock.expires - Date.parse(lock.since)).toBe(120_000);
    expect(await lockOf()).toEqual(lock);
    expect(journal()).toEqual([expect.objectContaining({ action: 'locked', key: KEY, who: 'alice', to: ['server1'], reason: `until ${new Date(lock.expires).toISOString()}: editing` })]);
    expect(storeWrites()).toEqual([]);
  });

  it('answers LockHeld (409) with holder and since to another user, writing nothing', async () => {
    put('bucket-1', 'v1');
    const lock = await lockFile(deps(), KEY, 'server1', alice, {});
    fake.writes.length = 0;
    const err = await lockFile(deps(), KEY, 'server1', bob, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect(err).toMatchObject({ status: 409, holder: 'alice', since: lock.since });
    expect(fake.writes).toEqual([]);
  });

  it('refuses a file no store holds with 404, writing nothing', async () => {
    const err = await lockFile(deps(), KEY, 'server1', alice, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ status: 404, message: `no store holds "${KEY}": there is nothing to lock` });
    expect(fake.writes).toEqual([]);
  });

  it('answers 503, not 404, when no store answers: the file may well be there', async () => {
    fake.fail('bucket-1', networkError);
    fake.fail('bucket-2', networkError);
    const err = await lockFile(deps(), KEY, 'server1', alice, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllStoresUnavailableError);
    expect(fake.writes).toEqual([]);
  });

  it.each([
    ['an unknown field', { reason: 'x', force: true }, 'unknown field(s) force; a lock takes "reason" and "ttl"'],
    ['two unknown fields', { store: 'server2', holder: 'bob' }, 'unknown field(s) store, holder; a lock takes "reason" and "ttl"'],
    ['a reason that is not text', { reason: 42 }, 'reason is text of at most 200 characters'],
    ['a reason of 201 characters', { reason: 'r'.repeat(201) }, 'reason is text of at most 200 characters'],
    ['a ttl under a minute', { ttl: 59 }, 'ttl is whole seconds from 60 to 604800 (7 days)'],
    ['a ttl over 7 days', { ttl: 604_801 }, 'ttl is whole seconds from 60 to 604800 (7 days)'],
    ['a ttl with a fraction', { ttl: 60.5 }, 'ttl is whole seconds from 60 to 604800 (7 days)'],
    ['a ttl in words', { ttl: '1 hour' }, 'ttl is whole seconds from 60 to 604800 (7 days)'],
  ])('answers 400 to %s, asking no store and writing nothing', async (_, body, message) => {
    put('bucket-1', 'v1');
    const err = await lockFile(deps(), KEY, 'server1', alice, body as Record<string, unknown>).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ status: 400, message });
    expect(s3mock.calls()).toEqual([]);
  });

  it('takes a reason of exactly 200 characters and a ttl of exactly 60 s or 7 days', async () => {
    put('bucket-1', 'v1');
    expect((await lockFile(deps(), KEY, 'server1', alice, { reason: 'r'.repeat(200), ttl: 60 })).reason).toHaveLength(200);
    const week = await lockFile(deps(), KEY, 'server1', alice, { ttl: '604800' });
    expect(week.expires).toBeGreaterThanOrEqual(Date.now() + 604_800_000 - 5000);
  });
});

describe('unlockFile', () => {
  const unlock = (who: Identity, opts: Partial<{ force: boolean; discard: boolean; budgetMs: number }> = {}, d = deps()) =>
    unlockFile(d, KEY, 'server1', who, { force: false, discard: false, budgetMs: 60_000, ...opts });

  it('applies the held updates in order, releases the lock and settles the key: the store catches up', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v0', T - 10);
    await lockFile(deps(), KEY, 'server1', alice, {});
    put('bucket-2', 'v1', T); // a newer write elsewhere: its replication is held
    expect((await settleKey(deps(), KEY, { by: 'replicate', fill: () => true })).held).toEqual(['server1']);
    expect(held()).toEqual(['v0', 'v1']);
    expect(await unlock(alice)).toEqual({ key: KEY, store: 'server1', applied: 1, total: 1, done: true });
    expect(held()).toEqual(['v1', 'v1']);
    expect(await lockOf()).toBeUndefined();
    expect(journal().map((e) => e.action)).toEqual(['locked', 'queued', 'applied', 'unlocked']);
  });

  it('refuses someone else\'s lock without force (403), applying nothing', async () => {
    put('bucket-1', 'v0');
    await lockFile(deps(), KEY, 'server1', alice, {});
    await holdUpdate(deps(), KEY, 'server1', { kind: 'put-bytes', body: Buffer.from('v1'), metadata: stamp('v1', T + 1) }, 'carol');
    fake.writes.length = 0;
    const err = await unlock(bob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err).toMatchObject({ status: 403 });
    expect(fake.writes).toEqual([]);
    expect(await lockOf()).toMatchObject({ holder: 'alice', next: 2, applied: 0 });
  });

  it('unlocks someone else\'s lock with force, journalling whose it was', async () => {
    put('bucket-1', 'v0');
    const lock = await lockFile(deps(), KEY, 'server1', alice, {});
    expect(await unlock(bob, { force: true })).toMatchObject({ done: true });
    expect(journal().find((e) => e.action === 'unlock-forced')).toMatchObject({ who: 'bob', to: ['server1'], reason: `held by alice since ${lock.since}` });
    expect(await lockOf()).toBeUndefined();
  });

  it('answers 404 when the file is not locked there', async () => {
    put('bucket-1', 'v0');
    await expect(unlock(alice)).rejects.toThrow(NotFoundError);
    await lockFile(deps(), KEY, 'server2', alice, {});
    await expect(unlock(alice)).rejects.toMatchObject({ status: 404 });
  });

  it('drops the held updates with discard; the settle afterwards still brings the store level with the others', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v0', T - 10);
    await lockFile(deps(), KEY, 'server1', alice, {});
    // bob writes to server1 alone (held), then carol to every store (held for server1).
    expect((await putFile(deps(), { key: KEY, body: Buffer.from('bob only'), to: 'server1', who: 'bob', now: T })).results).toEqual([{ store: 'server1', ok: true, held: 1 }]);
    await putFile(deps(), { key: KEY, body: Buffer.from('carol'), to: 'all', who: 'carol', now: T + 5 });
    expect(await unlock(alice, { discard: true })).toMatchObject({ done: true, discarded: 2 });
    expect(held()).toEqual(['carol', 'carol']);
    expect(queued()).toEqual([]);
  });

  it('hands a drain not done within its budget on (deps.continueDrain) and answers how far it got', async () => {
    put('bucket-1', 'v0');
    await lockFile(deps(), KEY, 'server1', alice, {});
    for (const v of ['v1', 'v2']) await holdUpdate(deps(), KEY, 'server1', { kind: 'put-bytes', body: Buffer.from(v), metadata: stamp(v, T + 1) }, 'bob');
    const continueDrain = jest.fn(async () => undefined);
    const progress = await unlock(alice, { budgetMs: -1 }, deps({ continueDrain }));
    expect(progress).toEqual({ key: KEY, store: 'server1', applied: 0, total: 2, done: false });
    expect(continueDrain).toHaveBeenCalledWith(KEY, 'server1');
    expect(await lockOf()).toMatchObject({ draining: { by: 'alice' } });
    expect(held()[0]).toBe('v0');
  });
});

describe('drainExpiredLocks', () => {
  it('drains every lock past its expiry, whoever held it, journals it as expired and settles the key; live locks stay', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v1', T);
    await acquireLock(deps(), KEY, 'server1', alice, { ttlMs: 60_000 }, T);
    await acquireLock(deps(), 'other.txt', 'server1', bob, { ttlMs: HOUR }, T);
    await holdUpdate(deps(), KEY, 'server1', { kind: 'put', from: stores[1]!, head: (await observeKey(deps(), KEY)).copies.get('server2')!, metadata: stamp('v1', T) }, 'ann');
    const done = await drainExpiredLocks(deps(), T + 60_000);
    expect(done).toEqual([{ key: KEY, store: 'server1', applied: 1, total: 1, done: true }]);
    expect(held()).toEqual(['v1', 'v1']);
    expect(journal().find((e) => e.action === 'expired')).toMatchObject({ who: 'alice', to: ['server1'], reason: `lock of alice expired at ${new Date(T + 60_000).toISOString()}; 1 held update(s) applied` });
    expect((await locksOf(deps(), 'other.txt')).get('server1')).toMatchObject({ holder: 'bob' });
  });
});

describe('settling a key with a lock (lib/settle.ts)', () => {
  const settle = () => settleKey(deps(), KEY, { by: 'replicate', fill: () => true });

  it('holds replication\'s copy into the locked store and makes the others\' as usual', async () => {
    await acquireLock(deps(), KEY, 'server1', alice);
    const d = makeDeps([...stores, { name: 'server3', bucket: 'bucket-3', s3: client }], { control: { bucket: 'control', s3: client }, flavor: 'aws' });
    put('bucket-2', 'v1');
    const out = await settleKey(d, KEY, { by: 'replicate', fill: () => true });
    expect(out).toMatchObject({ copied: ['server3'], held: ['server1'], deleted: [], failed: [], stale: false });
    expect([fake.textOf('bucket-1', KEY), fake.textOf('bucket-3', KEY)]).toEqual([undefined, 'v1']);
    expect(queued()).toEqual(['put v1']);
    expect(fake.has('control', `${queuePrefix(KEY, 'server1')}00000001`)!.metadata).toMatchObject({ [META.id]: 'id-v1', [META.replicaOf]: 'server2' });
  });

  it('holds the same copy once, however often its event comes', async () => {
    await acquireLock(deps(), KEY, 'server1', alice);
    put('bucket-2', 'v1');
    for (let i = 0; i < 3; i++) expect((await settle()).held).toEqual(['server1']);
    expect(queued()).toEqual(['put v1']);
    expect(journal().filter((e) => e.action === 'queued')).toHaveLength(1);
  });

  it('holds a delete into the locked store, and deletes the other copies', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v0', T - 10);
    await acquireLock(deps(), KEY, 'server1', alice);
    await updateTombstone(deps(), KEY, (t) => recordDelete(t, KEY, T, 'bob'));
    const out = await settle();
    expect(out).toMatchObject({ deleted: ['server2'], held: ['server1'], stale: false });
    expect(held()).toEqual(['v0', undefined]);
    expect(queued()).toEqual(['delete']);
  });

  it('lets the holder\'s own writes through (the API acting for the holder), and holds another user\'s', async () => {
    put('bucket-2', 'v1');
    await acquireLock(deps(), KEY, 'server1', alice);
    const view = await observeKey(deps(), KEY);
    expect(await applyKeyPlan(deps(), view, planKey(view, () => true), 'api', 'bob')).toMatchObject({ copied: [], held: ['server1'] });
    expect(await applyKeyPlan(deps(), view, planKey(view, () => true), 'api', 'alice')).toMatchObject({ copied: ['server1'], held: [] });
    expect(fake.textOf('bucket-1', KEY)).toBe('v1');
  });

  it('holds reconcile\'s copies too', async () => {
    put('bucket-2', 'v1');
    await acquireLock(deps(), KEY, 'server1', alice);
    const view = await observeKey(deps(), KEY);
    expect(await applyKeyPlan(deps(), view, planKey(view, () => true), 'reconcile')).toMatchObject({ copied: [], held: ['server1'] });
  });

  it('calls the plan stale when the lock went between its look and its hold, and the next round writes', async () => {
    put('bucket-2', 'v1');
    await acquireLock(deps(), KEY, 'server1', alice);
    const view = await observeKey(deps(), KEY);
    fake.delete('control', lockRecordKey(KEY)); // unlocked meanwhile
    expect(await applyKeyPlan(deps(), view, planKey(view, () => true), 'replicate')).toMatchObject({ copied: [], held: [], stale: true });
    expect(fake.textOf('bucket-1', KEY)).toBeUndefined();
    expect(await settle()).toMatchObject({ copied: ['server1'], held: [], stale: false });
  });

  it('reads the key\'s locks with it, one GET of locks/<hash>', async () => {
    await acquireLock(deps(), KEY, 'server2', bob);
    const view = await observeKey(deps(), KEY);
    expect([...view.locks!.keys()]).toEqual(['server2']);
    expect((await observeKey(deps(), 'unlocked.txt')).locks).toBeUndefined();
  });
});

describe('deleteFile with a lock (lib/delete.ts)', () => {
  it('lets the holder\'s own delete through to their locked store', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v0', T - 10);
    await acquireLock(deps(), KEY, 'server1', alice);
    const answer = await deleteFile(deps(), KEY, 'alice');
    expect(answer.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]);
    expect(held()).toEqual([undefined, undefined]);
    expect(queued()).toEqual([]);
  });

  // deleteFile hands settleKey a view it built from its own HEADs, without the key's locks
  // (KeyView.locks), so applyKeyPlan's heldBack sees none: another user's API delete removes
  // the locked store's copy at once instead of holding it in the lock's queue.
  it('holds another user\'s delete for the locked store, and answers it as held', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v0', T - 10);
    await acquireLock(deps(), KEY, 'server1', alice);
    const answer = await deleteFile(deps(), KEY, 'bob');
    expect(fake.textOf('bucket-1', KEY)).toBe('v0');
    expect(queued()).toEqual(['delete']);
    expect(answer.results).toEqual([{ store: 'server1', ok: true, held: 1 }, { store: 'server2', ok: true }]);
  });
});

describe('putFile with a lock (lib/upload.ts)', () => {
  it('writes the holder\'s write through to the locked store', async () => {
    await acquireLock(deps(), KEY, 'server1', alice);
    const a = await putFile(deps(), { key: KEY, body: Buffer.from('mine'), to: 'all', who: 'alice' });
    expect(a.results).toEqual([
      { store: 'server1', ok: true, etag: expect.any(String) },
      { store: 'server2', ok: true, etag: expect.any(String) },
    ]);
    expect(held()).toEqual(['mine', 'mine']);
    expect(queued()).toEqual([]);
  });

  it('holds another user\'s write for the locked store (held: n in the answer) and writes the others', async () => {
    put('bucket-1', 'v0', T - 10);
    await acquireLock(deps(), KEY, 'server1', alice);
    const a = await putFile(deps(), { key: KEY, body: Buffer.from('bob 1'), to: 'all', who: 'bob' });
    expect(a.results).toEqual([
      { store: 'server1', ok: true, held: 1 },
      { store: 'server2', ok: true, etag: expect.any(String) },
    ]);
    const b = await putFile(deps(), { key: KEY, body: Buffer.from('bob 2'), to: 'server1', who: 'bob' });
    expect(b.results).toEqual([{ store: 'server1', ok: true, held: 2 }]);
    expect(held()).toEqual(['v0', 'bob 1']);
    expect(queued()).toEqual(['put bob 1', 'put bob 2']);
    const entry = fake.has('control', `${queuePrefix(KEY, 'server1')}00000002`)!;
    expect(entry.metadata).toMatchObject({ [META.who]: 'bob', 'dfs-queue-op': 'put' });
  });

  it('writes through when the lock went between its look and its hold', async () => {
    await acquireLock(deps(), KEY, 'server1', alice);
    let reads = 0;
    fake.onRequest((cmd, i) => {
      // The second read of the lock record is holdUpdate's: the lock is gone by then.
      if (cmd === 'GetObject' && i.Key === lockRecordKey(KEY) && ++reads === 2) fake.delete('control', lockRecordKey(KEY));
    });
    const a = await putFile(deps(), { key: KEY, body: Buffer.from('bob'), to: 'server1', who: 'bob' });
    expect(a.results).toEqual([{ store: 'server1', ok: true, etag: expect.any(String) }]);
    expect(fake.textOf('bucket-1', KEY)).toBe('bob');
  });
});

describe('multipart uploads with a lock (lib/upload.ts)', () => {
  beforeEach(() => {
    s3mock.on(CreateMultipartUploadCommand).callsFake(async (i: CreateMultipartUploadCommandInput) => ({ UploadId: `up-${i.Bucket}` }));
  });

  it('leaves a store locked by someone else out of the upload, saying why', async () => {
    await acquireLock(deps(), KEY, 'server1', alice);
    const plan = await startUpload(deps(), { key: KEY, size: 10 }, 'bob');
    expect(plan.uploads).toEqual([{ store: 'server2', uploadId: 'up-bucket-2' }]);
    expect(plan.failed).toEqual([{ store: 'server1', ok: false, code: 'LockHeld', error: expect.stringMatching(/^locked by alice since .*: held in the lock's queue once the upload lands on the other stores$/) }]);
    expect(s3mock.commandCalls(CreateMultipartUploadCommand).map((c) => c.args[0].input.Bucket)).toEqual(['bucket-2']);
  });

  it('refuses an upload whose only target is locked by someone else (LockHeld 409), starting none', async () => {
    const lock = await acquireLock(deps(), KEY, 'server1', alice);
    const err = await startUpload(deps(), { key: KEY, size: 10, to: 'server1' }, 'bob').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect(err).toMatchObject({ status: 409, holder: 'alice', since: lock.since });
    expect(s3mock.commandCalls(CreateMultipartUploadCommand)).toEqual([]);
  });

  it('starts the holder\'s upload on the locked store', async () => {
    await acquireLock(deps(), KEY, 'server1', alice);
    const plan = await startUpload(deps(), { key: KEY, size: 10, to: 'server1' }, 'alice');
    expect(plan.uploads).toEqual([{ store: 'server1', uploadId: 'up-bucket-1' }]);
  });

  /** CompleteMultipartUpload lands `text` (stamped as bob's) in the request's bucket. */
  const completesAs = (text: string) =>
    s3mock.on(CompleteMultipartUploadCommand).callsFake(async (i: CompleteMultipartUploadCommandInput) => ({ ETag: fake.put(i.Bucket!, i.Key!, text, { metadata: stamp(text, T, 'bob') }).etag }));
  const complete = (plan: { uploads: { store: string; uploadId: string }[] }, who: string) =>
    completeUpload(deps(), { key: KEY, uploads: plan.uploads.map((u) => ({ ...u, parts: [{ n: 1, etag: '"p1"' }] })) }, who);

  it('refuses to complete an upload whose only target was locked by someone else since it started (LockHeld 409)', async () => {
    put('bucket-1', 'v0', T - 10);
    completesAs('bob upload');
    const plan = await startUpload(deps(), { key: KEY, size: 10, to: 'server1' }, 'bob');
    const lock = await acquireLock(deps(), KEY, 'server1', alice);
    const err = await complete(plan, 'bob').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 409, holder: 'alice', since: lock.since });
    expect(fake.textOf('bucket-1', KEY)).toBe('v0');
    expect(s3mock.commandCalls(CompleteMultipartUploadCommand)).toEqual([]);
  });

  it('completes on the other stores and holds the file for the store locked since the upload started, its upload aborted', async () => {
    put('bucket-1', 'v0', T - 10);
    completesAs('bob upload');
    const plan = await startUpload(deps(), { key: KEY, size: 10, to: 'all' }, 'bob');
    await acquireLock(deps(), KEY, 'server1', alice);
    const a = await complete(plan, 'bob');
    expect(a.results).toEqual([
      { store: 'server2', ok: true, etag: expect.any(String) },
      { store: 'server1', ok: true, held: 1 },
    ]);
    expect(held()).toEqual(['v0', 'bob upload']);
    expect(queued()).toEqual(['put bob upload']);
    expect(s3mock.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input.Bucket)).toEqual(['bucket-1']);
    // Its replication event finds the same write in the queue: still one entry.
    await settleKey(deps(), KEY, { by: 'replicate', fill: () => true });
    expect(queued()).toEqual(['put bob upload']);
  });

  it('completes the holder\'s own upload into the store it locked', async () => {
    put('bucket-1', 'v0', T - 10);
    completesAs('alice upload');
    const plan = await startUpload(deps(), { key: KEY, size: 10, to: 'server1' }, 'alice');
    await acquireLock(deps(), KEY, 'server1', alice);
    expect((await complete(plan, 'alice')).results).toEqual([{ store: 'server1', ok: true, etag: expect.any(String) }]);
    expect(fake.textOf('bucket-1', KEY)).toBe('alice upload');
  });
});

describe('reconcile with locks (lib/sync.ts)', () => {
  it('drains an expired lock before it plans, and reports it', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v1', T);
    await acquireLock(deps(), KEY, 'server1', alice, { ttlMs: 60_000 }, T);
    await settleKey(deps(), KEY, { by: 'replicate', fill: () => true }); // held
    const report = await reconcile(deps(), { now: T + 60_000 });
    expect(report.expiredLocks).toEqual([{ key: KEY, store: 'server1', applied: 1 }]);
    expect(report.held).toBeUndefined();
    expect(held()).toEqual(['v1', 'v1']);
    expect(await lockOf()).toBeUndefined();
  });

  it('names the steps a live lock holds, holds them, and holds nothing twice on the next run', async () => {
    put('bucket-1', 'v0', T - 10);
    put('bucket-2', 'v1', T);
    const lock = await acquireLock(deps(), KEY, 'server1', alice);
    const dry = await reconcile(deps(), { dryRun: true });
    expect(dry.held).toEqual([{ key: KEY, store: 'server1', holder: 'alice', since: lock.since }]);
    expect(queued()).toEqual([]);
    const report = await reconcile(deps());
    expect(report.held).toEqual([{ key: KEY, store: 'server1', holder: 'alice', since: lock.since }]);
    expect(report.applied).toEqual({ done: 1, failed: [] });
    expect(held()).toEqual(['v0', 'v1']);
    await reconcile(deps());
    expect(queued()).toEqual(['put v1']);
  });

  // A name some stores lack that was never deleted is planned from the listings alone
  // (missingOnly), without reading its locks: the copy is held when applied, but the report
  // does not name it in `held`.
  it('names a held copy of a name only some stores hold, planned from the listings', async () => {
    put('bucket-2', 'v1', T);
    const lock = await acquireLock(deps(), KEY, 'server1', alice);
    const report = await reconcile(deps(), { force: true });
    expect(queued()).toEqual(['put v1']);
    expect(report.held).toEqual([{ key: KEY, store: 'server1', holder: 'alice', since: lock.since }]);
  });
});

describe('the lock routes (handlers/api.ts)', () => {
  const OTHER = `dfs_other_${'O'.repeat(43)}`;
  beforeEach(async () => {
    forgetTokens();
    mockDeps = deps();
    await putTestTokens((key, text) => fake.put('control', key, text));
    fake.put('control', 'tokens/other', tokenRecord(OTHER, 'write'));
    put('bucket-1', 'v0');
  });
  async function send(method: string, path: string, opts: { query?: Record<string, string>; body?: unknown; auth?: string } = {}) {
    const event = apiEvent(method, path, {
      ...(opts.query ? { query: opts.query } : {}),
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(opts.auth ? { auth: opts.auth } : {}),
    });
    const res = (await handler(event)) as APIGatewayProxyStructuredResultV2 & { body: string };
    return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
  }

  it('locks (201), refuses another token (409 with holder and since), lists, and unlocks (200)', async () => {
    const locked = await send('POST', `/locks/${KEY}`, { query: { store: 'server2' }, body: { reason: 'editing' } });
    expect(locked).toMatchObject({ status: 201, body: { key: KEY, store: 'server2', holder: 'tester', reason: 'editing' } });
    const refused = await send('POST', `/locks/${KEY}`, { query: { store: 'server2' }, auth: `Bearer ${OTHER}` });
    expect(refused).toEqual({ status: 409, body: { error: 'LockHeld', message: expect.any(String), holder: 'tester', since: locked.body.since } });
    expect((await send('GET', '/locks')).body).toEqual({ locks: [expect.objectContaining({ key: KEY, store: 'server2', holder: 'tester' })] });
    expect(await send('DELETE', `/locks/${KEY}`, { query: { store: 'server2' }, auth: `Bearer ${OTHER}` })).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    expect(await send('DELETE', `/locks/${KEY}`, { query: { store: 'server2' } })).toEqual({ status: 200, body: { key: KEY, store: 'server2', applied: 0, total: 0, done: true } });
    expect(await send('DELETE', `/locks/${KEY}`, { query: { store: 'server2' } })).toMatchObject({ status: 404, body: { error: 'NotFound' } });
  });

  it('locks the first store when no store is named, and answers 400 for an unknown one', async () => {
    expect(await send('POST', `/locks/${KEY}`)).toMatchObject({ status: 201, body: { store: 'server1' } });
    expect(await send('POST', `/locks/${KEY}`, { query: { store: 'server9' } })).toMatchObject({ status: 400 });
  });

  it('answers 400 to a bad body and 404 for a file no store holds', async () => {
    expect(await send('POST', `/locks/${KEY}`, { body: { ttl: 30 } })).toMatchObject({ status: 400, body: { error: 'BadRequest' } });
    expect(await send('POST', '/locks/nothing.txt')).toMatchObject({ status: 404, body: { error: 'NotFound' } });
    expect(await locksOf(deps(), KEY)).toEqual(new Map());
  });

  it('answers 202 with the progress when the drain is not done in the request, after handing it on', async () => {
    const continueDrain = jest.fn(async () => undefined);
    mockDeps = deps({ continueDrain });
    await acquireLock(deps(), KEY, 'server1', { name: 'tester', scope: 'write' });
    await holdUpdate(deps(), KEY, 'server1', { kind: 'put-bytes', body: Buffer.from('v1'), metadata: stamp('v1', T) }, 'bob');
    // The drain's budget (20 s) is spent once it has marked the lock as draining: an hour passes.
    const clock = Date.now;
    let later = 0;
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'PutObject' && i.Key === lockRecordKey(KEY)) later = HOUR;
    });
    jest.spyOn(Date, 'now').mockImplementation(() => clock() + later);
    const res = await send('DELETE', `/locks/${KEY}`, { query: { store: 'server1' } });
    expect(res).toEqual({ status: 202, body: { key: KEY, store: 'server1', applied: 0, total: 1, done: false } });
    expect(continueDrain).toHaveBeenCalledWith(KEY, 'server1');
  });
});
