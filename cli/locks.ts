/**
 * The locks as `GET /locks` shows them (the shape and its guard are client/answers.ts).
 * `dfs ls`, `dfs locks` and `dfs unlock` read them here; the commands are in cli/locking.ts.
 */
import { locksOf as sharedLocksOf, type LockInfo } from '../client/answers';
import type { Transport } from './client';
import { cliGuard } from './exit';

export { heldCount } from '../client/answers';
export type { LockInfo };

/** Every lock of the stack, sorted by key then store (as the server sorts them). */
export async function readLocks(api: Transport, signal?: AbortSignal): Promise<LockInfo[]> {
  return locksOf(await api.send({ op: 'locks' }, signal ? { signal } : {}));
}

/** The locks of a 200 to GET /locks; any other reply becomes its CliError. */
export const locksOf = cliGuard(sharedLocksOf);
