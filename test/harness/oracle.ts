import type { EventRecord, History, Version } from './workload';

/*
 * The oracle: the rules of README "How it behaves", checked name by name against what really
 * happened (the history) once events have quieted down and one reconcile has run.
 *
 *   D = the latest delete of the name (API deletes on the API's clock, direct deletes at their
 *       S3 event's time); a version is live when it was made after D.
 *   1. every store holds the same thing;
 *   2. what they hold is a version some user wrote, and a live one: a delete is final for every
 *      version made before it;
 *   3. it is at least as new, by (mtime, ETag), as the last version each store was given by a
 *      user, when that one is live: a live write is only ever replaced by a newer one, and a
 *      write made after a delete survives it;
 *   4. so the name is absent only when no such live last version exists.
 *
 * And for locks (judgeLocks), from each store's own S3 events between a lock and its unlock:
 *   5. a locked store's copy changes only by its holder's requests (through dfs or straight into
 *      the bucket) until the unlock begins; then the drain applies what was held. Not counted:
 *      another user's write or delete straight into the bucket (S3 takes it: dfs never sees it
 *      coming) and a copy onto itself that leaves the bytes as they were (a stamp in place).
 *      Reported apart: a write that raced the lock (its operation, or replication's invocation,
 *      began before lockFile answered: it may have looked before the lock was there).
 */

export interface Violation {
  key: string;
  rule: string;
  held: Record<string, string | null>;
  expected?: string;
}

const newer = (a: Pick<Version, 'mtime' | 'etag'>, b: Pick<Version, 'mtime' | 'etag'>) =>
  a.mtime !== b.mtime ? a.mtime > b.mtime : a.etag.replace(/"/g, '') > b.etag.replace(/"/g, '');

/** Checks one snapshot of every store (store → key → text) against the history. */
export function judge(history: History, held: Map<string, Map<string, string>>, names: string[]): Violation[] {
  const out: Violation[] = [];
  const stores = [...held.keys()];
  for (const key of names) {
    const copies = Object.fromEntries(stores.map((s) => [s, held.get(s)!.get(key) ?? null]));
    const fail = (rule: string, expected?: string) => out.push({ key, rule, held: copies, ...(expected !== undefined ? { expected } : {}) });
    const versions = history.versions.filter((v) => v.key === key);
    const deletedAt = Math.max(-Infinity, ...history.deletes.filter((d) => d.key === key).map((d) => d.time));
    const live = (v: Version) => v.made > deletedAt;
    const values = [...new Set(Object.values(copies))];
    if (values.length > 1) {
      fail('stores differ');
      continue;
    }
    const got = values[0] ?? null;
    const floor = stores
      .map((s) => versions.filter((v) => v.store === s).sort((a, b) => a.order - b.order).at(-1))
      .filter((v): v is Version => v !== undefined && live(v))
      .reduce<Version | undefined>((best, v) => (!best || newer(v, best) ? v : best), undefined);
    if (got === null) {
      if (floor) fail('a live write was lost: the name is gone though its last write on a store was made after every delete', floor.text);
      continue;
    }
    const mine = versions.filter((v) => v.text === got);
    if (mine.length === 0) fail('holds something no user wrote');
    else if (!mine.some(live)) fail('resurrected: holds a version made before the last delete');
    else if (floor && newer(floor, mine.find(live)!)) fail('lost update: an older version replaced a newer live one', floor.text);
  }
  return out;
}

/** A change to a locked store that its holder did not make. */
export interface LockViolation {
  key: string;
  store: string;
  holder: string;
  rule: string;
  event: string;
  /** Who caused it: a user's operation, or the system (replication, reconcile). */
  by: string;
  /** Set for a write that raced the lock (allowed, counted apart from the others). */
  known?: string;
}

/** Checks rule 5 for every lock the history holds. */
export function judgeLocks(history: History): LockViolation[] {
  const out: LockViolation[] = [];
  const opOf = new Map(history.ops.map((o) => [o.i, o]));
  // The ETag each store held before each event, to tell a stamp in place from a change.
  const before = new Map<EventRecord, string | undefined>();
  const last = new Map<string, string | undefined>();
  for (const e of history.events) {
    const at = `${e.store}\0${e.key}`;
    before.set(e, last.get(at));
    last.set(at, e.name.startsWith('ObjectRemoved') ? undefined : e.etag);
  }
  for (const span of history.locks) {
    const inSpan = (e: EventRecord) => e.store === span.store && e.key === span.key && e.order > span.from && (span.to === undefined || e.order <= span.to);
    for (const e of history.events.filter(inSpan)) {
      const op = e.by ? opOf.get(e.by.op) : undefined;
      if (e.by?.user === span.holder) continue;
      if (e.by && (op?.kind === 'direct write' || op?.kind === 'direct delete')) continue;
      if (e.by?.kind === 'unlock' && op?.key === span.key && op.store === span.store) continue; // its drain
      if (!e.name.startsWith('ObjectRemoved') && e.etag !== undefined && e.etag === before.get(e)) continue; // same bytes
      const raced = op ? op.startedAt < span.takenAt : e.invocation !== undefined && e.invocation.began < span.takenAt;
      // Decided before the lock existed, S3 cannot refuse it for a lock: README "Locks" says so.
      const known = raced ? { why: 'raced the lock: its operation began before lockFile answered, and may have looked before the lock was there' } : undefined;
      out.push({
        key: span.key,
        store: span.store,
        holder: `user${span.holder}`,
        rule: 'a locked store changed by someone other than its holder before the unlock',
        event: `#${e.order} ${e.name}${e.etag ? ` ${e.etag}` : ''}`,
        by: e.by ? `op${e.by.op} user${e.by.user} ${op?.kind ?? e.by.kind}` : 'the system (replication or reconcile)',
        ...(known ? { known: known.why } : {}),
      });
    }
  }
  return out;
}
