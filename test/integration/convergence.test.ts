import { createHash } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
// What handlers/replicate.ts runs for each notification, with the deps injected.
import { replicateNotification as handleS3Event } from '../../lib/replicate';
import { reconcile } from '../../lib/sync';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';
import type { JournalEvent } from '../../lib/types';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';
import { awaitS3rverWrites, contents, emulateS3Atomicity, EventTap, readJournal, waitFor } from '../helpers/events';

/*
 * Replication as it runs deployed: s3rver's event emitter plays S3 → Lambda. Every event is
 * handled at once and unawaited (Lambdas run in parallel); an invocation that throws is invoked
 * again up to twice, as Lambda retries asynchronous invocations; what still fails is collected.
 * 200 random operations over both stores and 20 names, so that they collide, are issued by 8
 * users at once; then we wait until no handler runs and nothing has happened for a while, and
 * compare the stores with each other and with what newest-wins allows.
 *
 * s3rver is made to honour S3's conditional writes and atomic objects (emulateS3Atomicity) and to
 * answer a PUT once its bytes are written (awaitS3rverWrites), which the replication protocol relies
 * on and s3rver lacks. CONVERGENCE_PLAIN=1 adds a run on s3rver as it is, reported only (lost
 * updates, extra copies and empty replicas are expected there).
 * CONVERGENCE_SEED replays a workload; CONVERGENCE_DEBUG=1 (or =f3.txt,…) prints the timelines of the
 * names the oracle faults (and of those named).
 *
 * The oracle, per name, from the order in which s3rver applied the users' operations:
 * - the result is one of the users' writes, or nothing, and both stores agree;
 * - it is at least as new, by (mtime, ETag), as the last user write on each store since the last
 *   delete that removed something: a version is only ever replaced by a newer one. It may be
 *   newer still: a version its own store's next write replaced survives if it had been copied.
 * - a write that S3 dated a full second after the last delete is there (S3 dates writes to the
 *   second: within the same second, "before" and "after" the delete cannot be told apart).
 */

const OPS = 200;
const USERS = 8;
const QUIET_MS = 300;
const LAMBDA_ATTEMPTS = 3;
const SEED = Number(process.env.CONVERGENCE_SEED ?? 20260102);

/** mulberry32: a small seeded PRNG, so that a run can be replayed. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Op {
  i: number;
  kind: 'write' | 'delete';
  store: string;
  key: string;
  mtime?: number;
  text?: string;
  etag?: string;
  /** Order in which s3rver applied it (its event), and the event's time; unset for a delete that found nothing. */
  seq?: number;
  applied?: number;
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');
/** (mtime, ETag) order, as replication and reconcile decide. */
const newer = (a: Op, b: Op) => (a.mtime !== b.mtime ? a.mtime! > b.mtime! : a.etag! > b.etag!);
const newest = (ws: Op[]) => ws.reduce((a, b) => (newer(b, a) ? b : a));
/** Names f0..f9 are only ever written; f10..f19 are also deleted, when there are deletes. */
const deletable = (key: string) => Number(key.slice(1, -4)) >= 10;

function workload(seed: number, deleteShare: number): Op[] {
  const rnd = random(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const names = Array.from({ length: 20 }, (_, i) => `f${i}.txt`);
  return Array.from({ length: OPS }, (_, i): Op => {
    const key = pick(names);
    const store = pick(['server1', 'server2']);
    if (deletable(key) && rnd() < deleteShare) return { i, kind: 'delete', store, key };
    // Few distinct mtimes, so that equal-mtime ties (decided by ETag) happen too.
    const mtime = 1_700_000_000_000 + Math.floor(rnd() * 20) * 1000;
    const text = `${key} by op ${i} on ${store}, mtime ${mtime}`;
    return { i, kind: 'write', store, key, mtime, text, etag: md5(text) };
  });
}

interface Run {
  ops: Op[];
  events: { seq: number; time: string; name: string; bucket: string; key: string; etag?: string }[];
  /** Invocations that threw and were invoked again, and those that failed every attempt. */
  retried: number;
  failed: { event: string; error: string }[];
  handled: number;
  ms: number;
  stores: Store[];
  deps: Deps;
  /** Stops feeding events to handlers and waits for those running to finish. */
  stop(): Promise<void>;
}

/** Issues the workload with replication running, and waits until all is quiet. */
async function run(s3: LocalS3, ops: Op[], started: (r: Run) => void): Promise<Run> {
  const stores = ['server1', 'server2'].map((name) => ({ name, bucket: name, s3: s3.client }));
  const deps = makeDeps(stores, { flavor: 's3rver' });
  const tap = new EventTap(s3);
  let running = 0;
  let stopped = false;
  let lastActivity = Date.now();
  const r: Run = {
    ops, events: [], retried: 0, failed: [], handled: 0, ms: 0, stores, deps,
    stop: async () => {
      stopped = true;
      await waitFor('running handlers to finish', () => running === 0, 30_000);
    },
  };

  started(r);

  const invoke = (e: Parameters<typeof handleS3Event>[1], name: string, attempt = 1) => {
    if (stopped) return;
    running++;
    handleS3Event(deps, e)
      .catch((err: Error) => {
        if (attempt < LAMBDA_ATTEMPTS) {
          r.retried++;
          invoke(e, name, attempt + 1);
        } else r.failed.push({ event: name, error: err.message });
      })
      .finally(() => {
        running--;
        r.handled++;
        lastActivity = Date.now();
      });
  };

  // A user's own event is emitted while that user's request is in flight.
  const pending = new Map<string, Op>();
  const tag = (store: string, key: string, what: string) => `${store}/${key}/${what}`;
  tap.onEvent((e) => {
    const rec = e.Records[0]!;
    const bucket = rec.s3.bucket.name;
    if (!['server1', 'server2'].includes(bucket)) return; // the control bucket
    const seq = r.events.length + 1;
    lastActivity = Date.now();
    r.events.push({ seq, time: rec.eventTime, name: rec.eventName, bucket, key: rec.s3.object.key, etag: rec.s3.object.eTag });
    const mine = pending.get(tag(bucket, rec.s3.object.key, rec.eventName.startsWith('ObjectRemoved') ? 'delete' : String(rec.s3.object.eTag)));
    if (mine && mine.seq === undefined && rec.eventName !== 'ObjectCreated:Copy') [mine.seq, mine.applied] = [seq, Date.parse(rec.eventTime)];
    invoke(e, `${rec.eventName} ${bucket}/${rec.s3.object.key}`);
  });

  // Each user takes the next operation as soon as its last one is answered: concurrent with
  // each other and with replication, and spread over the whole run.
  const t0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: USERS }, async () => {
      for (let op = ops[next++]; op; op = ops[next++]) {
        pending.set(tag(op.store, op.key, op.kind === 'delete' ? 'delete' : op.etag!), op);
        await s3.client.send(
          op.kind === 'write'
            ? new PutObjectCommand({ Bucket: op.store, Key: op.key, Body: op.text, Metadata: { mtime: String(op.mtime) } })
            : new DeleteObjectCommand({ Bucket: op.store, Key: op.key }),
        );
      }
    }),
  );
  await waitFor('replication to go quiet', () => running === 0 && Date.now() - lastActivity >= QUIET_MS, 120_000);
  r.ms = Date.now() - t0;
  return r;
}

interface Verdict {
  key: string;
  problem: string;
  got: string | null;
  expected?: string;
}

/** Checks what a store holds against the oracle above; answers what is wrong, per name. */
function judge(ops: Op[], held: Map<string, string>, keys: string[]): Verdict[] {
  const wrong: Verdict[] = [];
  for (const key of keys) {
    const history = ops.filter((o) => o.key === key && o.seq !== undefined).sort((a, b) => a.seq! - b.seq!);
    const got = held.get(key) ?? null;
    const lastDelete = [...history].reverse().find((o) => o.kind === 'delete');
    const after = history.filter((o) => o.kind === 'write' && (!lastDelete || o.seq! > lastDelete.seq!));
    const lasts = ['server1', 'server2'].flatMap((s) => after.filter((o) => o.store === s).slice(-1));
    const floor = lasts.length > 0 ? newest(lasts) : undefined;
    const sure = after.filter((o) => !lastDelete || o.applied! >= lastDelete.applied! + 1000);
    const version = history.find((o) => o.text === got);
    if (got !== null && !version) wrong.push({ key, problem: 'not a user write', got });
    else if (got === null && sure.length > 0) wrong.push({ key, problem: 'deleted, though written a second after the last delete', got, expected: newest(sure).text });
    else if (got !== null && floor && newer(floor, version!)) wrong.push({ key, problem: 'older than a surviving write (lost update)', got, expected: floor.text });
    else if (got !== null && lastDelete && version!.seq! < lastDelete.seq!) wrong.push({ key, problem: 'written before the last delete, yet here (resurrected)', got });
  }
  return wrong;
}

/** Names whose stores differ, with what each holds. */
function differences(one: Map<string, string>, two: Map<string, string>) {
  return [...new Set([...one.keys(), ...two.keys()])]
    .filter((k) => one.get(k) !== two.get(k))
    .sort()
    .map((k) => ({ key: k, server1: one.get(k) ?? null, server2: two.get(k) ?? null }));
}

const names = (ops: Op[], which: (key: string) => boolean) => [...new Set(ops.map((o) => o.key))].filter(which).sort();

/** Names whose journal shows more copies than the users wrote to them: the N-1 bound broken. */
function overCopied(ops: Op[], journal: JournalEvent[]) {
  return names(ops, () => true)
    .map((key) => ({
      key,
      copies: journal.filter((e) => e.action === 'replicate' && e.key === key).length,
      writes: ops.filter((o) => o.kind === 'write' && o.key === key).length,
    }))
    .filter((x) => x.copies > x.writes);
}

function timeline(r: Run, journal: JournalEvent[], key: string): string {
  const lines = [
    ...r.ops.filter((o) => o.key === key).map((o) => ({ t: o.applied ?? 0, what: `USER ${o.kind} op${o.i} on ${o.store}${o.kind === 'write' ? ` mtime …${o.mtime! % 100000} etag ${o.etag!.slice(0, 6)}` : ''}${o.seq ? '' : ' (found nothing)'}` })),
    ...r.events.filter((e) => e.key === key).map((e) => ({ t: Date.parse(e.time), what: `  event #${e.seq} ${e.name} ${e.bucket} ${e.etag?.slice(0, 6) ?? ''}` })),
    ...journal.filter((e) => e.key === key).map((e) => ({ t: Date.parse(e.time), what: `    journal ${e.action} ${e.from ?? ''}→${e.to?.join() ?? ''} ${e.reason ?? ''}` })),
  ].sort((a, b) => a.t - b.t);
  return `${key}\n${lines.map((l) => `${new Date(l.t).toISOString().slice(17)} ${l.what}`).join('\n')}`;
}

/** One scenario: start s3rver, run the workload, snapshot the stores and the journal. */
function scenario(likeS3: boolean, deleteShare: number) {
  const ctx = {} as { s3: LocalS3; r: Run; one: Map<string, string>; two: Map<string, string>; journal: JournalEvent[] };
  beforeAll(async () => {
    ctx.s3 = await startS3rver(['server1', 'server2', 'control']);
    if (likeS3) {
      awaitS3rverWrites(ctx.s3);
      emulateS3Atomicity(ctx.s3);
    }
    await run(ctx.s3, workload(SEED, deleteShare), (r) => (ctx.r = r));
    [ctx.one, ctx.two] = (await Promise.all(ctx.r.stores.map(contents))) as [Map<string, string>, Map<string, string>];
    ctx.journal = await readJournal(ctx.r.deps.control);
  }, 150_000);
  afterAll(async () => {
    if (ctx.journal) {
      const { r, journal } = ctx;
      const by = (a: string) => journal.filter((e) => e.action === a).length;
      const report = {
        run: `${likeS3 ? 'like S3' : 's3rver as is'}, ${deleteShare ? 'writes and deletes' : 'writes only'}`,
        seed: SEED,
        writes: r.ops.filter((o) => o.kind === 'write').length,
        deletes: r.ops.filter((o) => o.kind === 'delete').length,
        deletesThatRemoved: r.ops.filter((o) => o.kind === 'delete' && o.seq !== undefined).length,
        events: r.events.length,
        invocations: r.handled,
        lambdaRetries: r.retried,
        failed: r.failed.length,
        journal: { replicate: by('replicate'), delete: by('delete'), conflict: by('conflict'), skip: by('skip') },
        msUntilQuiet: r.ms,
        divergedBeforeReconcile: differences(ctx.one, ctx.two),
        oracle: judge(r.ops, ctx.one, names(r.ops, () => true)),
        overCopied: overCopied(r.ops, journal),
      };
      // eslint-disable-next-line no-console
      console.log(JSON.stringify(report, null, 1));
      const debug = process.env.CONVERGENCE_DEBUG;
      const asked = debug ? [...debug.split(',').filter((k) => k.endsWith('.txt')), ...report.oracle.map((w) => w.key)] : [];
      for (const key of new Set(asked)) {
        // eslint-disable-next-line no-console
        console.log(timeline(r, journal, key));
      }
    }
    await ctx.r?.stop();
    await ctx.s3?.stop();
  });
  return ctx;
}

describe('convergence of 200 concurrent writes on two stores, by replication alone', () => {
  const ctx = scenario(true, 0);

  it('handles every event, some after a Lambda retry', () => {
    expect(ctx.r.failed).toEqual([]);
    expect(ctx.r.ops.filter((o) => o.seq === undefined)).toEqual([]);
  });

  it('leaves both stores identical', () => {
    expect(differences(ctx.one, ctx.two)).toEqual([]);
  });

  it('leaves on every name the newest version that survived, never an older one', () => {
    expect(judge(ctx.r.ops, ctx.one, names(ctx.r.ops, () => true))).toEqual([]);
  });

  it('makes at most one copy (N-1) per user write', () => {
    expect(overCopied(ctx.r.ops, ctx.journal)).toEqual([]);
  });

  it('agrees with reconcile: a dry run finds nothing to do', async () => {
    expect((await reconcile(ctx.r.deps, { dryRun: true, force: true })).entries).toEqual([]);
  });
});

describe('convergence of 200 concurrent writes and deletes on two stores', () => {
  const ctx = scenario(true, 0.4);

  it('goes quiet, and handles every event, some after a Lambda retry', () => {
    expect(ctx.r.failed).toEqual([]);
  });

  it('makes at most one copy (N-1) per user write: deletes and copies do not chase each other', () => {
    expect(overCopied(ctx.r.ops, ctx.journal)).toEqual([]);
  });

  it('leaves the names that were only written to identical and newest-wins', () => {
    const writtenOnly = names(ctx.r.ops, (k) => !deletable(k));
    expect(differences(ctx.one, ctx.two).filter((d) => writtenOnly.includes(d.key))).toEqual([]);
    expect(judge(ctx.r.ops, ctx.one, writtenOnly)).toEqual([]);
  });

  // Replication alone may leave delete-vs-write races differently decided on the two stores
  // (the report printed after this block says which); reconcile is the anti-entropy pass for that.
  it('leaves both stores identical after one reconcile, which then finds nothing more to do', async () => {
    await reconcile(ctx.r.deps, { force: true });
    const [one, two] = (await Promise.all(ctx.r.stores.map(contents))) as [Map<string, string>, Map<string, string>];
    expect(differences(one, two)).toEqual([]);
    expect((await reconcile(ctx.r.deps, { dryRun: true, force: true })).entries).toEqual([]);
    for (const [key, text] of one) expect({ key, userWrite: ctx.r.ops.some((o) => o.text === text) }).toEqual({ key, userWrite: true });
  });
});

(process.env.CONVERGENCE_PLAIN ? describe : describe.skip)('diagnostic: the same on s3rver as it is, reported only', () => {
  const ctx = scenario(false, 0.4);
  it('goes quiet', () => {
    expect(ctx.r.ms).toBeGreaterThan(0);
  });
});
