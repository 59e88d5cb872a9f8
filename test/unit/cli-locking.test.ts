import type { ApiOp, ApiResult, Transport } from '../../cli/client';
import { CliError } from '../../cli/exit';
import { checkReason, lockFile, parseTtl, pickLock, unlockFile, unlockQuestion, type UnlockIo, type UnlockOptions } from '../../cli/locking';
import { heldCount, locksOf, type LockInfo } from '../../cli/locks';
import type { ProgressFactory } from '../../cli/progress';

const T = '2024-05-01T10:00:00.000Z';
const lock = (key: string, store: string, holder: string, held: number, extra: Partial<LockInfo> = {}): LockInfo => ({
  key, store, holder, since: T, expires: Date.parse(T) + 3600_000, next: held + 1, applied: 0, ...extra,
});

/** A transport as `who` (null: it cannot tell), answering each op from `answer` and recording it. */
function fake(answer: (op: ApiOp) => ApiResult | Promise<ApiResult>, who: string | null = 'ann') {
  const ops: ApiOp[] = [];
  const api: Transport = { ...(who !== null ? { who } : {}), send: async (op) => (ops.push(op), answer(op)) };
  return { api, ops };
}

const sends = (ops: ApiOp[]) => ops.filter((o) => o.op !== 'locks' && o.op !== 'list');

/** A progress bar that records what it was shown. */
function bars() {
  const shown: Array<[number, number | undefined]> = [];
  const factory: ProgressFactory = () => ({ update: (d, t) => void shown.push([d, t]), stop: () => void shown.push([-1, undefined]) });
  return { shown, factory };
}

const unlockOpts = (extra: Partial<UnlockOptions> = {}): UnlockOptions => ({ ref: { name: 'f' }, force: false, discard: false, yes: false, wait: true, ...extra });
const unlockIo = (extra: Partial<UnlockIo> = {}): UnlockIo => ({ progress: bars().factory, signal: new AbortController().signal, pollMs: 1, ...extra });

describe('parseTtl', () => {
  it.each([
    ['60', 60],
    ['3600', 3600],
    ['90s', 90],
    ['30m', 1800],
    ['2h', 7200],
    ['1h30m', 5400],
    ['1d', 86_400],
    ['7d', 604_800],
    ['1w', 604_800],
    ['2H', 7200],
    [' 30m ', 1800],
  ])('reads %j as %i seconds', (text, seconds) => {
    expect(parseTtl(text)).toBe(seconds);
  });

  it.each(['', 'abc', '2 hours', '1.5h', '-5m', '30x', 'h', '1h 30m', '1e3', '0x10'])('refuses %j: not a duration (usage)', (text) => {
    expect(() => parseTtl(text)).toThrow(expect.objectContaining({ exitCode: 2, code: 'BadTtl', message: expect.stringContaining('is not a duration') }));
  });

  it.each(['0', '59', '59s', '8d', '604801', '2w', '99999999999999999999'])('refuses %j: out of 1 minute to 7 days (usage)', (text) => {
    expect(() => parseTtl(text)).toThrow(expect.objectContaining({ exitCode: 2, code: 'BadTtl', message: expect.stringContaining('out of range') }));
  });
});

describe('checkReason', () => {
  it('takes up to 200 characters', () => {
    expect(checkReason('x'.repeat(200))).toHaveLength(200);
    expect(() => checkReason('x'.repeat(201))).toThrow(expect.objectContaining({ exitCode: 2, code: 'BadReason' }));
  });
});

describe('locksOf and heldCount', () => {
  it('takes the locks of a 200 and refuses anything else', () => {
    const l = lock('a', 'server1', 'ann', 2);
    expect(locksOf({ status: 200, body: { locks: [l] } })).toEqual([l]);
    expect(() => locksOf({ status: 200, body: { locks: [{ key: 'a' }] } })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
    expect(() => locksOf({ status: 200, body: {} })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
    expect(() => locksOf({ status: 503, body: { error: 'Unavailable' } })).toThrow(expect.objectContaining({ exitCode: 5 }));
  });

  it('counts the updates held and not applied', () => {
    expect(heldCount({ next: 1, applied: 0 })).toBe(0);
    expect(heldCount({ next: 6, applied: 2 })).toBe(3);
    expect(heldCount({ next: 1, applied: 3 })).toBe(0);
  });
});

describe('pickLock', () => {
  const all = [lock('a', 'server1', 'ann', 0), lock('a', 'server2', 'bob', 0), lock('b', 'server2', 'ann', 0)];

  it('takes the lock at --at, or the only lock of the name', () => {
    expect(pickLock('a', 'server2', all).holder).toBe('bob');
    expect(pickLock('b', undefined, all).store).toBe('server2');
  });

  it('says when there is no such lock (3), or several to choose from (2)', () => {
    expect(() => pickLock('c', undefined, all)).toThrow(expect.objectContaining({ exitCode: 3, code: 'NotLocked', message: 'c is not locked' }));
    expect(() => pickLock('b', 'server1', all)).toThrow(expect.objectContaining({ exitCode: 3, message: 'b is not locked at server1 (it is at server2)' }));
    expect(() => pickLock('c', 'server9', all)).toThrow(expect.objectContaining({ exitCode: 3, message: 'c is not locked at server9' }));
    expect(() => pickLock('a', undefined, all)).toThrow(expect.objectContaining({ exitCode: 2, code: 'WhichStore', message: 'a is locked at server1, server2: say which with --at STORE' }));
  });
});

describe('unlockQuestion', () => {
  it('shows whose lock is taken over, and what becomes of the held updates', () => {
    const l = lock('a.txt', 'server1', 'bob', 1, { reason: 'notes' });
    expect(unlockQuestion(l, true, false)).toBe(`a.txt is locked at server1 by bob since ${T} (notes). Take over bob's lock and unlock it, applying its 1 held update? [y/N] `);
    expect(unlockQuestion(lock('a.txt', 'server1', 'bob', 0), true, true)).toBe(`a.txt is locked at server1 by bob since ${T}. Take over bob's lock and unlock it, with no held updates? [y/N] `);
    expect(unlockQuestion(lock('a.txt', 'server2', 'ann', 4), false, true)).toBe('unlock a.txt at server2, dropping its 4 held updates (never written into server2)? [y/N] ');
  });
});

describe('lockFile', () => {
  it('sends only the fields given and returns the lock', async () => {
    const l = lock('a', 'server2', 'ann', 0, { reason: 'r' });
    const { api, ops } = fake(() => ({ status: 201, body: l }));
    expect(await lockFile(() => api, { ref: { name: 'a' }, store: 'server2', reason: 'r' })).toEqual({ lock: l, exitCode: 0 });
    expect(ops).toEqual([{ op: 'lock', key: 'a', store: 'server2', reason: 'r' }]);
  });

  it.each<[string, ApiResult, number, string]>([
    ['no store holds it', { status: 404, body: { error: 'NotFound', message: 'no store holds "a"' } }, 3, 'NotFound'],
    ['someone else holds it', { status: 409, body: { error: 'LockHeld', message: 'm', holder: 'bob', since: T } }, 7, 'LockHeld'],
    ['an unknown store', { status: 400, body: { error: 'UnknownStore', message: 'unknown store' } }, 2, 'UnknownStore'],
    ['a bad ttl', { status: 400, body: { error: 'BadRequest', message: 'ttl is whole seconds' } }, 2, 'BadRequest'],
    ['a 404 of something else', { status: 404, body: { error: 'NoRoute' } }, 1, 'NoRoute'],
    ['a 201 without a lock', { status: 201, body: { ok: true } }, 1, 'BadResponse'],
  ])('maps %s to exit %i', async (_what, reply, exitCode, code) => {
    const { api } = fake(() => reply);
    await expect(lockFile(() => api, { ref: { name: 'a' } })).rejects.toMatchObject({ exitCode, code });
  });
});

describe('unlockFile', () => {
  it('unlocks your own lock at its store in one request when the server is done', async () => {
    const { api, ops } = fake((op) => (op.op === 'locks' ? { status: 200, body: { locks: [lock('f', 'server2', 'ann', 2)] } } : { status: 200, body: { key: 'f', store: 'server2', applied: 2, total: 2, done: true } }));
    const r = await unlockFile(() => api, unlockOpts(), unlockIo());
    expect(r).toMatchObject({ answer: { applied: 2, total: 2, done: true }, forced: false, waited: false, exitCode: 0 });
    expect(sends(ops)).toEqual([{ op: 'unlock', key: 'f', store: 'server2' }]);
  });

  it('refuses someone else\'s lock without force (7), and asks nothing of the server when it cannot ask you', async () => {
    const { api, ops } = fake(() => ({ status: 200, body: { locks: [lock('f', 'server1', 'bob', 0)] } }));
    await expect(unlockFile(() => api, unlockOpts(), unlockIo())).rejects.toMatchObject({ exitCode: 7, code: 'LockHeld', details: { holder: 'bob' } });
    await expect(unlockFile(() => api, unlockOpts({ force: true }), unlockIo())).rejects.toMatchObject({ exitCode: 2, code: 'ConfirmationNeeded' });
    expect(sends(ops)).toEqual([]);
  });

  it('lets the server decide when it cannot tell who you are', async () => {
    const { api, ops } = fake(
      (op) => (op.op === 'locks' ? { status: 200, body: { locks: [lock('f', 'server1', 'bob', 0)] } } : { status: 200, body: { applied: 0, total: 0, done: true } }),
      null,
    );
    expect((await unlockFile(() => api, unlockOpts(), unlockIo())).exitCode).toBe(0);
    expect(sends(ops)).toEqual([{ op: 'unlock', key: 'f', store: 'server1' }]);
  });

  it('reads a 403 as LockHeld when the lock changed hands since it looked (7), and as the token\'s when not', async () => {
    let holder = 'ann';
    const forbidden = new CliError(8, 'Forbidden', 'not allowed: …');
    const { api } = fake((op) => {
      if (op.op === 'locks') return { status: 200, body: { locks: [lock('f', 'server1', holder, 0)] } };
      holder = 'bob';
      throw forbidden;
    });
    await expect(unlockFile(() => api, unlockOpts(), unlockIo())).rejects.toMatchObject({ exitCode: 7, details: { holder: 'bob' } });
    holder = 'ann';
    const mine = fake((op) => {
      if (op.op === 'locks') return { status: 200, body: { locks: [lock('f', 'server1', 'ann', 0)] } };
      throw forbidden;
    });
    await expect(unlockFile(() => mine.api, unlockOpts(), unlockIo())).rejects.toBe(forbidden);
  });

  it('asks before dropping held updates, and sends nothing on no (1)', async () => {
    const asked: string[] = [];
    const { api, ops } = fake(() => ({ status: 200, body: { locks: [lock('f', 'server1', 'ann', 3)] } }));
    const confirm = async (q: string) => (asked.push(q), false);
    await expect(unlockFile(() => api, unlockOpts({ discard: true }), unlockIo({ confirm }))).rejects.toMatchObject({ exitCode: 1, code: 'Cancelled' });
    expect(asked).toEqual(['unlock f at server1, dropping its 3 held updates (never written into server1)? [y/N] ']);
    expect(sends(ops)).toEqual([]);
  });

  it('follows a 202 by polling until the lock is gone, the bar growing with the queue', async () => {
    const states = [lock('f', 'server1', 'ann', 5, { applied: 1 }), lock('f', 'server1', 'ann', 6, { applied: 4 }), undefined];
    let looks = 0;
    const { api, ops } = fake((op) => {
      if (op.op === 'locks') {
        const l = looks++ === 0 ? lock('f', 'server1', 'ann', 5) : states.shift();
        return { status: 200, body: { locks: l ? [l] : [] } };
      }
      return { status: 202, body: { key: 'f', store: 'server1', applied: 0, total: 5, done: false } };
    });
    const { shown, factory } = bars();
    const r = await unlockFile(() => api, unlockOpts(), unlockIo({ progress: factory }));
    expect(r).toMatchObject({ answer: { applied: 6, total: 6, done: true }, waited: true });
    expect(shown).toEqual([[0, 5], [1, 5], [4, 6], [-1, undefined]]);
    expect(sends(ops)).toHaveLength(1);
  });

  it('takes another lock in its place (a new since) for the old one gone', async () => {
    let looks = 0;
    const { api } = fake((op) => {
      if (op.op === 'locks') return { status: 200, body: { locks: [lock('f', 'server1', 'ann', 2, looks++ === 0 ? {} : { since: '2024-05-01T11:00:00.000Z' })] } };
      return { status: 202, body: { applied: 0, total: 2, done: false } };
    });
    expect((await unlockFile(() => api, unlockOpts(), unlockIo())).answer).toMatchObject({ done: true });
  });

  it('asks the server again when the count stops moving', async () => {
    const { api, ops } = fake((op) => {
      if (op.op === 'locks') return { status: 200, body: { locks: [lock('f', 'server1', 'bob', 4, { applied: 1 })] } };
      const again = sends(ops).length > 1;
      return again ? { status: 200, body: { applied: 4, total: 4, done: true } } : { status: 202, body: { applied: 1, total: 4, done: false } };
    });
    const r = await unlockFile(() => api, unlockOpts({ force: true, yes: true }), unlockIo({ stallMs: 5 }));
    expect(r).toMatchObject({ answer: { applied: 4, done: true }, forced: true, waited: true });
    expect(sends(ops)).toEqual([
      { op: 'unlock', key: 'f', store: 'server1', force: true },
      { op: 'unlock', key: 'f', store: 'server1', force: true },
    ]);
  });

  it('with wait off, returns the 202 as it is', async () => {
    const { api, ops } = fake((op) => (op.op === 'locks' ? { status: 200, body: { locks: [lock('f', 'server1', 'ann', 9)] } } : { status: 202, body: { applied: 3, total: 9, done: false } }));
    expect(await unlockFile(() => api, unlockOpts({ wait: false }), unlockIo())).toMatchObject({ answer: { applied: 3, total: 9, done: false }, waited: false });
    expect(ops.filter((o) => o.op === 'locks')).toHaveLength(1);
  });

  it('stops waiting on Ctrl-C (130), saying the unlock goes on by itself', async () => {
    const ctrl = new AbortController();
    const { api } = fake((op) => {
      if (op.op === 'locks') return { status: 200, body: { locks: [lock('f', 'server1', 'ann', 9, { applied: 3 })] } };
      setTimeout(() => ctrl.abort(), 5);
      return { status: 202, body: { applied: 3, total: 9, done: false } };
    });
    await expect(unlockFile(() => api, unlockOpts(), unlockIo({ signal: ctrl.signal, pollMs: 1000 }))).rejects.toMatchObject({
      exitCode: 130,
      message: 'stopped waiting: unlocking f at server1 goes on by itself (3 of 9 held updates applied so far); dfs locks shows how far',
    });
  });

  it('says a lock released meanwhile is not locked any more (3)', async () => {
    const { api } = fake((op) => (op.op === 'locks' ? { status: 200, body: { locks: [lock('f', 'server1', 'ann', 0)] } } : { status: 404, body: { error: 'NotFound', message: 'f is not locked at server1' } }));
    await expect(unlockFile(() => api, unlockOpts(), unlockIo())).rejects.toMatchObject({ exitCode: 3, code: 'NotLocked', message: 'f is not locked at server1 (any more)' });
  });
});
