/**
 * Runs the real `node bin/dfs.js rm …` against a fake API (node:http on 127.0.0.1); the
 * confirmation prompt, which needs a terminal, runs in-process with a stand-in question.
 */
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { run } from '../../cli/main';
import { noRoute, runDfs, sendJson, useCliSandbox, type SeenRequest } from '../helpers/cli';

const ok = (store: string) => ({ store, ok: true });
const MTIME = '2024-05-03T08:00:00.000Z';

function serve(req: SeenRequest, res: ServerResponse): void {
  const key = decodeURIComponent(req.url.replace(/^\/files\//, ''));
  if (req.method !== 'DELETE' || !req.url.startsWith('/files/')) return noRoute(req, res);
  switch (key) {
    case 'missing.txt':
      return sendJson(res, 404, { error: 'NotFound', message: 'no store holds "missing.txt"' });
    case 'half.txt':
      return sendJson(res, 207, { key, mtime: MTIME, results: [ok('server1'), { store: 'server2', ok: false, error: 'unavailable: the store did not answer; reconcile deletes it later' }] });
    case 'none.txt':
      return sendJson(res, 503, { key, mtime: MTIME, results: [{ store: 'server1', ok: false, error: 'AccessDenied' }, { store: 'server2', ok: false, error: 'AccessDenied' }] });
    case 'down.txt':
      return sendJson(res, 503, { error: 'Unavailable', message: 'no store answered (server1, server2)', unavailable: ['server1', 'server2'] });
    default:
      return sendJson(res, 200, { key, mtime: MTIME, results: [ok('server1'), ok('server2')] });
  }
}

const sandbox = useCliSandbox(serve);
const seen = () => sandbox.api.requests.map((r) => `${r.method} ${r.url}`);

/** The real CLI with stdin not a terminal (as in any script or pipe). */
const dfs = (...args: string[]) => runDfs(args, { cwd: sandbox.home, env: sandbox.env() });

describe('dfs rm', () => {
  it('-y deletes from every store without asking', async () => {
    const r = await dfs('rm', 'docs/a b.txt', '-y');
    expect(r).toEqual({ code: 0, stdout: 'deleted docs/a b.txt from server1, server2\n', stderr: '' });
    expect(seen()).toEqual(['DELETE /files/docs/a%20b.txt']);
  });

  it('refuses without -y when stdin is not a terminal: exit 2, nothing sent', async () => {
    const r = await dfs('rm', 'fileA.txt');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dfs: not deleting fileA.txt: stdin is not a terminal to confirm on; add -y to delete without asking\n');
    expect(seen()).toEqual([]);
  });

  it('exits 3 when no store holds the name', async () => {
    const r = await dfs('rm', 'missing.txt', '-y');
    expect(r).toEqual({ code: 3, stdout: '', stderr: 'dfs: missing.txt: not found on any store\n' });
  });

  it('exits 6 when some stores failed, naming each', async () => {
    const r = await dfs('rm', 'half.txt', '-y');
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('deleted half.txt from server1\n');
    expect(r.stderr).toBe('dfs: not deleted from server2: unavailable: the store did not answer; reconcile deletes it later\n');
  });

  it.each([
    ['per-store results', 'none.txt', 'dfs: none.txt was deleted from no store'],
    ['no store answering', 'down.txt', 'dfs: no store answered (server1, server2); nothing was deleted'],
  ])('exits 5 for a 503 with %s', async (_what, name, message) => {
    const r = await dfs('rm', name, '-y');
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(message);
  });

  it('refuses an invalid name before asking or sending', async () => {
    const r = await dfs('rm', 'a/../b');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid name "a/../b"');
    expect(seen()).toEqual([]);
  });

  describe('--json', () => {
    it('prints the API answer', async () => {
      const r = await dfs('rm', 'half.txt', '-y', '--json');
      expect(r.code).toBe(6);
      expect(JSON.parse(r.stdout)).toEqual({
        key: 'half.txt',
        mtime: MTIME,
        results: [{ store: 'server1', ok: true }, { store: 'server2', ok: false, error: 'unavailable: the store did not answer; reconcile deletes it later' }],
      });
    });

    it('prints refusals and NotFound as {"error","message"}', async () => {
      const nf = await dfs('rm', 'missing.txt', '-y', '--json');
      expect(nf.code).toBe(3);
      expect(JSON.parse(nf.stdout)).toEqual({ error: 'NotFound', message: 'missing.txt: not found on any store' });
      const noTty = await dfs('rm', 'fileA.txt', '--json');
      expect(noTty.code).toBe(2);
      expect(JSON.parse(noTty.stdout)).toMatchObject({ error: 'ConfirmationNeeded' });
    });
  });

  describe('on a terminal (in-process)', () => {
    async function withAnswer(yes: boolean, ...argv: string[]) {
      const io = { out: '', err: '', asked: [] as string[] };
      const code = await run(argv, {
        stdout: (t) => void (io.out += t),
        stderr: (t) => void (io.err += t),
        env: { DFS_ENDPOINT: sandbox.api.url, XDG_CONFIG_HOME: join(sandbox.home, 'config') },
        interactive: true,
        confirm: async (q) => {
          io.asked.push(q);
          return yes;
        },
      });
      return { code, ...io };
    }

    it('asks, and deletes on yes', async () => {
      const r = await withAnswer(true, 'rm', 'fileA.txt');
      expect(r.asked).toEqual(['delete fileA.txt from every store? [y/N] ']);
      expect(r.code).toBe(0);
      expect(seen()).toEqual(['DELETE /files/fileA.txt']);
    });

    it('sends nothing on no, exit 1', async () => {
      const r = await withAnswer(false, 'rm', 'fileA.txt');
      expect(r.code).toBe(1);
      expect(r.err).toBe('dfs: fileA.txt not deleted\n');
      expect(seen()).toEqual([]);
    });

    it('does not ask with -y', async () => {
      const r = await withAnswer(false, 'rm', 'fileA.txt', '-y');
      expect(r.asked).toEqual([]);
      expect(r.code).toBe(0);
    });
  });
});
