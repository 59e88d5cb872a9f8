import type { Deps } from './deps';
import { AllStoresUnavailableError, BadRequestError, NotFoundError } from './errors';
import { askEvery, headObject } from './stores';
import { acquireLock, listLocks, lockToRelease, parseTtl, type StoreLock } from './locks';
import { drainLock, type DrainProgress } from './queue';
import { appendEvent } from './journal';
import { settleKey } from './settle';
import type { Identity } from './tokens';

/*
 * Locking a file, as the API and reconcile do it: the records are lib/locks.ts, the held updates
 * lib/queue.ts. After an unlock the key settles like any other (lib/settle.ts), so the store that
 * was locked catches up with the others, and they with its holder's writes.
 */

/**
 * Locks `key` at `store` for `who` (renews their own lock). Throws NotFoundError when no store
 * holds the file, AllStoresUnavailableError when no store answers, BadRequestError for a bad
 * reason or ttl, LockHeldError when someone else holds it.
 */
export async function lockFile(deps: Deps, key: string, store: string, who: Identity, body: Record<string, unknown>): Promise<StoreLock> {
  const unknown = Object.keys(body).filter((k) => k !== 'reason' && k !== 'ttl');
  if (unknown.length > 0) throw new BadRequestError(`unknown field(s) ${unknown.join(', ')}; a lock takes "reason" and "ttl"`);
  if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 200)) throw new BadRequestError('reason is text of at most 200 characters');
  const ttlMs = parseTtl(body.ttl);
  const { answers, unavailable } = await askEvery(deps.stores, (s) => headObject(s, key));
  if (unavailable.length === deps.stores.length) throw new AllStoresUnavailableError(unavailable);
  if (![...answers.values()].some((h) => h !== null)) throw new NotFoundError(`no store holds "${key}": there is nothing to lock`);
  const lock = await acquireLock(deps, key, store, who, { ttlMs, ...(body.reason !== undefined ? { reason: body.reason as string } : {}) });
  await appendEvent(deps, { action: 'locked', key, who: who.name, to: [store], reason: `until ${new Date(lock.expires).toISOString()}${lock.reason ? `: ${lock.reason}` : ''}` });
  return lock;
}

/**
 * Unlocks `key` at `store`: its held updates are applied in order (or dropped with `discard`),
 * for at most `budgetMs` in this call; the answer says how far it got, and a drain not done goes
 * on by itself (deps.continueDrain) or at the next call. Throws NotFoundError when it is not
 * locked, ForbiddenError for someone else's lock without `force`.
 */
export async function unlockFile(
  deps: Deps,
  key: string,
  store: string,
  who: Identity,
  opts: { force: boolean; discard: boolean; budgetMs: number },
): Promise<DrainProgress> {
  const lock = await lockToRelease(deps, key, store, who, opts.force);
  if (lock.holder !== who.name) await appendEvent(deps, { action: 'unlock-forced', key, who: who.name, to: [store], reason: `held by ${lock.holder} since ${lock.since}` });
  const progress = await drainLock(deps, key, store, who.name, { budgetMs: opts.budgetMs, discard: opts.discard });
  if (!progress.done) {
    await deps.continueDrain?.(key, store);
    return progress;
  }
  await settleKey(deps, key, { by: 'replicate', fill: () => true });
  return progress;
}

/**
 * Drains every lock past its expiry (the next reconcile does, whoever held it): its held updates
 * are applied, then it goes. Returns the locks it released.
 */
export async function drainExpiredLocks(deps: Deps, now = Date.now()): Promise<DrainProgress[]> {
  const done: DrainProgress[] = [];
  for (const lock of await listLocks(deps)) {
    if (lock.expires > now) continue;
    const progress = await drainLock(deps, lock.key, lock.store, 'reconcile');
    await appendEvent(deps, { action: 'expired', key: lock.key, who: lock.holder, to: [lock.store], reason: `lock of ${lock.holder} expired at ${new Date(lock.expires).toISOString()}; ${progress.applied} held update(s) applied` });
    await settleKey(deps, lock.key, { by: 'reconcile', fill: () => true });
    done.push(progress);
  }
  return done;
}
