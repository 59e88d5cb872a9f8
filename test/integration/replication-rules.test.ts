import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { replicateNotification } from '../../lib/replicate';
import { reconcile } from '../../lib/sync';
import { deleteFile } from '../../lib/delete';
import { putFile } from '../../lib/upload';
import { recordDelete, updateTombstone } from '../../lib/tombstones';
import { formatMtime, META, newWriteId, writeMetadata } from '../../lib/stamps';
import { BadRequestError, OverruledError } from '../../lib/errors';
import { createS3Client } from '../../lib/config';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import type { FailureQueue } from '../../lib/failures';
import { closedPort, startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { backdate, EventTap, readJournal, type S3Notification } from '../helpers/events';

/*
 * The rules of README "How it behaves", one named scenario each: the eight ways they were
 * broken before (issue "Replication you can trust") and the ones the delivery-fault harness
 * found since. Each runs on an S3-like s3rver with the test delivering S3's events in the order
 * the scenario needs, and asserts what every store holds in the end.
 */

let s3: LocalS3;
let tap: EventTap;
const BUCKETS = ['server1', 'server2', 'server3'];
const T = Date.UTC(2026, 5, 1, 12);

beforeAll(async () => {
  s3 = await startS3rver([...BUCKETS, 'control']);
  tap = new EventTap(s3);
});
afterAll(() => s3?.stop());

/** Each scenario on its own keys; `n` stores. */
function world(n = 2, over: Partial<Deps> = {}) {
  const stores: Store[] = BUCKETS.slice(0, n).map((name) => ({ name, bucket: name, s3: s3.client }));
  const deps = makeDeps(stores, { flavor: 's3rver', ...over });
  const deliver = async (...ns: S3Notification[]) => {
    for (const e of ns) await replicateNotification(deps, e, { pause: async () => undefined });
  };
  /** Delivers every event there is, and those they cause, until none is left. */
  const drain = async () => {
    for (let round = 0; round < 20; round++) {
      const pending = tap.take(stores.map((s) => s.bucket));
      if (pending.length === 0) return;
      await deliver(...pending);
    }
    throw new Error('replication does not settle');
  };
  return { stores, deps, deliver, drain };
}

async function text(bucket: string, key: string): Promise<string | null> {
  try {
    const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await res.Body!.transformToString();
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return null;
    throw err;
  }
}
const held = async (key: string, n = 2) => Promise.all(BUCKETS.slice(0, n).map((b) => text(b, key)));

/** A write as the API makes it, straight into one bucket; returns its event. */
async function apiWrite(bucket: string, key: string, body: string, mtime: number, made = Date.now()) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: writeMetadata({ id: newWriteId(), madeMs: made, who: 'ann' }, mtime) }));
  return tap.takeOne(bucket);
}
async function directWrite(bucket: string, key: string, body: string, metadata: Record<string, string> = {}) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
  return tap.takeOne(bucket);
}
async function directDelete(bucket: string, key: string) {
  await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  return tap.takeOne(bucket);
}
const later = () => new Promise((r) => setTimeout(r, 5)); // the next write is made after this one

beforeEach(() => tap.take());

describe('the eight ways the rules were broken', () => {
  it('1. a delete is not undone by an earlier write whose event is handled first', async () => {
    const w = world();
    await w.deliver(await apiWrite('server1', 'r1.txt', 'v0', T));
    await w.drain();
    const v1 = await apiWrite('server1', 'r1.txt', 'v1', T + 1000);
    await later();
    const removed = await directDelete('server2', 'r1.txt'); // server2 still held v0
    await w.deliver(v1); // copies v1 to server2, after the delete
    expect(await held('r1.txt')).toEqual(['v1', 'v1']);
    await w.deliver(removed);
    await w.drain();
    expect(await held('r1.txt')).toEqual([null, null]);
    expect((await reconcile(w.deps, { dryRun: true })).entries).toEqual([]);
  });

  it("2. reconcile judges a copy by when the write it holds was made, not by the copy's LastModified", async () => {
    const w = world();
    const made = Date.now() - 60_000;
    const meta = writeMetadata({ id: 'r2-write', madeMs: made, who: 'ann' }, T);
    await s3.client.send(new PutObjectCommand({ Bucket: 'server1', Key: 'r2.txt', Body: 'deleted', Metadata: meta }));
    await s3.client.send(new PutObjectCommand({ Bucket: 'server2', Key: 'r2.txt', Body: 'deleted', Metadata: { ...meta, [META.replicaOf]: 'server1' } }));
    // The copy was made 5 s after a delete that its event had not reached yet.
    await updateTombstone(w.deps, 'r2.txt', (t) => recordDelete(t, 'r2.txt', made + 2000, 'bob'));
    await backdate(s3, 'server2', 'r2.txt', new Date(made + 5000));
    tap.take();
    await reconcile(w.deps, { force: true });
    await w.drain();
    expect(await held('r2.txt')).toEqual([null, null]);
  });

  it("3. a user's delete soon after replication's own delete on the same store is a delete, not an echo", async () => {
    const w = world();
    await w.deliver(await apiWrite('server1', 'r3.txt', 'first', T, Date.now() - 1000));
    await w.drain();
    await w.deliver(await directDelete('server1', 'r3.txt')); // replication deletes server2's copy
    await w.drain(); // its echo
    await w.deliver(await directWrite('server2', 'r3.txt', 'again')); // created anew, copied to server1
    await w.drain();
    expect(await held('r3.txt')).toEqual(['again', 'again']);
    await w.deliver(await directDelete('server2', 'r3.txt')); // within a second of the echo
    await w.drain();
    expect(await held('r3.txt')).toEqual([null, null]);
  });

  it('4. a retried delete event does not turn its echo into a delete that takes a later write', async () => {
    const w = world();
    await w.deliver(await apiWrite('server1', 'r4.txt', 'old', T, Date.now() - 1000));
    await w.drain();
    const removed = await directDelete('server1', 'r4.txt');
    await w.deliver(removed);
    const echo = tap.takeOne('server2');
    await later();
    const rewrite = await apiWrite('server2', 'r4.txt', 'written after the delete', T - 5000);
    await w.deliver(removed, removed); // Lambda retries, S3 delivers twice
    await w.deliver(echo, rewrite);
    await w.drain();
    expect(await held('r4.txt')).toEqual(['written after the delete', 'written after the delete']);
  });

  it('5. a store that was down when a file was deleted does not bring its old copy back over a new upload', async () => {
    const base = world();
    await base.deliver(await apiWrite('server1', 'r5.txt', 'before the delete', T + 9000, Date.now() - 1000));
    await base.drain();
    // server2 is down: the delete tombstones the key and removes server1's copy only.
    const down: Store = { name: 'server2', bucket: 'server2', s3: createS3Client({ endpoint: `http://127.0.0.1:${await closedPort()}` }) };
    const halfDeps = makeDeps([base.stores[0]!, down], { flavor: 's3rver' });
    const a = await deleteFile(halfDeps, 'r5.txt', 'ann');
    expect(a.results).toEqual([{ store: 'server1', ok: true }, expect.objectContaining({ store: 'server2', ok: false })]);
    tap.take();
    // The user uploads it again, an older file, to server1 only, while server2 is still away.
    await later();
    await putFile(halfDeps, { key: 'r5.txt', body: Buffer.from('uploaded again'), to: 'server1', mtime: String(T) });
    const upload = tap.takeOne('server1');
    // server2 is back: the upload's own event (retried by Lambda) and reconcile both settle it.
    await base.deliver(upload);
    await base.drain();
    expect(await held('r5.txt')).toEqual(['uploaded again', 'uploaded again']);
    await reconcile(base.deps, {});
    expect(await held('r5.txt')).toEqual(['uploaded again', 'uploaded again']);
  });

  describe('6. clocks', () => {
    it('refuses an x-dfs-mtime in the year 2100, past what a date holds, or in hex, before writing anything', async () => {
      const w = world();
      const now = Date.now();
      for (const mtime of [String(Date.UTC(2100, 0, 1)), '8640000000000001', '0x10', '1e12', '-5']) {
        await expect(putFile(w.deps, { key: 'r6a.txt', body: Buffer.from('x'), mtime, now })).rejects.toBeInstanceOf(BadRequestError);
      }
      expect(await held('r6a.txt')).toEqual([null, null]);
      expect(tap.take()).toEqual([]);
    });

    it('clamps a far-future mtime written straight into a bucket to when it was made, and says so', async () => {
      const w = world();
      const event = await directWrite('server1', 'r6b.txt', 'from the future', { mtime: formatMtime(Date.UTC(2100, 0, 1)) });
      await w.deliver(event);
      const head = await s3.client.send(new GetObjectCommand({ Bucket: 'server2', Key: 'r6b.txt' }));
      expect(head.Metadata?.mtime).toBeUndefined(); // dated by dfs-made, the event's time
      expect(head.Metadata?.[META.made]).toBe(String(Date.parse(event.Records[0]!.eventTime)));
      const journal = await readJournal(w.deps.control);
      expect(journal.find((e) => e.key === 'r6b.txt' && e.action === 'adopt')?.reason).toMatch(/more than 5 minutes ahead, clamped/);
    });

    it('lets a plain write made 400 ms after a dfs write in the same second win, by its event time', async () => {
      const w = world();
      const now = Date.now();
      await putFile(w.deps, { key: 'r6c.txt', body: Buffer.from('dfs, touched'), to: 'server1', touch: true, now });
      const dfs = tap.takeOne('server1');
      await new Promise((r) => setTimeout(r, 400));
      const plain = await directWrite('server2', 'r6c.txt', 'plain, 400 ms later');
      await w.deliver(plain, dfs);
      await w.drain();
      expect(await held('r6c.txt')).toEqual(['plain, 400 ms later', 'plain, 400 ms later']);
    });
  });

  it('8. an upload to one store that replication would revert is refused, and --touch makes it the newest', async () => {
    const w = world();
    await w.deliver(await apiWrite('server2', 'r8.txt', 'newer on server2', T + 60_000));
    await w.drain();
    const err = await putFile(w.deps, { key: 'r8.txt', body: Buffer.from('older file'), to: 'server1', mtime: String(T) }).catch((e) => e);
    expect(err).toBeInstanceOf(OverruledError);
    expect((err as OverruledError).newer).toEqual({ store: 'server2', mtime: new Date(T + 60_000).toISOString() });
    expect(tap.take()).toEqual([]); // nothing written
    await putFile(w.deps, { key: 'r8.txt', body: Buffer.from('older file, touched'), to: 'server1', mtime: String(T), touch: true });
    await w.drain();
    expect(await held('r8.txt')).toEqual(['older file, touched', 'older file, touched']);
  });
});

describe('scenarios the delivery-fault harness found', () => {
  it('a late copy event does not date the version that replaced its copy (it carries another ETag)', async () => {
    const w = world();
    await w.deliver(await apiWrite('server2', 'h1.txt', 'old', T, Date.now() - 60_000));
    const lateCopyEvent = tap.takeOne('server1');
    // A delete after that copy was made, and then a new write: the copy's late event must not
    // date the new write by its own (earlier) time, which would put it before the delete.
    await later();
    await updateTombstone(w.deps, 'h1.txt', (t) => recordDelete(t, 'h1.txt', Date.now(), 'bob'));
    await later();
    const rewrite = await directWrite('server1', 'h1.txt', 'written now, straight into server1');
    await w.deliver(lateCopyEvent); // must not stamp the new bytes with its old time
    await w.deliver(rewrite);
    await w.drain();
    expect(await held('h1.txt')).toEqual(['written now, straight into server1', 'written now, straight into server1']);
  });

  it('keeps a write replaced by an older-made newer-mtime version, and brings it back when a late delete kills that one', async () => {
    const w = world(3);
    const t1 = Date.now() - 3000;
    const v = await apiWrite('server1', 'h2.txt', 'V: mtime 100, made first', T + 100_000, t1);
    await w.deliver(v);
    await w.drain();
    // A user deletes it on server3 at t2; that event is late. Then W is made on server2 at t3.
    const removed = await directDelete('server3', 'h2.txt');
    await later();
    const wEvent = await apiWrite('server2', 'h2.txt', 'W: mtime 50, made after the delete', T + 50_000);
    await w.deliver(wEvent); // V is newer by mtime: W is kept aside, V copied over it
    expect(await text('server2', 'h2.txt')).toBe('V: mtime 100, made first');
    await w.deliver(removed); // V was made before the delete: dead; W was made after: it wins
    await w.drain();
    expect(await held('h2.txt', 3)).toEqual(Array(3).fill('W: mtime 50, made after the delete'));
  });

  it('replays a delete whose event failed every retry before reconcile plans, so the file is not copied back', async () => {
    const queue: FailureQueue & { items: Map<string, unknown> } = {
      items: new Map(),
      receive: async (max) => [...queue.items].slice(0, max).map(([id, notification]) => ({ id, notification })),
      remove: async (id) => void queue.items.delete(id),
    };
    const w = world(2, { failures: queue });
    await w.deliver(await apiWrite('server1', 'h3.txt', 'deleted, its event lost', T, Date.now() - 1000));
    await w.drain();
    queue.items.set('1', await directDelete('server1', 'h3.txt'));
    const dry = await reconcile(w.deps, { dryRun: true });
    expect(dry.entries.filter((e) => e.key === 'h3.txt')).toEqual([expect.objectContaining({ action: 'copy' })]); // a dry run replays nothing
    const report = await reconcile(w.deps, {});
    expect(report.replayed).toEqual({ replayed: 1, failed: 0 });
    await w.drain();
    expect(await held('h3.txt')).toEqual([null, null]);
    expect(queue.items.size).toBe(0);
  });
});
