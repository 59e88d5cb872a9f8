/**
 * Runs the real `node bin/dfs.js ls …` against a fake API (node:http on 127.0.0.1) that pages
 * its listing two names at a time, so every listing here spans several pages.
 */
import type { ServerResponse } from 'node:http';
import type { FileEntry, StoreEntry } from '../../lib/types';
import { noRoute, runDfs, sendJson, useCliSandbox, type SeenRequest } from '../helpers/cli';

const T1 = '2024-05-01T10:00:00.000Z';
const T2 = '2024-05-02T11:30:45.000Z';

const copy = (size: number, etag: string, mtime = T1): StoreEntry => ({ size, etag, mtime });
const entry = (name: string, size: number, state: FileEntry['state'], stores: FileEntry['stores'], mtime = T1): FileEntry => ({ name, size, mtime, state, stores });

const FILES: FileEntry[] = [
  entry('big.bin', 3 * 1024 * 1024 + 4321, 'unverified', { server1: copy(3149049, 'a-2'), server2: copy(3149049, 'b-3') }, T2),
  entry('docs/report.pdf', 1234, 'same', { server1: copy(1234, 'r'), server2: copy(1234, 'r') }),
  entry('fileA.txt', 40, 'same', { server1: copy(40, 'a'), server2: copy(40, 'a') }),
  entry('fileB.txt', 50, 'different', { server1: copy(28, 'b1'), server2: copy(50, 'b2', T2) }, T2),
  entry('fileC.txt', 34, 'partial', { server1: null, server2: copy(34, 'c') }),
  entry('multi.bin', 9 * 1024 * 1024, 'unverified', { server1: copy(9437184, 'm-2'), server2: copy(9437184, 'n-2') }),
  entry('zeta.txt', 1, 'same', { server1: copy(1, 'z'), server2: copy(1, 'z') }),
];
const PAGE = 2;

/** What the listing answers: normal, or a failure on some page. */
let mode: 'normal' | 'down' | 'fail-page-2' | 'server2-away-on-page-2' | 'empty' = 'normal';

const EXPIRES = Date.parse('2024-05-02T12:00:00.000Z');
const lock = (key: string, store: string, holder: string, next: number, applied: number, reason?: string) => ({
  key, store, holder, since: T2, expires: EXPIRES, next, applied, ...(reason !== undefined ? { reason } : {}),
});
/** What GET /locks answers: the locks, or 'old' for an API without the route. */
let locks: ReturnType<typeof lock>[] | 'old' = [];

function serve(req: SeenRequest, res: ServerResponse): void {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/locks') {
    if (locks === 'old') return sendJson(res, 404, { error: 'NoRoute', message: 'no route for GET /locks' });
    return sendJson(res, 200, { locks });
  }
  if (url.pathname === '/files') {
    if (mode === 'down') return sendJson(res, 503, { error: 'Unavailable', message: 'no store answered (server1, server2)', unavailable: ['server1', 'server2'] });
    const prefix = url.searchParams.get('prefix') ?? '';
    const after = url.searchParams.get('after');
    const files = mode === 'empty' ? [] : FILES.filter((f) => f.name.startsWith(prefix));
    // The cursor is opaque to the CLI: here "page-N" with N the page to serve.
    const page = after ? Number(after.replace('page-', '')) : 0;
    if (mode === 'fail-page-2' && page === 1) return sendJson(res, 500, { error: 'Internal' });
    const slice = files.slice(page * PAGE, page * PAGE + PAGE);
    const more = (page + 1) * PAGE < files.length;
    const away = mode === 'server2-away-on-page-2' && page === 1;
    const shown = away ? slice.map((f) => ({ ...f, stores: { server1: f.stores.server1 ?? null } })) : slice;
    return sendJson(res, 200, { files: shown, next: more ? `page-${page + 1}` : null, unavailable: away ? ['server2'] : [] });
  }
  if (url.pathname.startsWith('/files/') && url.searchParams.get('meta') === '1') {
    const key = decodeURIComponent(url.pathname.slice('/files/'.length));
    if (key === 'big.bin') {
      return sendJson(res, 200, {
        status: 'SINGLE', key, unavailable: [],
        copies: [{ store: 'server1', size: 3149049, etag: 'a-2', mtime: T2 }, { store: 'server2', size: 3149049, etag: 'b-3', mtime: T2 }],
      });
    }
    if (key === 'multi.bin') {
      return sendJson(res, 200, {
        status: 'DIFFERENT', key, unavailable: [],
        versions: [
          { stores: ['server1'], size: 9437184, etag: 'm-2', mtime: T1, newest: false },
          { stores: ['server2'], size: 9437184, etag: 'n-2', mtime: T2, newest: true },
        ],
      });
    }
  }
  noRoute(req, res);
}

const sandbox = useCliSandbox(serve);
const seen = () => sandbox.api.requests.map((r) => r.url);

beforeEach(() => {
  mode = 'normal';
  locks = [];
});

const dfs = (...args: string[]) => runDfs(args, { cwd: sandbox.home, env: sandbox.env({ TZ: 'UTC' }) });

const listCalls = () => seen().filter((u) => u.startsWith('/files?') || u === '/files');

describe('dfs ls', () => {
  it('follows next through every page, numbering names 0..n-1 across pages, like ls -l', async () => {
    const r = await dfs('ls');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(
      [
        '#  NAME                SIZE  MODIFIED          STATE       STORES',
        '0  big.bin          3.0 MiB  2024-05-02 11:30  unverified  server1,server2',
        '1  docs/report.pdf  1.2 KiB  2024-05-01 10:00  same        server1,server2',
        '2  fileA.txt           40 B  2024-05-01 10:00  same        server1,server2',
        '3  fileB.txt           50 B  2024-05-02 11:30  different   server1,server2',
        '4  fileC.txt           34 B  2024-05-01 10:00  partial     server2 (missing: server1)',
        '5  multi.bin        9.0 MiB  2024-05-01 10:00  unverified  server1,server2',
        '6  zeta.txt             1 B  2024-05-01 10:00  same        server1,server2',
        '',
      ].join('\n'),
    );
    expect(listCalls()).toEqual(['/files?limit=1000', '/files?after=page-1&limit=1000', '/files?after=page-2&limit=1000', '/files?after=page-3&limit=1000']);
  });

  it('passes PREFIX and pages within it', async () => {
    const r = await dfs('ls', 'file');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(1, -1).map((l) => l.split(/ +/).slice(0, 2).join(' '))).toEqual(['0 fileA.txt', '1 fileB.txt', '2 fileC.txt']);
    expect(listCalls()).toEqual(['/files?prefix=file&limit=1000', '/files?prefix=file&after=page-1&limit=1000']);
  });

  it('--verify settles unverified rows with metadata reads only, and reads nothing else', async () => {
    const r = await dfs('ls', '--verify');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^0 {2}big\.bin .* same {8}server1,server2$/m);
    expect(r.stdout).toMatch(/^5 {2}multi\.bin .* different {3}server1,server2$/m);
    const reads = seen().filter((u) => u.startsWith('/files/')).sort();
    expect(reads).toEqual(['/files/big.bin?meta=1', '/files/multi.bin?meta=1']);
  });

  it('warns once about a store that did not answer, on stderr', async () => {
    mode = 'server2-away-on-page-2';
    const r = await dfs('ls');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('dfs: warning: server2 did not answer; states cover only the stores that did\n');
    expect(r.stdout).toContain('2  fileA.txt');
  });

  it('says so on stderr when nothing matches', async () => {
    const r = await dfs('ls', 'nothing/');
    expect(r).toEqual({ code: 0, stdout: '', stderr: 'no files starting with nothing/\n' });
  });

  it('exits 5 when no store answered', async () => {
    mode = 'down';
    const r = await dfs('ls');
    expect(r.code).toBe(5);
    expect(r.stderr).toBe('dfs: no store answered (server1, server2); nothing can be listed\n');
  });

  it('keeps the pages printed before a failure and exits with the failure', async () => {
    mode = 'fail-page-2';
    const r = await dfs('ls');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')).toHaveLength(4); // header, two rows, final newline
    expect(r.stderr).toBe('dfs: the server failed (500 Internal)\n');
  });

  describe('locks', () => {
    beforeEach(() => {
      locks = [lock('fileB.txt', 'server1', 'ann', 4, 0, 'editing'), lock('fileB.txt', 'server2', 'bob', 1, 0), lock('fileC.txt', 'server2', 'ann', 6, 4)];
    });

    it('reads GET /locks once per listing and shows a LOCK column, aligned, holder@store(held)', async () => {
      const r = await dfs('ls');
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout.split('\n').slice(0, 6)).toEqual([
        '#  NAME                SIZE  MODIFIED          STATE       LOCK                           STORES',
        '0  big.bin          3.0 MiB  2024-05-02 11:30  unverified  -                              server1,server2',
        '1  docs/report.pdf  1.2 KiB  2024-05-01 10:00  same        -                              server1,server2',
        '2  fileA.txt           40 B  2024-05-01 10:00  same        -                              server1,server2',
        '3  fileB.txt           50 B  2024-05-02 11:30  different   ann@server1(3),bob@server2(0)  server1,server2',
        '4  fileC.txt           34 B  2024-05-01 10:00  partial     ann@server2(1)                 server2 (missing: server1)',
      ]);
      expect(seen().filter((u) => u === '/locks')).toHaveLength(1);
      // After the first page, before any row is printed.
      expect(seen().slice(0, 2)).toEqual(['/files?limit=1000', '/locks']);
    });

    it('leaves the column out when no name under PREFIX is locked', async () => {
      const r = await dfs('ls', 'docs/');
      expect(r.stdout.split('\n')[0]).toBe('#  NAME                SIZE  MODIFIED          STATE       STORES');
      const c = await dfs('ls', 'fileC');
      expect(c.stdout.split('\n')[1]).toBe('0  fileC.txt  34 B  2024-05-01 10:00  partial     ann@server2(1)  server2 (missing: server1)');
    });

    it('--json carries "lock" per file: null, or the lock by store', async () => {
      const r = await dfs('ls', '--json');
      const out = JSON.parse(r.stdout);
      expect(out.files[0].lock).toBeNull();
      expect(out.files[3].lock).toEqual({
        server1: { holder: 'ann', since: T2, expires: EXPIRES, held: 3, reason: 'editing' },
        server2: { holder: 'bob', since: T2, expires: EXPIRES, held: 0 },
      });
      expect(out.files[4].lock).toEqual({ server2: { holder: 'ann', since: T2, expires: EXPIRES, held: 1 } });
      expect(out.lockError).toBeUndefined();
    });

    it('lists without locks, saying why, when they cannot be read (an older API)', async () => {
      locks = 'old';
      const r = await dfs('ls');
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('dfs: warning: locks not shown: the server has no such route (404: no route for GET /locks); is the endpoint the dfs API?\n');
      expect(r.stdout).not.toContain('LOCK');
      const j = await dfs('ls', '--json');
      const out = JSON.parse(j.stdout);
      expect(j.stderr).toBe('');
      expect(out.files[0]).not.toHaveProperty('lock');
      expect(out.lockError).toMatch(/no such route/);
    });
  });

  describe('--json', () => {
    it('prints {"files": […with "index"…], "unavailable"} across pages', async () => {
      mode = 'server2-away-on-page-2';
      const r = await dfs('ls', '--json');
      expect(r).toMatchObject({ code: 0, stderr: '' });
      const out = JSON.parse(r.stdout);
      expect(out.files.map((f: { index: number }) => f.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      expect(out.files[0]).toEqual({ index: 0, ...FILES[0], lock: null });
      expect(out).toMatchObject({ unavailable: ['server2'], count: 7, pages: 4 });
      expect(out.verified).toBeUndefined();
      // Streamed: one file per line.
      expect(r.stdout.split('\n').filter((l) => l.startsWith('{"'))).toHaveLength(8);
    });

    it('marks verified rows and counts them', async () => {
      const r = await dfs('ls', '--json', '--verify');
      const out = JSON.parse(r.stdout);
      expect(out.files[0]).toMatchObject({ name: 'big.bin', state: 'same', verified: true });
      expect(out.files[5]).toMatchObject({ name: 'multi.bin', state: 'different', verified: true });
      expect(out.files[1].verified).toBeUndefined();
      expect(out.verified).toBe(2);
    });

    it('prints an empty listing as valid JSON', async () => {
      mode = 'empty';
      const r = await dfs('ls', '--json');
      expect(JSON.parse(r.stdout)).toEqual({ files: [], unavailable: [], count: 0, pages: 1 });
    });

    it('closes the document with the error when a later page fails', async () => {
      mode = 'fail-page-2';
      const r = await dfs('ls', '--json');
      expect(r.code).toBe(1);
      const out = JSON.parse(r.stdout);
      expect(out.files).toHaveLength(2);
      expect(out).toMatchObject({ error: 'Internal', message: 'the server failed (500 Internal)' });
    });

    it('prints a first-page failure as {"error","message"}', async () => {
      mode = 'down';
      const r = await dfs('ls', '--json');
      expect(r.code).toBe(5);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: 'Unavailable', unavailable: ['server1', 'server2'] });
    });
  });
});
