import { randomBytes } from 'node:crypto';
import type { Deps } from './deps';
import { ObjectChangedError } from './errors';
import { readRecord, writeRecord } from './control';

/*
 * The stack's own secrets, made on first use and kept in the control bucket (readable only by
 * the stack's roles): 256 random bits, never a name someone could guess. Read once per Lambda.
 */

const CURSOR_KEY = 'config/cursor-secret';
let cursor: Promise<string> | undefined;

/** The key listing cursors are signed with: DFS_CURSOR_SECRET when set, else the stack's own. */
export function cursorSecret(deps: Pick<Deps, 'control' | 'cursorSecret'>): Promise<string> {
  if (deps.cursorSecret) return Promise.resolve(deps.cursorSecret);
  cursor ??= loadOrMake(deps, CURSOR_KEY).catch((err) => {
    cursor = undefined; // not answered: ask again next time
    throw err;
  });
  return cursor;
}

async function loadOrMake(deps: Pick<Deps, 'control'>, key: string): Promise<string> {
  const found = await readRecord<{ secret: string }>(deps.control, key);
  if (found) return found.value.secret;
  const secret = randomBytes(32).toString('base64url');
  try {
    await writeRecord(deps.control, key, { secret }, null);
    return secret;
  } catch (err) {
    if (!(err instanceof ObjectChangedError)) throw err;
    // Another Lambda made it at the same moment: theirs is the one.
    return (await readRecord<{ secret: string }>(deps.control, key))!.value.secret;
  }
}

/** Forgets the secret read (tests). */
export const forgetSecrets = () => {
  cursor = undefined;
};
