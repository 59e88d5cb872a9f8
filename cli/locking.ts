/**
 * `dfs lock`, `dfs unlock` and `dfs locks`: POST /locks/{key}, DELETE /locks/{key} and
 * GET /locks (the server's side is lib/locking.ts). A lock on a file at one store holds back
 * every write into that store's copy but its holder's; unlock applies the held updates in order.
 *
 *   dfs unlock NAME
 *     GET /locks ─ not locked? exit 3 ─ someone else's without --force? exit 7
 *     --force on someone else's, or --discard dropping updates: ask (or -y)
 *     DELETE /locks/NAME?store=S ─ 200 done
 *                                └ 202 the drain goes on by itself: poll GET /locks until the
 *                                  lock is gone (a drain that stops moving is asked again)
 *
 * No printing here; the caller formats the results (cli/output.ts).
 */
import { drainAnswerOf, lockAnswerOf, type DrainAnswer } from '../client/answers';
import { pause } from '../client/pause';
import type { ApiResult, Transport } from './client';
import { CliError, cliGuard, EXIT, usageError, type ExitCode } from './exit';
import { heldCount, readLocks, type LockInfo } from './locks';
import type { ProgressFactory } from './progress';
import { resolveFileRef, type FileRef, type ResolveIo } from './target';

/** The server's limits (lib/locks.ts, lib/locking.ts), checked here so bad values fail before any request. */
export const LOCK_LIMITS = Object.freeze({ minTtl: 60, maxTtl: 7 * 86_400, maxReason: 200 });

export const UNLOCK_DEFAULTS = Object.freeze({
  /** How often GET /locks is asked while an unlock drains by itself. */
  pollMs: 1000,
  /**
   * A drain whose count has not moved for this long is asked to go on (DELETE again): the
   * server's own continuation may be missing. Longer than the 20 s a drain runs per request.
   */
  stallMs: 30_000,
});

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * A lock's time to live in whole seconds: `3600` (seconds), or amounts with units s, m, h, d,
 * w, one or several: `90s`, `30m`, `2h`, `1d`, `1h30m`. Throws a usage CliError (exit 2) for
 * anything else, and outside 1 minute to 7 days (the server's range).
 */
export function parseTtl(text: string): number {
  const t = text.trim().toLowerCase();
  let seconds: number;
  if (/^\d+$/.test(t)) seconds = Number(t);
  else if (/^(\d+[smhdw])+$/.test(t)) seconds = [...t.matchAll(/(\d+)([smhdw])/g)].reduce((sum, [, n, unit]) => sum + Number(n) * UNIT_SECONDS[unit!]!, 0);
  else throw usageError(`--ttl ${JSON.stringify(text)} is not a duration: use whole seconds (3600) or amounts with units s, m, h, d, w (90s, 30m, 2h, 1h30m)`, 'BadTtl');
  if (!Number.isSafeInteger(seconds) || seconds < LOCK_LIMITS.minTtl || seconds > LOCK_LIMITS.maxTtl) {
    throw usageError(`--ttl ${JSON.stringify(text)} is out of range: a lock lasts from 1 minute to 7 days (60 to 604800 s)`, 'BadTtl');
  }
  return seconds;
}

/** `--reason`: at most 200 characters (the server's limit). Throws a usage CliError. */
export function checkReason(text: string): string {
  if (text.length > LOCK_LIMITS.maxReason) throw usageError(`--reason is ${text.length} characters long; at most ${LOCK_LIMITS.maxReason}`, 'BadReason');
  return text;
}

export interface LockOptions {
  ref: FileRef;
  /** `--at`: by default the server's first store. */
  store?: string;
  reason?: string;
  /** Seconds (parseTtl); by default the server's hour. */
  ttl?: number;
}

export interface LockResult {
  lock: LockInfo;
  /** The index the file was named by. */
  index?: number;
  exitCode: ExitCode;
}

/**
 * Locks the file (or renews the caller's own lock). Throws CliError: usage (2) for a bad index
 * or a bad value the server refuses (an unknown store, a ttl out of range); 3 when no store
 * holds the file; 7 (LockHeld) when someone else holds it; the mapped error of any other refusal.
 */
export async function lockFile(connect: () => Transport, opts: LockOptions, io: ResolveIo = {}): Promise<LockResult> {
  const api = connect();
  const { name, index } = await resolveFileRef(api, opts.ref, io);
  const reply = await api.send({
    op: 'lock',
    key: name,
    ...(opts.store !== undefined ? { store: opts.store } : {}),
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    ...(opts.ttl !== undefined ? { ttl: opts.ttl } : {}),
  });
  if (isNotFound(reply)) throw new CliError(EXIT.notFound, 'NotFound', `${name}: no store holds it; there is nothing to lock`);
  const lock = cliGuard(lockAnswerOf)(reply);
  return { lock, ...(index !== undefined ? { index } : {}), exitCode: EXIT.ok };
}

export interface UnlockOptions {
  ref: FileRef;
  /** `--at`: by default the one store where the file is locked. */
  store?: string;
  /** Take over someone else's lock. */
  force: boolean;
  /** Drop the held updates instead of applying them. */
  discard: boolean;
  /** `-y`: do not ask. */
  yes: boolean;
  /** Follow a drain that goes on by itself until it is done (`--no-wait`: false). */
  wait: boolean;
}

export interface UnlockIo extends ResolveIo {
  /** Asks a yes/no question on the terminal; absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
  progress: ProgressFactory;
  /** Ctrl-C: stop waiting (the unlock goes on without us). */
  signal: AbortSignal;
  pollMs?: number;
  stallMs?: number;
}

export type { DrainAnswer };

export interface UnlockResult {
  /** The last answer, or, once a drain followed by polling is over, its outcome. */
  answer: DrainAnswer;
  /** The lock as it was before the unlock. */
  lock: LockInfo;
  index?: number;
  /** Someone else's lock, taken over with --force. */
  forced: boolean;
  /** The drain went on by itself and was followed to its end. */
  waited: boolean;
  exitCode: ExitCode;
}

/**
 * Unlocks the file (the timeline above). Throws CliError: usage (2) for a bad index, when the
 * file is locked at several stores and no --at says which, or when a question is needed and
 * there is no terminal to ask on (no -y); 1 when the answer is no; 3 when it is not locked
 * (there); 7 (LockHeld) for someone else's lock without --force; 130 when Ctrl-C stops the
 * wait (the unlock goes on by itself). Nothing is changed before the questions are answered.
 */
export async function unlockFile(connect: () => Transport, opts: UnlockOptions, io: UnlockIo): Promise<UnlockResult> {
  const api = connect();
  const { name, index } = await resolveFileRef(api, opts.ref, io);
  const lock = pickLock(name, opts.store, await readLocks(api));
  const forced = opts.force && !isOwn(api, lock);
  if (!opts.force && api.who !== undefined && lock.holder !== api.who) throw heldError(lock);

  const dropping = opts.discard ? heldCount(lock) : 0;
  if ((forced || dropping > 0) && !opts.yes) {
    if (!io.confirm) {
      throw usageError(`not unlocking ${name}: ${forced ? `it is ${lockedBy(lock)}` : `${plural(dropping, 'held update')} would be dropped`}; stdin is not a terminal to confirm on; add -y to unlock without asking`, 'ConfirmationNeeded');
    }
    if (!(await io.confirm(unlockQuestion(lock, forced, opts.discard)))) throw new CliError(EXIT.error, 'Cancelled', `${name} not unlocked`);
  }

  const send = async (discard: boolean): Promise<ApiResult> => {
    try {
      return await api.send({ op: 'unlock', key: name, store: lock.store, ...(opts.force ? { force: true } : {}), ...(discard ? { discard: true } : {}) });
    } catch (err) {
      // Without force, a 403 is someone else's lock when it changed hands since we looked; else the token's scope.
      if (!opts.force && err instanceof CliError && err.exitCode === EXIT.notAllowed && err.code === 'Forbidden') {
        const now = (await readLocks(api).catch(() => [])).find((l) => l.key === name && l.store === lock.store);
        if (now && api.who !== undefined && now.holder !== api.who) throw heldError(now);
      }
      throw err;
    }
  };
  let answer = drainOf(name, lock.store, await send(opts.discard));
  const done = (waited: boolean): UnlockResult => ({ answer, lock, ...(index !== undefined ? { index } : {}), forced, waited, exitCode: EXIT.ok });
  if (answer.done || !opts.wait) return done(false);
  answer = await followDrain(api, lock, answer, () => send(false), io);
  return done(true);
}

/**
 * Polls GET /locks until the lock is gone (or another one has taken its place), showing how
 * far the drain got; asks the server to go on (`resend`) when the count stops moving.
 */
async function followDrain(api: Transport, lock: LockInfo, first: DrainAnswer, resend: () => Promise<ApiResult>, io: UnlockIo): Promise<DrainAnswer> {
  const pollMs = io.pollMs ?? UNLOCK_DEFAULTS.pollMs;
  const stallMs = io.stallMs ?? UNLOCK_DEFAULTS.stallMs;
  let { applied, total } = first;
  let movedAt = Date.now();
  const bar = io.progress(`unlocking ${lock.key}`, Math.max(total, 1), 'entries');
  bar.update(applied, total);
  try {
    for (;;) {
      await pause(pollMs, io.signal);
      if (io.signal.aborted) throw stoppedWaiting(lock, applied, total);
      const now = (await readLocks(api, io.signal).catch(rethrowInterrupt(lock, applied, total))).find(
        (l) => l.key === lock.key && l.store === lock.store && l.since === lock.since,
      );
      if (!now) return { key: lock.key, store: lock.store, applied: total, total, done: true };
      if (now.applied > applied) movedAt = Date.now();
      applied = now.applied;
      total = now.next - 1;
      bar.update(applied, total);
      if (Date.now() - movedAt >= stallMs) {
        const again = drainOf(lock.key, lock.store, await resend());
        if (again.done) return again;
        ({ applied, total } = again);
        movedAt = Date.now();
      }
    }
  } finally {
    bar.stop();
  }
}

const rethrowInterrupt = (lock: LockInfo, applied: number, total: number) => (err: unknown): never => {
  if (err instanceof CliError && err.exitCode === EXIT.interrupted) throw stoppedWaiting(lock, applied, total);
  throw err;
};

const stoppedWaiting = (lock: LockInfo, applied: number, total: number) =>
  new CliError(
    EXIT.interrupted,
    'Interrupted',
    `stopped waiting: unlocking ${lock.key} at ${lock.store} goes on by itself (${applied} of ${plural(total, 'held update')} applied so far); dfs locks shows how far`,
    { key: lock.key, store: lock.store, applied, total },
  );

/** Every lock, for `dfs locks`. */
export async function listLocks(connect: () => Transport): Promise<{ answer: { locks: LockInfo[] }; exitCode: ExitCode }> {
  return { answer: { locks: await readLocks(connect()) }, exitCode: EXIT.ok };
}

/**
 * The lock an unlock is about: the one at `store`, or, without one, the only lock of the name.
 * Throws CliError 3 when there is none, usage (2) when there are several to choose from.
 */
export function pickLock(name: string, store: string | undefined, all: LockInfo[]): LockInfo {
  const mine = all.filter((l) => l.key === name);
  const where = mine.map((l) => l.store).join(', ');
  if (store !== undefined) {
    const lock = mine.find((l) => l.store === store);
    if (!lock) throw new CliError(EXIT.notFound, 'NotLocked', `${name} is not locked at ${store}${mine.length > 0 ? ` (it is at ${where})` : ''}`);
    return lock;
  }
  if (mine.length === 0) throw new CliError(EXIT.notFound, 'NotLocked', `${name} is not locked`);
  if (mine.length > 1) throw usageError(`${name} is locked at ${where}: say which with --at STORE`, 'WhichStore');
  return mine[0]!;
}

const isOwn = (api: Transport, lock: LockInfo) => api.who !== undefined && lock.holder === api.who;

const lockedBy = (lock: LockInfo) => `locked at ${lock.store} by ${lock.holder} since ${lock.since}`;

const heldError = (lock: LockInfo) =>
  new CliError(
    EXIT.refused,
    'LockHeld',
    `${lock.key} is ${lockedBy(lock)}${lock.reason ? ` (${lock.reason})` : ''}, with ${plural(heldCount(lock), 'held update')}; --force takes the lock over and unlocks it`,
    { holder: lock.holder, since: lock.since, store: lock.store },
  );

/** The question before taking over someone else's lock, or dropping held updates. */
export function unlockQuestion(lock: LockInfo, forced: boolean, discard: boolean): string {
  const held = heldCount(lock);
  const what = discard ? (held > 0 ? `dropping its ${plural(held, 'held update')} (never written into ${lock.store})` : 'with no held updates') : `applying its ${plural(held, 'held update')}`;
  if (forced) {
    return `${lock.key} is ${lockedBy(lock)}${lock.reason ? ` (${lock.reason})` : ''}. Take over ${lock.holder}'s lock and unlock it, ${what}? [y/N] `;
  }
  return `unlock ${lock.key} at ${lock.store}, ${what}? [y/N] `;
}

const plural = (n: number, one: string) => `${n} ${n === 1 ? one : `${one}s`}`;

function isNotFound({ status, body }: ApiResult): boolean {
  // Only the API's own NotFound: a 404 from something else (a wrong endpoint) is not "no such file".
  return status === 404 && (body as { error?: unknown } | null)?.error === 'NotFound';
}

/** The DrainAnswer of a 200 or 202 to DELETE /locks; a 404 (not locked any more) is exit 3. */
function drainOf(name: string, store: string, reply: ApiResult): DrainAnswer {
  if (isNotFound(reply)) throw new CliError(EXIT.notFound, 'NotLocked', `${name} is not locked at ${store} (any more)`);
  return cliGuard(drainAnswerOf)(reply, name, store);
}
