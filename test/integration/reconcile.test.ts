import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { reconcile } from '../../lib/sync';
import { replicateEvent } from '../../lib/replicate';
import { readFile } from '../../lib/read';
import { recordDelete, updateTombstone } from '../../lib/tombstones';
import { formatMtime } from '../../lib/stamps';
import { ConflictError } from '../../lib/errors';
import { createS3Client } from '../../lib/config';
import { loadSeed } from '../../seed/load';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import type { PlanEntry } from '../../lib/types';
import { closedPort, startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { awaitS3rverWrites, backdate, contents, inBatches, readJournal } from '../helpers/events';

const iso = (ms: number) => new Date(ms).toISOString();
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const HOUR = 3600_000;

async function setUp(): Promise<{ s3: LocalS3; stores: Store[]; deps: Deps }> {
  const s3 = await startS3rver(['server1', 'server2', 'control']);
  awaitS3rverWrites(s3); // else a copy right after a PUT may read the file not yet written
  const stores = ['server1', 'server2'].map((name) => ({ name, bucket: name, s3: s3.client }));
  return { s3, stores, deps: makeDeps(stores, { flavor: 's3rver' }) };
}

async function put(s3: LocalS3, bucket: string, key: string, body: string, mtime: number) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime: formatMtime(mtime) } }));
}

/** A tombstone as deleteFile leaves it, dated `when` (its body and its LastModified). */
async function tombstone(s3: LocalS3, deps: Deps, key: string, when: number) {
  await updateTombstone(deps, key, (t) => recordDelete(t, key, when, 'test'));
  await backdate(s3, 'control', `tombstones/${key}`, new Date(when));
}

/*
 * 1,000 names, ten kinds of difference, 100 each. For each name the test knows what a
 * newest-wins store must end up holding (the oracle): the version with the highest
 * (mtime, ETag), unless a tombstone is newer than every surviving write.
 */
type Kind = 'same' | 'same2' | 'newer1' | 'newer2' | 'only1' | 'only2' | 'deleted1' | 'deleted2' | 'recreated2' | 'tie';
const KINDS: Kind[] = ['same', 'same2', 'newer1', 'newer2', 'only1', 'only2', 'deleted1', 'deleted2', 'recreated2', 'tie'];
const N = 1000;

interface Case {
  key: string;
  kind: Kind;
  s1?: { text: string; mtime: number };
  s2?: { text: string; mtime: number };
  /** Names the oracle says survive, with their text. */
  expected?: string;
  /** LastModified of every copy, and the tombstone's time, when the kind has one. */
  tomb?: number;
}

function cases(now: number): Case[] {
  return Array.from({ length: N }, (_, i) => {
    const key = `k${String(i).padStart(4, '0')}.txt`;
    const kind = KINDS[i % KINDS.length]!;
    const m = 1_700_000_000_000 + i * 1000;
    switch (kind) {
      case 'same':
      case 'same2':
        return { key, kind, s1: { text: `same ${i}`, mtime: m }, s2: { text: `same ${i}`, mtime: m }, expected: `same ${i}` };
      case 'newer1':
        return { key, kind, s1: { text: `newer and longer ${i}`, mtime: m + 5000 }, s2: { text: `old ${i}`, mtime: m }, expected: `newer and longer ${i}` };
      case 'newer2':
        return { key, kind, s1: { text: `v1 ${i}`, mtime: m }, s2: { text: `v2 ${i}`, mtime: m + 5000 }, expected: `v2 ${i}` };
      case 'only1':
        return { key, kind, s1: { text: `one ${i}`, mtime: m }, expected: `one ${i}` };
      case 'only2':
        return { key, kind, s2: { text: `two ${i}`, mtime: m }, expected: `two ${i}` };
      case 'deleted1': // deleted through server2's side; server1's old copy was written before the tombstone
        return { key, kind, s1: { text: `stale ${i}`, mtime: m }, tomb: now - HOUR };
      case 'deleted2':
        return { key, kind, s2: { text: `stale ${i}`, mtime: m }, tomb: now - HOUR };
      case 'recreated2': // deleted an hour ago, created again on server2 while server1 was away
        return { key, kind, s2: { text: `reborn ${i}`, mtime: m }, tomb: now - HOUR, expected: `reborn ${i}` };
      case 'tie': {
        const [a, b] = [`tie ${i} a`, `tie ${i} b`];
        return { key, kind, s1: { text: a, mtime: m }, s2: { text: b, mtime: m }, expected: md5(a) > md5(b) ? a : b };
      }
    }
  });
}

describe('reconcile of 1,000 names with every kind of difference', () => {
  let env: Awaited<ReturnType<typeof setUp>>;
  const now = Date.now();
  const all = cases(now);
  const byKey = new Map(all.map((c) => [c.key, c]));

  beforeAll(async () => {
    env = await setUp();
    const { s3, deps } = env;
    await inBatches(all, 50, async (c) => {
      if (c.s1) await put(s3, 'server1', c.key, c.s1.text, c.s1.mtime);
      if (c.s2) await put(s3, 'server2', c.key, c.s2.text, c.s2.mtime);
      if (c.tomb === undefined) return;
      await tombstone(s3, deps, c.key, c.tomb);
      // deleted*: the surviving copy was written before the delete; recreated2: after it.
      const written = c.kind === 'recreated2' ? c.tomb + 10 * 60_000 : c.tomb - HOUR;
      for (const [bucket, copy] of [['server1', c.s1], ['server2', c.s2]] as const) if (copy) await backdate(s3, bucket, c.key, new Date(written));
    });
  }, 120_000);
  afterAll(() => env?.s3.stop());

  const count = (...kinds: Kind[]) => all.filter((c) => kinds.includes(c.kind)).length;

  it('reports in a dry run, with counts and one entry and reason per differing name, and writes nothing', async () => {
    const report = await reconcile(env.deps, { dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.applied).toBeUndefined();
    expect(report.unavailable).toEqual([]);
    expect(report.counts).toEqual({
      match: count('same', 'same2'),
      differ: count('newer1', 'newer2', 'tie'),
      missing: { server1: count('only2', 'deleted2', 'recreated2'), server2: count('only1', 'deleted1') },
      copies: count('newer1', 'newer2', 'tie', 'only1', 'only2', 'recreated2'),
      deletes: count('deleted1', 'deleted2'),
    });
    expect(report.entries.map((e) => e.key)).toEqual(all.filter((c) => !c.kind.startsWith('same')).map((c) => c.key));

    for (const e of report.entries) expect(e).toEqual(expectedEntry(byKey.get(e.key)!));
    expect(await readJournal(env.deps.control)).toEqual([]);
  }, 120_000);

  /** The entry the plan must hold for a case, reason included, in rclone's words. */
  function expectedEntry(c: Case): PlanEntry {
    const { key } = c;
    switch (c.kind) {
      case 'newer1':
        return { key, action: 'copy', from: 'server1', to: ['server2'], reason: `Sizes differ (server1 ${c.s1!.text.length} vs server2 ${c.s2!.text.length}), server1 newer (${iso(c.s1!.mtime)} vs ${iso(c.s2!.mtime)})` };
      case 'newer2':
        return { key, action: 'copy', from: 'server2', to: ['server1'], reason: `server2 newer (${iso(c.s2!.mtime)} vs server1 ${iso(c.s1!.mtime)})` };
      case 'tie': {
        const [from, to] = c.expected === c.s1!.text ? ['server1', 'server2'] : ['server2', 'server1'];
        return { key, action: 'copy', from, to: [to], reason: `${from} newer (${iso(c.s1!.mtime)} vs ${to} ${iso(c.s1!.mtime)})` };
      }
      case 'only1':
        return { key, action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2' };
      case 'only2':
      case 'recreated2':
        return { key, action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1' };
      case 'deleted1':
      case 'deleted2': {
        const from = c.kind === 'deleted1' ? 'server1' : 'server2';
        // The copy was written straight into the bucket and no event stamped it: made is its
        // LastModified (to the second), an hour before the delete.
        const made = Math.floor((c.tomb! - HOUR) / 1000) * 1000;
        return { key, action: 'delete', from: [from], deletedAt: iso(c.tomb!), reason: `${from}'s version was made ${iso(made)}, before the delete at ${iso(c.tomb!)}` };
      }
      default:
        throw new Error(`no entry expected for ${c.kind}`);
    }
  }

  it('applies the plan: both stores identical and equal to the newest-wins oracle, every step journalled', async () => {
    const report = await reconcile(env.deps);
    expect(report.applied).toEqual({ done: 800, failed: [] });
    const [one, two] = await Promise.all(env.stores.map(contents));
    const oracle = new Map(all.filter((c) => c.expected !== undefined).map((c) => [c.key, c.expected!]));
    expect(one).toEqual(oracle);
    expect(two).toEqual(oracle);
    // The winning version's logical mtime travelled with it.
    for (const c of all.filter((x) => x.kind === 'newer2').slice(0, 5)) {
      const h = await env.s3.client.send(new HeadObjectCommand({ Bucket: 'server1', Key: c.key }));
      expect(h.Metadata?.mtime).toBe(formatMtime(c.s2!.mtime));
    }
    const journal = await readJournal(env.deps.control);
    expect(journal.filter((e) => e.action === 'reconcile')).toHaveLength(report.counts.copies + report.counts.deletes);
  }, 240_000);

  it('then finds nothing to do', async () => {
    const report = await reconcile(env.deps, { dryRun: true });
    expect(report.entries).toEqual([]);
    expect(report.counts).toEqual({ match: 800, differ: 0, missing: { server1: 0, server2: 0 }, copies: 0, deletes: 0 });
  }, 120_000);
});

describe('reconcile guards', () => {
  let env: Awaited<ReturnType<typeof setUp>>;
  beforeEach(async () => {
    env = await setUp();
  });
  afterEach(() => env?.s3.stop());

  it('refuses to fill a completely empty store unless forced', async () => {
    await put(env.s3, 'server1', 'a.txt', 'a', 1);
    await put(env.s3, 'server1', 'b.txt', 'b', 1);
    await expect(reconcile(env.deps)).rejects.toThrow(ConflictError);
    await expect(reconcile(env.deps, { dryRun: true })).rejects.toThrow('server2 is completely empty while other stores are not');
    expect((await contents(env.stores[1]!)).size).toBe(0);

    expect((await reconcile(env.deps, { force: true })).applied).toEqual({ done: 2, failed: [] });
    expect(await contents(env.stores[1]!)).toEqual(new Map([['a.txt', 'a'], ['b.txt', 'b']]));
  });

  it('refuses a plan deleting more than half of a store unless forced', async () => {
    const now = Date.now();
    for (const k of ['a', 'b', 'c', 'd']) {
      await put(env.s3, 'server1', `${k}.txt`, k, 1);
      await backdate(env.s3, 'server1', `${k}.txt`, new Date(now - 2 * HOUR));
    }
    await put(env.s3, 'server2', 'd.txt', 'd', 1);
    for (const k of ['a', 'b', 'c']) await tombstone(env.s3, env.deps, `${k}.txt`, now - HOUR);

    await expect(reconcile(env.deps)).rejects.toThrow('the plan deletes 3 of 4 objects on server1 (over 50 %): refusing; use force');
    await expect(reconcile(env.deps, { dryRun: true })).rejects.toThrow(ConflictError);
    expect((await contents(env.stores[0]!)).size).toBe(4);

    const forced = await reconcile(env.deps, { force: true });
    expect(forced.counts.deletes).toBe(3);
    expect(await contents(env.stores[0]!)).toEqual(new Map([['d.txt', 'd']]));
  });

  it('refuses to run with a store down unless forced, then reconciles the others', async () => {
    const down = { name: 'server3', bucket: 'server3', s3: createS3Client({ endpoint: `http://127.0.0.1:${await closedPort()}` }) };
    try {
      const deps = makeDeps([...env.stores, down], { flavor: 's3rver' });
      await put(env.s3, 'server1', 'a.txt', 'a', 1);
      await expect(reconcile(deps)).rejects.toThrow(ConflictError);
      await expect(reconcile(deps, { dryRun: true })).rejects.toThrow('server3 unavailable');
      expect((await contents(env.stores[1]!)).size).toBe(0);

      const forced = await reconcile(deps, { force: true });
      expect(forced.unavailable).toEqual(['server3']);
      expect(forced.entries).toEqual([{ key: 'a.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2' }]);
      expect(await contents(env.stores[1]!)).toEqual(new Map([['a.txt', 'a']]));
    } finally {
      down.s3.destroy();
    }
  });
});

describe('reconcile of the seed (DESIGN.md "Sample data")', () => {
  let env: Awaited<ReturnType<typeof setUp>>;
  beforeAll(async () => {
    env = await setUp();
    await loadSeed(env.stores);
  });
  afterAll(() => env?.s3.stop());

  it('lists fileB (server2 newer by its mtime) and fileC (only on server2) in a dry run', async () => {
    const report = await reconcile(env.deps, { dryRun: true });
    expect(report.entries).toEqual([
      { key: 'fileB.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'Sizes differ (server2 50 vs server1 28), server2 newer (2024-01-15T10:00:00.000Z vs 2024-01-15T09:00:00.000Z)' },
      { key: 'fileC.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1' },
    ]);
    expect(report.counts).toEqual({ match: 1, differ: 1, missing: { server1: 1, server2: 0 }, copies: 2, deletes: 0 });
  });

  it('fixes both, after which fileB reads SINGLE with server2 text', async () => {
    expect((await reconcile(env.deps)).applied).toEqual({ done: 2, failed: [] });
    const b = await readFile(env.deps, 'fileB.txt');
    expect(b).toMatchObject({ status: 'SINGLE', copies: [{ store: 'server1' }, { store: 'server2' }] });
    if (b.status !== 'SINGLE' || !b.content || !('base64' in b.content)) throw new Error('expected SINGLE with inline content');
    expect(Buffer.from(b.content.base64, 'base64').toString()).toBe('This is version 2 of file B, which is more recent.');
    expect(await readFile(env.deps, 'fileC.txt')).toMatchObject({ status: 'SINGLE', copies: [{ store: 'server1' }, { store: 'server2' }] });
    expect((await reconcile(env.deps, { dryRun: true })).entries).toEqual([]);
  });
});

describe('reconcile after a delete whose event was handled late', () => {
  let env: Awaited<ReturnType<typeof setUp>>;
  beforeAll(async () => {
    env = await setUp();
  });
  afterAll(() => env?.s3.stop());

  it('keeps a write made after the delete, as replication decided, instead of deleting it', async () => {
    const now = Date.now();
    // 10:00 both stores hold v1; 10:55 a user deletes it on server1; 10:58 someone writes v2 on
    // server2; 11:00 the delete's event is handled: replication keeps v2 (written after the delete).
    for (const b of ['server1', 'server2']) {
      await put(env.s3, b, 'late.txt', 'v1', now - HOUR);
      await backdate(env.s3, b, 'late.txt', new Date(now - HOUR));
    }
    await env.s3.client.send(new DeleteObjectCommand({ Bucket: 'server1', Key: 'late.txt' }));
    await put(env.s3, 'server2', 'late.txt', 'v2, written after the delete', now - 2 * 60_000);
    await backdate(env.s3, 'server2', 'late.txt', new Date(now - 2 * 60_000));
    const kept = await replicateEvent(env.deps, { store: env.stores[0]!, key: 'late.txt', kind: 'removed', time: now - 5 * 60_000, seq: '0A' });
    expect(kept).toMatchObject({ deleted: [], deleteKind: 'real' });

    // Reconcile must agree: the write came after the delete, so it is copied back, not deleted.
    const report = await reconcile(env.deps, { dryRun: true, force: true });
    expect(report.entries).toEqual([{ key: 'late.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1' }]);
  });
});
