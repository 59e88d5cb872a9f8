import type { History, Version } from './workload';

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
