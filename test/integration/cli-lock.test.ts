/**
 * Runs the real `node bin/dfs.js lock|unlock|locks …` against a fake API (node:http on
 * 127.0.0.1) that keeps locks as handlers/api.ts does: who is the token's name, 409 LockHeld for
 * someone else's lock, 403 to unlock it without force, 404 for a file no store holds or a lock
 * that is not there, and a long unlock answered 202 and drained a little more at every GET /locks.
 * Its listing pages two names at a time, so indexes span pages. The questions, which need a
 * terminal, run in-process with a stand-in answer.
 */
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { run } from '../../cli/main';
import type { FileEntry, JournalEvent } from '../../lib/types';
import { noRoute, runDfs, sendJson, useCliSandbox, type SeenRequest } from '../helpers/cli';

const ANN = 'dfs_ann_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const BOB = 'dfs_bob_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const RO = 'dfs_ro_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';
const TOKENS: Record<string, { who: string; scope: 'read' | 'write' }> = { [ANN]: { who: 'ann', scope: 'write' }, [BOB]: { who: 'bob', scope: 'write' }, [RO]: { who: 'ro', scope: 'read' } };
const STORES = ['server1', 'server2'];
const T = '2024-05-01T10:00:00.000Z';
const EXPIRES = Date.parse('2024-05-01T11:00:00.000Z');

const entry = (name: string): FileEntry => ({ name, size: 1, mtime: T, state: 'same', stores: { server1: { size: 1, etag: 'e', mtime: T }, server2: { size: 1, etag: 'e', mtime: T } } });
/** In S3 byte order: "3" is a file's name, and also the index of fileC.txt. */
const FILES = ['3', 'fileA.txt', 'fileB.txt', 'fileC.txt', 'z/a b.txt'].map(entry);
const PAGE = 2;

interface Lock {
  key: string;
  store: string;
  holder: string;
  since: string;
  expires: number;
  reason?: string;
  next: number;
  applied: number;
  draining?: { by: string; since: string };
}

let locks: Lock[] = [];
/** Keys whose unlock answers 202 and drains 2 more at each GET /locks. */
const SLOW = 'z/a b.txt';
let events: JournalEvent[] = [];

const lockOf = (key: string, store: string, holder: string, held: number, extra: Partial<Lock> = {}): Lock => ({
  key, store, holder, since: T, expires: EXPIRES, next: held + 1, applied: 0, ...extra,
});

function serve(req: SeenRequest, res: ServerResponse): void {
  const url = new URL(req.url, 'http://x');
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  const me = token !== undefined ? TOKENS[token] : undefined;
  if (!me) return sendJson(res, 401, { error: 'Unauthorized', message: 'the token is not valid' });
  const write = req.method !== 'GET';
  if (write && me.scope !== 'write') return sendJson(res, 403, { error: 'Forbidden', message: `token "${me.who}" is read-only; this needs a write token` });

  if (url.pathname === '/files') {
    const page = Number((url.searchParams.get('after') ?? 'page-0').replace('page-', ''));
    const more = (page + 1) * PAGE < FILES.length;
    return sendJson(res, 200, { files: FILES.slice(page * PAGE, page * PAGE + PAGE), next: more ? `page-${page + 1}` : null, unavailable: [] });
  }
  if (url.pathname === '/events') return sendJson(res, 200, { events, next: events.at(-1)?.id ?? null, more: false });
  if (url.pathname === '/locks' && req.method === 'GET') {
    const out = locks.map((l) => ({ ...l }));
    // A long unlock goes on by itself: a little further at every look, then gone.
    for (const l of locks.filter((x) => x.draining)) {
      l.applied = Math.min(l.applied + 2, l.next - 1);
      if (l.applied === l.next - 1) locks = locks.filter((x) => x !== l);
    }
    return sendJson(res, 200, { locks: out });
  }
  if (!url.pathname.startsWith('/locks/')) return noRoute(req, res);

  const key = decodeURIComponent(url.pathname.slice('/locks/'.length));
  const store = url.searchParams.get('store') ?? STORES[0]!;
  if (!STORES.includes(store)) return sendJson(res, 400, { error: 'UnknownStore', message: `unknown store "${store}"; stores are: ${STORES.join(', ')}` });
  const held = locks.find((l) => l.key === key && l.store === store);
  if (req.method === 'POST') {
    if (!FILES.some((f) => f.name === key)) return sendJson(res, 404, { error: 'NotFound', message: `no store holds "${key}": there is nothing to lock` });
    const body = JSON.parse(req.body.toString() || '{}') as { reason?: string; ttl?: number };
    if (held && held.holder !== me.who) {
      return sendJson(res, 409, { error: 'LockHeld', message: `${key} is locked at ${store} by ${held.holder} since ${held.since}`, holder: held.holder, since: held.since });
    }
    const lock = held ?? lockOf(key, store, me.who, 0);
    lock.expires = Date.parse(T) + (body.ttl ?? 3600) * 1000;
    if (body.reason !== undefined) lock.reason = body.reason;
    if (!held) locks.push(lock);
    return sendJson(res, 201, lock);
  }
  if (req.method === 'DELETE') {
    if (!held) return sendJson(res, 404, { error: 'NotFound', message: `${key} is not locked at ${store}` });
    if (held.holder !== me.who && url.searchParams.get('force') !== '1') {
      return sendJson(res, 403, { error: 'Forbidden', message: `${key} at ${store} is locked by ${held.holder} since ${held.since}; unlock with force to take it over` });
    }
    const total = held.next - 1;
    if (url.searchParams.get('discard') === '1') {
      locks = locks.filter((l) => l !== held);
      return sendJson(res, 200, { key, store, applied: held.applied, total, done: true, discarded: total - held.applied });
    }
    if (key === SLOW) {
      held.draining = { by: me.who, since: T };
      held.applied = 1;
      return sendJson(res, 202, { key, store, applied: 1, total, done: false });
    }
    locks = locks.filter((l) => l !== held);
    return sendJson(res, 200, { key, store, applied: total, total, done: true });
  }
  noRoute(req, res);
}

const sandbox = useCliSandbox(serve);
const seen = () => sandbox.api.requests.map((r) => `${r.method} ${r.url}`);
const writes = () => seen().filter((r) => !r.startsWith('GET '));

beforeEach(() => {
  locks = [];
  events = [];
});

/** The real CLI with stdin not a terminal, as ann unless told. */
const dfs = (args: string[], token = ANN) => runDfs(args, { cwd: sandbox.home, env: sandbox.env({ DFS_TOKEN: token, TZ: 'UTC' }) });

describe('dfs lock', () => {
  it('locks the file at an INDEX of the listing, looked up page by page, and names it', async () => {
    const r = await dfs(['lock', '3']);
    expect(r).toEqual({
      code: 0,
      stdout: 'locked fileC.txt (#3) at server1 for ann until 2024-05-01 11:00\n',
      stderr: "others' writes into server1's copy are held until dfs unlock fileC.txt; dfs lock again renews it\n",
    });
    expect(seen()).toEqual(['GET /files?limit=1000', 'GET /files?after=page-1&limit=1000', 'POST /locks/fileC.txt']);
    expect(sandbox.api.requests.at(-1)!.body.toString()).toBe('{}');
  });

  it('takes ./NAME for a file whose name is a number, and a NAME as it is, without listing', async () => {
    const r = await dfs(['lock', './3', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ key: '3', store: 'server1', holder: 'ann' });
    const n = await dfs(['lock', 'z/a b.txt', '--at', 'server2', '--reason', 'final edits', '--ttl', '1h30m', '--json']);
    expect(n.code).toBe(0);
    expect(JSON.parse(n.stdout)).toEqual({ key: 'z/a b.txt', store: 'server2', holder: 'ann', since: T, expires: Date.parse(T) + 5400_000, reason: 'final edits', next: 1, applied: 0 });
    expect(seen()).toEqual(['POST /locks/3', 'POST /locks/z/a%20b.txt?store=server2']);
    expect(JSON.parse(sandbox.api.requests[1]!.body.toString())).toEqual({ reason: 'final edits', ttl: 5400 });
  });

  it('adds "index" to --json when the file was named by one', async () => {
    const r = await dfs(['lock', '0', '--json', '--ttl', '3600']);
    expect(JSON.parse(r.stdout)).toMatchObject({ key: '3', index: 0 });
  });

  it.each([
    ['a negative index', ['-1'], 'BadIndex', /index "-1" is negative: an index is the # that dfs ls prints, 0 to n-1; for a file with this name write \.\/-1/],
    ['a negative index after --', ['--', '-2'], 'BadIndex', /index "-2" is negative/],
    ['a fraction', ['1.5'], 'BadIndex', /index "1\.5" is not a whole number: .*write \.\/1\.5/],
    ['an exponent', ['1e3'], 'BadIndex', /not a whole number/],
    ['hex', ['0x1'], 'BadIndex', /not a whole number/],
    ['a sign', ['+1'], 'BadIndex', /not a whole number/],
    ['an invalid name', ['a/../b'], 'InvalidKey', /invalid name "a\/\.\.\/b"/],
    ['a ttl too short', ['1', '--ttl', '30s'], 'BadTtl', /out of range: a lock lasts from 1 minute to 7 days/],
    ['a ttl too long', ['1', '--ttl', '8d'], 'BadTtl', /out of range/],
    ['a ttl that is no duration', ['1', '--ttl', '2 hours'], 'BadTtl', /is not a duration/],
    ['a reason too long', ['1', '--reason', 'x'.repeat(201)], 'BadReason', /201 characters long; at most 200/],
  ])('refuses %s: exit 2, nothing sent', async (_what, args, error, message) => {
    const r = await dfs(['lock', '--json', ...args]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ error, message: expect.stringMatching(message) });
    expect(seen()).toEqual([]);
  });

  it('refuses an index past the end of the listing: exit 2 with the count, only the listing read', async () => {
    const r = await dfs(['lock', '5']);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: 'dfs: index 5 is out of range: dfs ls lists 5 files, 0 to 4\n' });
    expect(writes()).toEqual([]);
  });

  it('exits 3 for a file no store holds', async () => {
    const r = await dfs(['lock', 'nosuch.txt']);
    expect(r).toMatchObject({ code: 3, stderr: 'dfs: nosuch.txt: no store holds it; there is nothing to lock\n' });
  });

  it('exits 2 for an unknown store, with the server\'s words', async () => {
    const r = await dfs(['lock', 'fileA.txt', '--at', 'server9', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'UnknownStore', message: 'unknown store "server9"; stores are: server1, server2' });
  });

  it('exits 7 with the holder when someone else holds it', async () => {
    locks = [lockOf('fileA.txt', 'server1', 'bob', 2)];
    const r = await dfs(['lock', '1', '--json']);
    expect(r.code).toBe(7);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'LockHeld', message: `fileA.txt is locked at server1 by bob since ${T}`, holder: 'bob', since: T });
  });

  it('renews your own lock, saying how much is held so far', async () => {
    locks = [lockOf('fileA.txt', 'server1', 'ann', 2)];
    const r = await dfs(['lock', 'fileA.txt', '--ttl', '2h']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('locked fileA.txt at server1 for ann until 2024-05-01 12:00; 2 updates held so far\n');
  });
});

describe('dfs locks', () => {
  it('prints a table of every lock, and the API answer with --json', async () => {
    locks = [lockOf('fileA.txt', 'server1', 'ann', 3, { reason: 'editing', applied: 1, expires: Date.parse('2099-05-01T11:00:00Z') }), lockOf('z/a b.txt', 'server2', 'bob', 0, { expires: Date.parse('2020-01-01T00:00:00Z') })];
    const r = await dfs(['locks']);
    expect(r).toEqual({
      code: 0,
      stdout: [
        'NAME       STORE    HOLDER  SINCE             EXPIRES                     HELD  REASON',
        'fileA.txt  server1  ann     2024-05-01 10:00  2099-05-01 11:00            2     editing',
        'z/a b.txt  server2  bob     2024-05-01 10:00  2020-01-01 00:00 (expired)  0',
        '',
      ].join('\n'),
      stderr: '',
    });
    const j = await dfs(['locks', '--json'], RO);
    expect(JSON.parse(j.stdout)).toEqual({ locks });
  });

  it('says "no locks" on stderr when there are none', async () => {
    expect(await dfs(['locks'])).toEqual({ code: 0, stdout: '', stderr: 'no locks\n' });
  });
});

describe('dfs unlock', () => {
  it('applies the held updates of your own lock, found at its one store', async () => {
    locks = [lockOf('fileB.txt', 'server2', 'ann', 3)];
    const r = await dfs(['unlock', '2']);
    expect(r).toEqual({ code: 0, stdout: 'unlocked fileB.txt (#2) at server2: 3 held updates applied\n', stderr: '' });
    expect(writes()).toEqual(['DELETE /locks/fileB.txt?store=server2']);
    expect(locks).toEqual([]);
  });

  it('exits 3, changing nothing, when the file is not locked (there)', async () => {
    const r = await dfs(['unlock', 'fileB.txt', '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'NotLocked', message: 'fileB.txt is not locked' });
    locks = [lockOf('fileB.txt', 'server2', 'ann', 0)];
    const at = await dfs(['unlock', 'fileB.txt', '--at', 'server1']);
    expect(at).toMatchObject({ code: 3, stderr: 'dfs: fileB.txt is not locked at server1 (it is at server2)\n' });
    expect(writes()).toEqual([]);
  });

  it('asks for --at when the file is locked at several stores (exit 2)', async () => {
    locks = [lockOf('fileB.txt', 'server1', 'ann', 0), lockOf('fileB.txt', 'server2', 'ann', 0)];
    const r = await dfs(['unlock', 'fileB.txt']);
    expect(r).toMatchObject({ code: 2, stderr: 'dfs: fileB.txt is locked at server1, server2: say which with --at STORE\n' });
    expect((await dfs(['unlock', 'fileB.txt', '--at', 'server2'])).code).toBe(0);
    expect(writes()).toEqual(['DELETE /locks/fileB.txt?store=server2']);
  });

  it('refuses someone else\'s lock without --force: exit 7 naming the holder, nothing sent', async () => {
    locks = [lockOf('fileB.txt', 'server1', 'bob', 2, { reason: 'release notes' })];
    const r = await dfs(['unlock', 'fileB.txt', '--json']);
    expect(r.code).toBe(7);
    expect(JSON.parse(r.stdout)).toEqual({
      error: 'LockHeld',
      message: `fileB.txt is locked at server1 by bob since ${T} (release notes), with 2 held updates; --force takes the lock over and unlocks it`,
      holder: 'bob',
      since: T,
      store: 'server1',
    });
    expect(writes()).toEqual([]);
  });

  it('--force on someone else\'s lock needs -y when there is no terminal to ask on', async () => {
    locks = [lockOf('fileB.txt', 'server1', 'bob', 2)];
    const r = await dfs(['unlock', 'fileB.txt', '--force']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`dfs: not unlocking fileB.txt: it is locked at server1 by bob since ${T}; stdin is not a terminal to confirm on; add -y to unlock without asking\n`);
    expect(writes()).toEqual([]);
    const y = await dfs(['unlock', 'fileB.txt', '--force', '-y']);
    expect(y).toEqual({ code: 0, stdout: "unlocked fileB.txt at server1, bob's lock taken over: 2 held updates applied\n", stderr: '' });
    expect(writes()).toEqual(['DELETE /locks/fileB.txt?store=server1&force=1']);
  });

  it('--force on your own lock asks nothing', async () => {
    locks = [lockOf('fileB.txt', 'server1', 'ann', 2)];
    const r = await dfs(['unlock', 'fileB.txt', '--force', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ key: 'fileB.txt', store: 'server1', applied: 2, total: 2, done: true, holder: 'ann', forced: false, waited: false });
  });

  it('--discard drops held updates only with -y when there is no terminal, and not at all with none held', async () => {
    locks = [lockOf('fileB.txt', 'server1', 'ann', 3)];
    const r = await dfs(['unlock', 'fileB.txt', '--discard']);
    expect(r).toMatchObject({ code: 2, stderr: 'dfs: not unlocking fileB.txt: 3 held updates would be dropped; stdin is not a terminal to confirm on; add -y to unlock without asking\n' });
    expect(writes()).toEqual([]);
    const y = await dfs(['unlock', 'fileB.txt', '--discard', '-y']);
    expect(y).toMatchObject({ code: 0, stdout: 'unlocked fileB.txt at server1: 3 held updates dropped\n' });
    expect(writes()).toEqual(['DELETE /locks/fileB.txt?store=server1&discard=1']);
    locks = [lockOf('fileA.txt', 'server1', 'ann', 0)];
    expect(await dfs(['unlock', 'fileA.txt', '--discard'])).toMatchObject({ code: 0, stdout: 'unlocked fileA.txt at server1: 0 held updates dropped\n' });
  });

  it('follows a long unlock (202) by polling GET /locks until the lock is gone', async () => {
    locks = [lockOf(SLOW, 'server1', 'ann', 6)];
    const r = await dfs(['unlock', '4', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ key: SLOW, store: 'server1', applied: 6, total: 6, done: true, holder: 'ann', forced: false, waited: true, index: 4 });
    // One look before the DELETE, then looks until the lock was gone: 1 → 3 → 5 → 6, gone.
    expect(seen().filter((q) => q === 'GET /locks').length).toBeGreaterThanOrEqual(4);
    expect(writes()).toEqual(['DELETE /locks/z/a%20b.txt?store=server1']);
  }, 20_000);

  it('--no-wait leaves a long unlock going on by itself', async () => {
    locks = [lockOf(SLOW, 'server1', 'ann', 6)];
    const r = await dfs(['unlock', SLOW, '--no-wait']);
    expect(r).toEqual({
      code: 0,
      stdout: 'unlocking z/a b.txt at server1 goes on by itself: 1 of 6 held updates applied so far\n',
      stderr: 'dfs locks shows how far it got; dfs watch shows each update as it is applied\n',
    });
    expect(seen()).toEqual(['GET /locks', 'DELETE /locks/z/a%20b.txt?store=server1']);
  });

  it('refuses the bad indexes lock refuses, before any request', async () => {
    for (const bad of ['-1', '1.5', '0x1', '+2']) {
      const r = await dfs(['unlock', bad]);
      expect([bad, r.code]).toEqual([bad, 2]);
    }
    const out = await dfs(['unlock', '99']);
    expect(out).toMatchObject({ code: 2, stderr: 'dfs: index 99 is out of range: dfs ls lists 5 files, 0 to 4\n' });
    expect(writes()).toEqual([]);
  });

  it('exits 8 for a read-only token, even with --force', async () => {
    locks = [lockOf('fileB.txt', 'server1', 'bob', 0)];
    const r = await dfs(['unlock', 'fileB.txt', '--force', '-y'], RO);
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/^dfs: not allowed: token "ro" is read-only/);
  });

  describe('on a terminal (in-process)', () => {
    async function withAnswer(yes: boolean, ...argv: string[]) {
      const io = { out: '', err: '', asked: [] as string[] };
      const code = await run(argv, {
        stdout: (t) => void (io.out += t),
        stderr: (t) => void (io.err += t),
        env: { DFS_ENDPOINT: sandbox.api.url, DFS_TOKEN: ANN, XDG_CONFIG_HOME: join(sandbox.home, 'config'), DFS_DATA_DIR: join(sandbox.home, 'none') },
        interactive: false,
        confirm: async (q) => {
          io.asked.push(q);
          return yes;
        },
      });
      return { code, ...io };
    }

    it('shows whose lock it is before taking it over, and sends nothing on no (exit 1)', async () => {
      locks = [lockOf('fileB.txt', 'server1', 'bob', 2, { reason: 'release notes' })];
      const no = await withAnswer(false, 'unlock', 'fileB.txt', '--force');
      expect(no.asked).toEqual([
        `fileB.txt is locked at server1 by bob since ${T} (release notes). Take over bob's lock and unlock it, applying its 2 held updates? [y/N] `,
      ]);
      expect(no).toMatchObject({ code: 1, err: 'dfs: fileB.txt not unlocked\n' });
      expect(writes()).toEqual([]);
      const yes = await withAnswer(true, 'unlock', 'fileB.txt', '--force', '--discard');
      expect(yes.asked[0]).toMatch(/Take over bob's lock and unlock it, dropping its 2 held updates \(never written into server1\)\? \[y\/N\] $/);
      expect(yes.code).toBe(0);
      expect(writes()).toEqual(['DELETE /locks/fileB.txt?store=server1&force=1&discard=1']);
    });

    it('shows how many updates --discard drops before asking', async () => {
      locks = [lockOf('fileB.txt', 'server1', 'ann', 1)];
      const r = await withAnswer(true, 'unlock', 'fileB.txt', '--discard');
      expect(r.asked).toEqual(['unlock fileB.txt at server1, dropping its 1 held update (never written into server1)? [y/N] ']);
      expect(r.out).toBe('unlocked fileB.txt at server1: 1 held update dropped\n');
    });
  });
});

describe('dfs watch', () => {
  it('shows lock events readably: who locked, what was queued as which entry, how far the unlock got', async () => {
    const ev = (n: number, e: Omit<JournalEvent, 'id' | 'time'>): JournalEvent => ({ id: `0017145576000${n}-0000000${n}`, time: `2024-05-01T10:00:0${n}.000Z`, ...e });
    events = [
      ev(1, { action: 'locked', key: 'fileB.txt', who: 'ann', to: ['server1'], reason: 'until 2024-05-01T11:00:00.000Z: editing' }),
      ev(2, { action: 'queued', key: 'fileB.txt', who: 'server2 (direct)', to: ['server1'], reason: 'update held as #1: fileB.txt is locked at server1' }),
      ev(3, { action: 'queued', key: 'fileB.txt', who: 'bob', to: ['server1'], reason: 'delete (deleted by bob) held as #2: fileB.txt is locked at server1' }),
      ev(4, { action: 'applied', key: 'fileB.txt', who: 'ann', to: ['server1'], reason: 'held update 1/2' }),
      ev(5, { action: 'applied', key: 'fileB.txt', who: 'ann', to: ['server1'], reason: 'held update 2/2' }),
      ev(6, { action: 'unlocked', key: 'fileB.txt', who: 'ann', to: ['server1'], reason: '2 held update(s) applied' }),
    ];
    const r = await runDfs(['watch', '--count', '6'], { cwd: sandbox.home, env: sandbox.env({ DFS_TOKEN: ANN, TZ: 'UTC' }) });
    expect(r).toEqual({
      code: 0,
      stdout: [
        '10:00:01  server1  fileB.txt  locked by ann until 2024-05-01 11:00 (editing)',
        '10:00:02  server1  fileB.txt  queued #1 (update by server2 (direct); locked by ann)',
        '10:00:03  server1  fileB.txt  queued #2 (delete (deleted by bob) by bob; locked by ann)',
        '10:00:04  server1  fileB.txt  applied 1/2 (unlock by ann)',
        '10:00:05  server1  fileB.txt  applied 2/2 (unlock by ann)',
        '10:00:06  server1  fileB.txt  unlocked by ann (2 held update(s) applied)',
        '',
      ].join('\n'),
      stderr: '',
    });
  });
});
