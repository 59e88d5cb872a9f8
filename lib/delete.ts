import type { Deps } from './deps';
import { AllStoresUnavailableError, NotFoundError } from './errors';
import { parseKey } from './keys';
import { locksOf } from './locks';
import { recordDelete, updateTombstone } from './tombstones';
import { settleKey } from './settle';
import { askEvery, headObject } from './stores';
import type { StoreOutcome, WriteAnswer } from './types';

/**
 * Deletes `key` everywhere as of `now` (the API's clock): the tombstone is raised to `now` first,
 * so a crash halfway leaves a state that replication and reconcile finish (delete) rather than
 * undo (copy back); then every copy made before it is removed (lib/settle.ts), each removal
 * recorded as an intent so its own S3 event is known as ours.
 * Answers per store; throws NotFoundError when every store answered and none holds the key
 * (nothing is written then) and AllStoresUnavailableError when none answers.
 */
export async function deleteFile(deps: Deps, rawKey: string, who: string, at?: number): Promise<WriteAnswer> {
  const key = parseKey(rawKey);
  const [before, locks] = await Promise.all([askEvery(deps.stores, (s) => headObject(s, key)), locksOf(deps, key)]);
  if (before.unavailable.length === deps.stores.length) throw new AllStoresUnavailableError(before.unavailable);
  const holders = [...before.answers].filter(([, h]) => h !== null).map(([s]) => s);
  // With a store down, "nobody holds it" is unknown: the tombstone makes reconcile finish the job.
  if (holders.length === 0 && before.unavailable.length === 0) throw new NotFoundError(`no store holds "${key}"`);

  // Dated after the HEADs: every version they saw was made before the delete, stamped or not.
  const now = at ?? Date.now();
  const tombstone = await updateTombstone(deps, key, (t) => recordDelete(t, key, now, who));
  const copies = new Map([...before.answers].map(([s, h]) => [s, h && !h.stamp ? { ...h, stamp: { id: 'seen-before-the-delete', madeMs: now, who: 'unknown' } } : h]));
  // A store someone else has locked gets the delete in its lock's queue, applied at the unlock.
  const view = { key, copies, unavailable: before.unavailable, ...(tombstone ? { tombstone } : {}), ...(locks.size > 0 ? { locks } : {}) };
  const done = await settleKey(deps, key, { by: 'api', actor: who, fill: () => false, view });
  const results: StoreOutcome[] = deps.stores.flatMap((s): StoreOutcome[] => {
    const held = done.heldAs[s.name];
    if (held !== undefined) return [{ store: s.name, ok: true, held }];
    if (done.deleted.includes(s.name) || done.copied.includes(s.name)) return [{ store: s.name, ok: true }];
    if (done.view.unavailable.includes(s.name)) return [{ store: s.name, ok: false, error: 'unavailable: the store did not answer; reconcile deletes it later' }];
    if (done.waiting.includes(s.name)) return [{ store: s.name, ok: false, error: 'written outside dfs moments ago; its own event decides whether it was made after this delete' }];
    if (done.failed.includes(s.name)) return [{ store: s.name, ok: false, error: 'failed: the delete did not go through; replication and reconcile retry it' }];
    if (!holders.includes(s.name)) return [];
    if (done.view.copies.get(s.name) === null) return [{ store: s.name, ok: true }];
    return [{ store: s.name, ok: false, error: 'kept: it holds a write made after this delete' }];
  });
  return { key, mtime: new Date(now).toISOString(), results };
}
