/**
 * The locks as `GET /locks` shows them (lib/locks.ts StoreLock; the CLI bundle holds no server
 * code, hence the copy of the shape), with the answer's guard. `dfs ls`, `dfs locks` and
 * `dfs unlock` read them here; the commands are in cli/locking.ts.
 */
import type { ApiResult, Transport } from './client';
import { CliError, EXIT, errorForResponse } from './exit';

/** A lock on a key at one store. */
export interface LockInfo {
  key: string;
  store: string;
  /** The token name that holds it. */
  holder: string;
  /** ISO-8601. */
  since: string;
  /** ms since 1970. */
  expires: number;
  reason?: string;
  /** The number the next held update gets: the queue holds 1 .. next-1. */
  next: number;
  /** Held updates applied into the store so far (an unlock under way). */
  applied: number;
  /** Set once an unlock has started draining the queue. */
  draining?: { by: string; since: string };
}

/** Updates held in the lock's queue and not applied yet: what an unlock applies, or --discard drops. */
export const heldCount = (lock: Pick<LockInfo, 'next' | 'applied'>): number => Math.max(0, lock.next - 1 - lock.applied);

/** Every lock of the stack, sorted by key then store (as the server sorts them). */
export async function readLocks(api: Transport, signal?: AbortSignal): Promise<LockInfo[]> {
  return locksOf(await api.send({ op: 'locks' }, signal ? { signal } : {}));
}

/** The locks of a 200 to GET /locks; any other reply becomes its CliError. */
export function locksOf({ status, body }: ApiResult): LockInfo[] {
  if (status !== 200) throw errorForResponse(status, body, 'no locks can be read');
  const locks = (body as { locks?: unknown } | null)?.locks;
  if (!Array.isArray(locks) || !locks.every(isLock)) {
    throw new CliError(EXIT.error, 'BadResponse', 'the server answered GET /locks with something that is not a list of locks');
  }
  return locks;
}

function isLock(l: unknown): l is LockInfo {
  const x = l as Partial<LockInfo> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.key === 'string' &&
    typeof x.store === 'string' &&
    typeof x.holder === 'string' &&
    typeof x.since === 'string' &&
    typeof x.expires === 'number' &&
    Number.isInteger(x.next) &&
    Number.isInteger(x.applied) &&
    (x.reason === undefined || typeof x.reason === 'string')
  );
}
