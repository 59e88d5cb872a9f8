import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from './deps';
import { AllStoresUnavailableError, NotFoundError, StoreUnavailableError } from './errors';
import { parseKey } from './keys';
import { describeFailure, headObject, onStore } from './stores';
import { writeTombstone } from './tombstones';
import type { WriteAnswer } from './types';

/**
 * Deletes `key` from every store that holds it, after writing its tombstone, so that a crash
 * halfway leaves a state reconcile finishes (delete) rather than undoes (copy back).
 * Answers per store, stores that did not answer included (`ok: false`); throws NotFoundError
 * when every store answered and none holds the key (nothing is written then) and
 * AllStoresUnavailableError when none answers.
 */
export async function deleteFile(deps: Deps, rawKey: string, who: string, now = Date.now()): Promise<WriteAnswer> {
  const key = parseKey(rawKey);
  const heads = await Promise.allSettled(deps.stores.map((s) => headObject(s, key)));
  const holders = deps.stores.filter((_, i) => {
    const h = heads[i]!;
    return h.status === 'fulfilled' && h.value !== null;
  });
  const down = deps.stores.filter((_, i) => heads[i]!.status === 'rejected');
  for (const h of heads) if (h.status === 'rejected' && !(h.reason instanceof StoreUnavailableError)) throw h.reason;
  if (down.length === deps.stores.length) throw new AllStoresUnavailableError(down.map((s) => s.name));
  // With a store down, "nobody holds it" is unknown: the tombstone makes reconcile finish the job.
  if (holders.length === 0 && down.length === 0) throw new NotFoundError(`no store holds "${key}"`);

  await writeTombstone(deps, { key, time: now, who });
  const deleted = await Promise.allSettled(
    holders.map((s) => onStore(s, () => s.s3.send(new DeleteObjectCommand({ Bucket: s.bucket, Key: key })))),
  );
  const results = [
    ...holders.map((s, i) => {
      const r = deleted[i]!;
      return r.status === 'fulfilled' ? { store: s.name, ok: true } : { store: s.name, ok: false, error: describeFailure(r.reason) };
    }),
    ...down.map((s) => ({ store: s.name, ok: false, error: 'unavailable: the store did not answer; reconcile deletes it later' })),
  ];
  return { key, mtime: new Date(now).toISOString(), results };
}
