import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { completeUpload, putFile, startUpload } from '../../lib/upload';
import { deleteFile } from '../../lib/delete';
import { readFile } from '../../lib/read';
import { lockFile, unlockFile } from '../../lib/locking';
import { formatMtime, MAX_FUTURE_MS, parseMtime } from '../../lib/stamps';
import type { S3Notification } from '../helpers/events';
import type { Invocation, Random, World } from './world';

/*
 * Users at work: several at once, each taking its next operation as soon as the last one is
 * answered. API writes (to every store or one, some touched), writes straight into one bucket
 * (no metadata, rclone's mtime, a far-future mtime, our old millisecond mtime), API deletes,
 * deletes straight in one bucket, multipart uploads through the API that stay open while other
 * operations happen (so some complete after a delete), reads, and locks of a name at one store
 * and their unlocks (mostly by the holder, now and then forced by another user). Few names and
 * few mtimes, so operations collide and mtimes tie.
 *
 * The history records what really happened, from S3's own events: which version each store
 * held in what order (S3 applied it), when each write was made on the system's clocks, and
 * when each delete happened. The oracle judges the end state against it.
 */

/** One version a user put on one store, as S3 applied it. */
export interface Version {
  key: string;
  store: string;
  text: string;
  etag: string;
  /** The mtime replication must order it by (clamped as the system clamps it). */
  mtime: number;
  /** When it entered the system: the API's stamp, or the S3 event's time. */
  made: number;
  /** Position among every user event the stores emitted. */
  order: number;
  op: number;
}

export interface DeleteRecord {
  key: string;
  time: number;
  by: string;
  op: number;
}

export interface OpRecord {
  i: number;
  user: number;
  kind: string;
  key: string;
  what: string;
  /** The store a lock or unlock is about. */
  store?: string;
  outcome?: string;
  startedAt: number;
}

/** A lock a user held on one name at one store, by the position of the stores' events. */
export interface LockSpan {
  key: string;
  store: string;
  holder: number;
  op: number;
  /** The lock's own `since`: a renewal by its holder keeps it, a new lock has its own. */
  since: string;
  /** Events before this one came before the lock was taken (events.length when lockFile answered). */
  from: number;
  /** When lockFile answered. */
  takenAt: number;
  /** Events from this one on came after its unlock began (its drain); undefined while it holds. */
  to?: number;
  /** How its unlock went. */
  outcome?: string;
}

/** One S3 event of a store, and the user operation whose request caused it (none: the system's). */
export interface EventRecord {
  order: number;
  store: string;
  key: string;
  name: string;
  etag?: string;
  by?: { user: number; kind: Expected['kind']; op: number; opKind: string };
  /** For the system's: the replication invocation that made it (none for reconcile's or the API's). */
  invocation?: Invocation;
}

export interface History {
  ops: OpRecord[];
  versions: Version[];
  deletes: DeleteRecord[];
  locks: LockSpan[];
  events: EventRecord[];
}

export interface WorkloadOptions {
  ops: number;
  users: number;
  names: string[];
  /** Stretch (by op index) during which one store is away. */
  outage?: { store: string; from: number; to: number };
  /** Longest pause of an open multipart upload, ms. */
  uploadPauseMs: number;
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export interface Expected {
  op: OpRecord;
  kind: 'put' | 'complete' | 'delete' | 'api delete' | 'lock' | 'unlock';
  /** The made stamp when the API gave it; else the event's time. */
  made?: number;
  mtime?: (made: number) => number;
  text?: string;
}

export async function runWorkload(world: World, rnd: Random, opts: WorkloadOptions): Promise<History> {
  const history: History = { ops: [], versions: [], deletes: [], locks: [], events: [] };
  const stores = world.stores.map((s) => s.name);
  const T0 = Date.now() - 86_400_000;
  const mtimes = Array.from({ length: 8 }, (_, k) => T0 + k * 1000);
  // Each operation runs in its own context; every request it makes is remembered by S3's request
  // id, and an event is the operation's when it carries one of those ids (else replication's).
  const context = new AsyncLocalStorage<Expected[]>();
  const byRequest = new Map<string, Expected[]>();
  world.onAnswered((id) => {
    const mine = context.getStore();
    if (mine) byRequest.set(id, mine);
  });
  const events: { order: number; n: S3Notification }[] = [];
  world.tap.onEvent((n: S3Notification) => {
    if (stores.includes(n.Records[0]!.s3.bucket.name)) events.push({ order: events.length + 1, n });
  });
  const attribute = () => {
    for (const { order, n } of events) {
      const r = n.Records[0]! as S3Notification['Records'][0] & { responseElements?: Record<string, string> };
      const mine = byRequest.get(r.responseElements?.['x-amz-request-id'] ?? '') ?? [];
      const [bucket, key, time] = [r.s3.bucket.name, r.s3.object.key, Date.parse(r.eventTime)];
      const cause = mine[0];
      const invocation = cause ? undefined : world.invocationOf(r.responseElements?.['x-amz-request-id'] ?? '');
      history.events.push({
        order,
        store: bucket,
        key,
        name: r.eventName,
        ...(r.s3.object.eTag ? { etag: r.s3.object.eTag.replace(/"/g, '') } : {}),
        ...(cause ? { by: { user: cause.op.user, kind: cause.kind, op: cause.op.i, opKind: cause.op.kind } } : {}),
        ...(invocation ? { invocation } : {}),
      });
      const removed = r.eventName.startsWith('ObjectRemoved');
      const e = mine.find((x) => (removed ? x.kind === 'delete' : x.kind === 'complete' ? r.eventName === 'ObjectCreated:Post' : x.kind === 'put' && r.eventName === 'ObjectCreated:Put'));
      if (!e) continue; // replication's own write or delete, or the API's removal of the copies it deleted
      if (removed) {
        history.deletes.push({ key, time, by: `direct delete on ${bucket}`, op: e.op.i });
        continue;
      }
      const made = e.made ?? time;
      history.versions.push({ key, store: bucket, text: e.text!, etag: r.s3.object.eTag ?? md5(e.text!), mtime: e.mtime!(made), made, order, op: e.op.i });
    }
  };

  /** Locks held now, by `key\0store`. */
  const locked = new Map<string, LockSpan>();
  let next = 0;
  let outage: (() => void) | undefined;
  const step = async (user: number, i: number) => {
    if (opts.outage && i === opts.outage.from) outage = world.takeDown(opts.outage.store);
    if (opts.outage && i === opts.outage.to) outage?.();
    const key = rnd.pick(opts.names);
    const store = rnd.pick(stores);
    const roll = rnd();
    const op: OpRecord = { i, user, kind: '', key, what: '', startedAt: Date.now() };
    history.ops.push(op);
    const text = `${key} op${i} by user${user} ${md5(String(rnd())).slice(0, 8)}`;
    try {
      if (roll < 0.25) {
        const to = rnd() < 0.4 ? 'all' : store;
        const touch = rnd() < 0.1;
        const mtime = rnd.pick(mtimes);
        const now = Date.now();
        Object.assign(op, { kind: 'api write', what: `to ${to}${touch ? ' touch' : ` mtime …${mtime % 100000}`} "${text}"` });
        const a = await context.run([{ op, kind: 'put', made: now, mtime: () => (touch ? now : mtime), text }], () =>
          putFile(world.api, { key, body: Buffer.from(text), to, mtime: String(mtime), touch, who: `user${user}`, now }),
        );
        op.outcome = a.results.map((r) => `${r.store}:${r.held ? `held #${r.held}` : r.ok ? 'ok' : 'failed'}`).join(' ');
        // Held for a store someone else has locked: given to that store now, applied by its unlock.
        for (const r of a.results.filter((x) => x.held)) {
          history.versions.push({ key, store: r.store, text, etag: md5(text), mtime: Date.parse(a.mtime!), made: now, order: events.length + 0.5, op: i });
        }
      } else if (roll < 0.45) {
        const flavour = rnd();
        const mtime = rnd.pick(mtimes);
        const metadata: Record<string, string> =
          flavour < 0.5 ? {} : flavour < 0.8 ? { mtime: formatMtime(mtime) } : flavour < 0.9 ? { mtime: formatMtime(Date.now() + 365 * 86_400_000) } : { mtime: String(mtime) };
        Object.assign(op, { kind: 'direct write', what: `on ${store} mtime ${metadata.mtime ?? 'none'} "${text}"` });
        const given = parseMtime(metadata.mtime);
        await context.run([{ op, kind: 'put', mtime: (made) => (given === undefined || given > made + MAX_FUTURE_MS ? made : given), text }], () =>
          world.users.send(new PutObjectCommand({ Bucket: store, Key: key, Body: text, Metadata: metadata })),
        );
        op.outcome = 'ok';
      } else if (roll < 0.6) {
        Object.assign(op, { kind: 'api delete', what: '' });
        try {
          const a = await context.run([{ op, kind: 'api delete' }], () => deleteFile(world.api, key, `user${user}`));
          history.deletes.push({ key, time: Date.parse(a.mtime!), by: `api delete by user${user}`, op: i });
          op.outcome = `at ${a.mtime} ${a.results.map((r) => `${r.store}:${r.held ? `held #${r.held}` : r.ok ? 'ok' : 'failed'}`).join(' ')}`;
        } catch (err) {
          op.outcome = (err as Error).name; // NotFound, or no store answered: nothing deleted
        }
      } else if (roll < 0.75) {
        Object.assign(op, { kind: 'direct delete', what: `on ${store}` });
        await context.run([{ op, kind: 'delete' }], () => world.users.send(new DeleteObjectCommand({ Bucket: store, Key: key })));
        op.outcome = 'ok';
      } else if (roll < 0.88) {
        await multipart(world, rnd, op, key, rnd() < 0.5 ? 'all' : store, rnd.pick(mtimes), text, user, opts.uploadPauseMs, context);
      } else if (roll < 0.93) {
        Object.assign(op, { kind: 'lock', what: `at ${store}`, store });
        const lock = await context.run([{ op, kind: 'lock' }], () => lockFile(world.api, key, store, { name: `user${user}`, scope: 'write' }, { reason: `op${i}` }));
        op.outcome = `locked until ${new Date(lock.expires).toISOString()}`;
        // A span still listed whose lock this is not (someone else's, or this user's own released
        // by a forced unlock that has yet to return; a renewal keeps its `since`): that unlock
        // released it, and this lock is a new one (soak seed 42341).
        const prior = locked.get(`${key}\0${store}`);
        const renewed = isRenewal(prior, user, lock.since);
        if (prior && !renewed) prior.to ??= events.length;
        if (!renewed) {
          const span: LockSpan = { key, store, holder: user, op: i, since: lock.since, from: events.length, takenAt: Date.now() };
          locked.set(`${key}\0${store}`, span);
          history.locks.push(span);
        }
      } else if (roll < 0.97) {
        // Mostly one's own lock; else, now and then, someone else's with force; else whatever is named.
        const mine = [...locked.values()].filter((l) => l.holder === user);
        const others = [...locked.values()].filter((l) => l.holder !== user);
        const span = mine.length > 0 ? rnd.pick(mine) : others.length > 0 && rnd() < 0.3 ? rnd.pick(others) : undefined;
        const [k, s] = span ? [span.key, span.store] : [key, store];
        Object.assign(op, { key: k, store: s, kind: 'unlock', what: `at ${s}${span && span.holder !== user ? ` (force, held by user${span.holder})` : ''}` });
        op.outcome = await release(world, context, op, k, s, user, span !== undefined && span.holder !== user, locked, events.length);
      } else {
        Object.assign(op, { kind: 'read', what: '' });
        op.outcome = (await readFile(world.api, key, { meta: true })).status;
      }
    } catch (err) {
      op.outcome = `failed: ${(err as Error).name} ${(err as Error).message}`.slice(0, 200);
    }
  };

  await Promise.all(
    Array.from({ length: opts.users }, async (_, user) => {
      for (let i = next++; i < opts.ops; i = next++) {
        await step(user, i);
        await new Promise((r) => setTimeout(r, rnd() * 20));
      }
    }),
  );
  outage?.();
  // Whatever is still locked is unlocked by its holder: every rule is judged with no lock left.
  for (const span of [...locked.values()]) {
    const op: OpRecord = { i: history.ops.length, user: span.holder, kind: 'unlock', key: span.key, store: span.store, what: `at ${span.store} (at the end)`, startedAt: Date.now() };
    history.ops.push(op);
    op.outcome = await release(world, context, op, span.key, span.store, span.holder, false, locked, events.length);
  }
  attribute();
  return history;
}

/**
 * Whether a lock `user` just took (lockFile answered `since`) renews the span listed for that
 * name and store: only the same holder's same lock, which keeps its `since` (soak seed 42341).
 */
export const isRenewal = (listed: LockSpan | undefined, user: number, since: string) => listed !== undefined && listed.holder === user && listed.since === since;

/**
 * Unlocks `key` at `store` for user `user` with a generous budget, so that the drain finishes in
 * the call; the lock's span ends where the drain begins. Answers the outcome in words.
 */
async function release(
  world: World,
  context: AsyncLocalStorage<Expected[]>,
  op: OpRecord,
  key: string,
  store: string,
  user: number,
  force: boolean,
  locked: Map<string, LockSpan>,
  at: number,
): Promise<string> {
  const span = locked.get(`${key}\0${store}`);
  try {
    const unlock = () => unlockFile(world.api, key, store, { name: `user${user}`, scope: 'write' }, { force, discard: false, budgetMs: 120_000 });
    let p = await context.run([{ op, kind: 'unlock' }], unlock);
    // Past its budget (a loaded machine): called again, as dfs unlock does when a drain stops moving.
    for (let again = 0; !p.done && again < 10; again++) p = await context.run([{ op, kind: 'unlock' }], unlock);
    if (span) {
      span.to = at;
      span.outcome = `unlocked by user${user}: ${p.applied}/${p.total} applied${p.done ? '' : ', not done'}`;
      // Not a lock taken since by someone else (it answered before this unlock returned).
      if (locked.get(`${key}\0${store}`) === span) locked.delete(`${key}\0${store}`);
    }
    return `${p.applied}/${p.total} applied${p.done ? '' : ' (not done)'}`;
  } catch (err) {
    // Not locked there (404), someone else's (403); a store not answering leaves the lock held.
    return `${(err as Error).name}: ${(err as Error).message}`.slice(0, 200);
  }
}

/** An API multipart upload left open for a while, then completed: made when it completes. */
async function multipart(
  world: World,
  rnd: Random,
  op: OpRecord,
  key: string,
  to: string,
  mtime: number,
  text: string,
  user: number,
  pauseMs: number,
  context: AsyncLocalStorage<Expected[]>,
) {
  Object.assign(op, { kind: 'multipart', what: `to ${to} mtime …${mtime % 100000} "${text}"` });
  const plan = await startUpload(world.api, { key, size: text.length, mtime, to }, `user${user}`);
  const uploads: { store: string; uploadId: string; parts: { n: number; etag: string }[] }[] = [];
  for (const u of plan.uploads) {
    try {
      const part = await world.users.send(new UploadPartCommand({ Bucket: u.store, Key: key, UploadId: u.uploadId, PartNumber: 1, Body: text }));
      uploads.push({ ...u, parts: [{ n: 1, etag: part.ETag! }] });
    } catch {
      // that store is away: the upload goes on with the others
    }
  }
  await new Promise((r) => setTimeout(r, rnd() * pauseMs));
  if (uploads.length === 0) {
    op.outcome = 'no part uploaded';
    return;
  }
  const done = await context.run([{ op, kind: 'complete', mtime: () => mtime, text }], () => completeUpload(world.api, { key, uploads }, `user${user}`));
  op.outcome = done.results.map((r) => `${r.store}:${r.held ? `held #${r.held}` : r.ok ? 'ok' : 'failed'}`).join(' ');
}

