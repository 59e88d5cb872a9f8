import { createHash } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { replicateNotification } from '../../lib/replicate';
import { putFile } from '../../lib/upload';
import { lockFile, unlockFile } from '../../lib/locking';
import { locksOf, queuePrefix } from '../../lib/locks';
import { drainLock } from '../../lib/queue';
import { reconcile } from '../../lib/sync';
import { newWriteId, writeMetadata } from '../../lib/stamps';
import { createS3Client } from '../../lib/config';
import { StoreUnavailableError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import type { Identity } from '../../lib/tokens';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { EventTap, listAll, mapLimit, readJournal, type S3Notification } from '../helpers/events';

/*
 * Locks on the S3-like s3rver (issue 9): fileB locked at server1 while another user updates it
 * on server2, each update's S3 event delivered to replication right after its write. server1
 * must not change until the unlock, which then takes it through the held updates in their order
 * (its own S3 events show each one), also when the drain stops halfway and is started again.
 */

let s3: LocalS3;
let tap: EventTap;
const T = Date.UTC(2026, 5, 1, 12);
const alice: Identity = { name: 'alice', scope: 'write' };
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

beforeAll(async () => {
  s3 = await startS3rver(['server1', 'server2', 'control']);
  tap = new EventTap(s3);
});
afterAll(() => s3?.stop());
beforeEach(() => tap.take());

const stores: () => Store[] = () => ['server1', 'server2'].map((name) => ({ name, bucket: name, s3: s3.client }));
const depsWith = (over: Partial<Deps> = {}) => makeDeps(stores(), { flavor: 's3rver', ...over });

async function text(bucket: string, key: string): Promise<string | null> {
  try {
    const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await res.Body!.transformToString();
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return null;
    throw err;
  }
}
const both = (key: string) => Promise.all(['server1', 'server2'].map((b) => text(b, key)));

/** Delivers every pending event of the stores, and those they cause, until none is left. */
async function settle(deps: Deps) {
  for (let round = 0; round < 20; round++) {
    const pending = tap.take(['server1', 'server2']);
    if (pending.length === 0) return;
    for (const e of pending) await replicateNotification(deps, e, { pause: async () => undefined });
  }
  throw new Error('replication does not settle');
}
/** The one event of `bucket` since the last take, delivered to replication at once. */
async function deliverOne(deps: Deps, bucket: string) {
  await replicateNotification(deps, tap.takeOne(bucket), { pause: async () => undefined });
}

/** The queue of `key` at server1, in number order: each entry's operation and bytes. */
async function queueOf(key: string): Promise<string[]> {
  const objects = await listAll(s3.client, 'control', queuePrefix(key, 'server1'));
  const entries = await mapLimit(objects, 16, async (o) => {
    const res = await s3.client.send(new GetObjectCommand({ Bucket: 'control', Key: o.key }));
    const op = res.Metadata?.['dfs-queue-op'];
    return op === 'put' ? await res.Body!.transformToString() : `(${op})`;
  });
  return entries.filter((e) => e !== '(skipped)');
}

/** What happened on `bucket` since the last take, as S3's events say: the ETag each write left, or "removed". */
const history = (ns: S3Notification[], bucket: string) =>
  ns.filter((n) => n.Records[0]!.s3.bucket.name === bucket).map((n) => (n.Records[0]!.eventName.startsWith('ObjectRemoved') ? 'removed' : n.Records[0]!.s3.object.eTag));

/** `key` with the same first version on both stores, written through dfs and settled. */
async function seeded(deps: Deps, key: string) {
  await putFile(deps, { key, body: Buffer.from('This is version 1 of file B.'), to: 'all', mtime: String(T), who: 'seed' });
  await settle(deps);
  expect(await both(key)).toEqual(['This is version 1 of file B.', 'This is version 1 of file B.']);
}

/** `n` successive updates by bob on server2, from `from`, each event delivered right after its write. */
async function updatesOnServer2(deps: Deps, key: string, from: number, n: number): Promise<string[]> {
  const texts: string[] = [];
  for (let i = from; i < from + n; i++) {
    const body = `fileB update ${i} by bob`;
    const a = await putFile(deps, { key, body: Buffer.from(body), to: 'server2', mtime: String(T + i * 1000), who: 'bob' });
    expect(a.results).toEqual([{ store: 'server2', ok: true, etag: md5(body) }]);
    await deliverOne(deps, 'server2');
    expect(tap.take(['server1', 'server2'])).toEqual([]); // nothing written into server1
    texts.push(body);
  }
  return texts;
}

describe('fileB locked at server1 while server2 is updated 100 times', () => {
  it('holds all 100 in order, server1 untouched; the unlock takes server1 through them in journal order to the last', async () => {
    const deps = depsWith();
    const key = 'locked/fileB.txt';
    await seeded(deps, key);
    await lockFile(deps, key, 'server1', alice, { reason: 'editing fileB' });
    const texts = await updatesOnServer2(deps, key, 1, 100);

    expect(await both(key)).toEqual(['This is version 1 of file B.', texts[99]]);
    expect(await queueOf(key)).toEqual(texts);
    expect((await locksOf(deps, key)).get('server1')).toMatchObject({ holder: 'alice', next: 101, applied: 0 });

    const progress = await unlockFile(deps, key, 'server1', alice, { force: false, discard: false, budgetMs: 120_000 });
    expect(progress).toEqual({ key, store: 'server1', applied: 100, total: 100, done: true });
    // server1's own events: the hundred updates, one each, in their order.
    const seen = tap.take(['server1', 'server2']);
    expect(history(seen, 'server1')).toEqual(texts.map(md5));
    expect(history(seen, 'server2')).toEqual([]);
    await settle(deps); // the copies' events change nothing
    expect(await both(key)).toEqual([texts[99], texts[99]]);
    expect(await queueOf(key)).toEqual([]);
    expect(await locksOf(deps, key)).toEqual(new Map());

    const journal = (await readJournal(deps.control)).filter((e) => e.key === key && ['locked', 'queued', 'applied', 'unlocked'].includes(e.action));
    expect(journal.map((e) => e.action)).toEqual(['locked', ...texts.map(() => 'queued'), ...texts.map(() => 'applied'), 'unlocked']);
    expect(journal.filter((e) => e.action === 'queued').map((e) => e.reason)).toEqual(texts.map((_, i) => `update held as #${i + 1}: ${key} is locked at server1`));
    expect(journal.filter((e) => e.action === 'applied').map((e) => e.reason)).toEqual(texts.map((_, i) => `held update ${i + 1}/100`));
    expect(journal.filter((e) => e.action === 'queued').every((e) => e.who === 'bob')).toBe(true);
  }, 120_000);

  it('resumes a drain stopped after 40 entries (its budget spent) and applies exactly the remaining 60', async () => {
    const deps = depsWith();
    const key = 'stopped/fileB.txt';
    await seeded(deps, key);
    await lockFile(deps, key, 'server1', alice, {});
    const texts = await updatesOnServer2(deps, key, 1, 100);

    // Ten minutes pass (within S3's signing skew) the moment server1 has taken the 40th update.
    const clock = Date.now;
    let skew = 0;
    let applied = 0;
    tap.onEvent((n) => {
      if (n.Records[0]!.s3.bucket.name === 'server1' && ++applied === 40) skew = 10 * 60_000;
    });
    jest.spyOn(Date, 'now').mockImplementation(() => clock() + skew);
    try {
      expect(await drainLock(deps, key, 'server1', 'alice', { budgetMs: 5 * 60_000 })).toEqual({ key, store: 'server1', applied: 40, total: 100, done: false });
    } finally {
      jest.restoreAllMocks();
      applied = -Infinity;
    }
    expect(history(tap.take(['server1']), 'server1')).toEqual(texts.slice(0, 40).map(md5));
    expect(await text('server1', key)).toBe(texts[39]);
    expect(await queueOf(key)).toEqual(texts.slice(40));

    const rest = await unlockFile(deps, key, 'server1', alice, { force: false, discard: false, budgetMs: 120_000 });
    expect(rest).toEqual({ key, store: 'server1', applied: 100, total: 100, done: true });
    expect(history(tap.take(['server1']), 'server1')).toEqual(texts.slice(40).map(md5));
    await settle(deps);
    expect(await both(key)).toEqual([texts[99], texts[99]]);
    // Each journalled once (the skewed clock dates "applied 40/100" ten minutes on: by number, not by id).
    const applies = (await readJournal(deps.control)).filter((e) => e.key === key && e.action === 'applied');
    const number = (r?: string) => Number(/held update (\d+)\//.exec(r ?? '')![1]);
    expect(applies.map((e) => number(e.reason)).sort((a, b) => a - b)).toEqual(texts.map((_, i) => i + 1));
  }, 120_000);

  it('resumes a drain that died between applying entry 40 and counting it, applying entry 40 no second time', async () => {
    const key = 'crashed/fileB.txt';
    // The unlocking Lambda's control bucket stops answering lock-record writes after server1's 40th update.
    let crashed = false;
    let applied = 0;
    const control = createS3Client({ endpoint: s3.endpoint });
    control.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string };
        if (crashed && input.Key?.startsWith('locks/')) throw Object.assign(new Error('socket hang up (injected)'), { name: 'TimeoutError', $metadata: {} });
        return next(args);
      },
      { step: 'initialize', name: 'crash' },
    );
    tap.onEvent((n) => {
      if (n.Records[0]!.s3.bucket.name === 'server1' && n.Records[0]!.s3.object.key === key && ++applied === 40) crashed = true;
    });
    const deps = depsWith();
    await seeded(deps, key);
    await lockFile(deps, key, 'server1', alice, {});
    applied = 0;
    const texts = await updatesOnServer2(deps, key, 1, 100);
    const dying = depsWith({ control: { bucket: 'control', s3: control } });
    try {
      await expect(drainLock(dying, key, 'server1', 'alice')).rejects.toThrow(StoreUnavailableError);
    } finally {
      control.destroy();
      crashed = false;
      applied = -Infinity;
    }
    expect(history(tap.take(['server1']), 'server1')).toEqual(texts.slice(0, 40).map(md5));
    expect((await locksOf(deps, key)).get('server1')).toMatchObject({ applied: 39, next: 101 });

    expect(await unlockFile(deps, key, 'server1', alice, { force: false, discard: false, budgetMs: 120_000 })).toMatchObject({ applied: 100, done: true });
    expect(history(tap.take(['server1']), 'server1')).toEqual(texts.slice(40).map(md5)); // 41 to 100: 40 is on server1 already
    await settle(deps);
    expect(await both(key)).toEqual([texts[99], texts[99]]);
  }, 120_000);
});

describe('a delete held between writes', () => {
  it('is applied in its place: server1 loses the file, then takes the writes after it (the writes before it, dead by then, are not written)', async () => {
    const deps = depsWith();
    const key = 'deleted/fileB.txt';
    await seeded(deps, key);
    await lockFile(deps, key, 'server1', alice, {});
    const before = await updatesOnServer2(deps, key, 1, 3);
    await new Promise((r) => setTimeout(r, 5)); // the delete comes after them, the next writes after it
    await s3.client.send(new DeleteObjectCommand({ Bucket: 'server2', Key: key })); // straight in the bucket
    await deliverOne(deps, 'server2');
    expect(await both(key)).toEqual(['This is version 1 of file B.', null]);
    await new Promise((r) => setTimeout(r, 5));
    const after = await updatesOnServer2(deps, key, 4, 2);
    expect(await queueOf(key)).toEqual([...before, '(delete)', ...after]);

    expect(await unlockFile(deps, key, 'server1', alice, { force: false, discard: false, budgetMs: 60_000 })).toMatchObject({ applied: 6, total: 6, done: true });
    expect(history(tap.take(['server1']), 'server1')).toEqual(['removed', ...after.map(md5)]);
    await settle(deps);
    expect(await both(key)).toEqual([after[1], after[1]]);
  }, 60_000);
});

describe('the holder', () => {
  it('writes to the locked server1 while it is locked, and the write replicates to server2', async () => {
    const deps = depsWith();
    const key = 'holder/fileB.txt';
    await seeded(deps, key);
    await lockFile(deps, key, 'server1', alice, {});
    const a = await putFile(deps, { key, body: Buffer.from("alice's edit"), to: 'server1', mtime: String(T + 5000), who: 'alice' });
    expect(a.results).toEqual([{ store: 'server1', ok: true, etag: md5("alice's edit") }]);
    await deliverOne(deps, 'server1');
    expect(await both(key)).toEqual(["alice's edit", "alice's edit"]);
    await settle(deps);
    expect(await queueOf(key)).toEqual([]);
    expect(await unlockFile(deps, key, 'server1', alice, { force: false, discard: false, budgetMs: 60_000 })).toEqual({ key, store: 'server1', applied: 0, total: 0, done: true });
    expect(tap.take(['server1', 'server2'])).toEqual([]);
  });

  it('keeps the newest write when an older one was held for server1: the drain applies it, the settle after the unlock undoes it', async () => {
    const deps = depsWith();
    const key = 'newest/fileB.txt';
    await seeded(deps, key);
    await lockFile(deps, key, 'server1', alice, {});
    await updatesOnServer2(deps, key, 1, 1); // bob's, mtime T + 1 s: held for server1
    await putFile(deps, { key, body: Buffer.from("alice's edit"), to: 'server1', mtime: String(T + 5000), who: 'alice' });
    await deliverOne(deps, 'server1');
    expect(await both(key)).toEqual(["alice's edit", "alice's edit"]);
    await unlockFile(deps, key, 'server1', alice, { force: false, discard: false, budgetMs: 60_000 });
    await settle(deps);
    expect(await both(key)).toEqual(["alice's edit", "alice's edit"]);
    expect((await reconcile(deps, { dryRun: true })).entries.filter((e) => e.key === key)).toEqual([]);
  });

});

describe('what a lock cannot hold', () => {
  it('a write straight into the locked bucket, not through dfs: S3 takes it, and its event spreads it as any write', async () => {
    const deps = depsWith();
    const key = 'direct/fileB.txt';
    await seeded(deps, key);
    await lockFile(deps, key, 'server1', alice, {});
    await s3.client.send(new PutObjectCommand({ Bucket: 'server1', Key: key, Body: 'straight in', Metadata: writeMetadata({ id: newWriteId(), madeMs: Date.now(), who: 'carol' }, T + 9000) }));
    await deliverOne(deps, 'server1');
    expect(await both(key)).toEqual(['straight in', 'straight in']);
    await unlockFile(deps, key, 'server1', alice, { force: false, discard: false, budgetMs: 60_000 });
  });
});
