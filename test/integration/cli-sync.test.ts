/**
 * Runs the real `node bin/dfs.js sync …` against a fake API (node:http on 127.0.0.1) that
 * answers POST /reconcile with a canned dry-run report and applies batches of POST /reconcile/apply.
 */
import type { ServerResponse } from 'node:http';
import type { PlanEntry, SyncReport } from '../../lib/types';
import { noRoute, runDfs, sendJson, useCliSandbox, type SeenRequest } from '../helpers/cli';

const COPY_B: PlanEntry = {
  key: 'fileB.txt',
  action: 'copy',
  from: 'server2',
  to: ['server1'],
  reason: 'server2 newer (2024-05-02T11:30:00.000Z vs server1 2024-05-01T10:00:00.000Z)',
};
const COPY_C: PlanEntry = { key: 'fileC.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1' };
const DELETE_X: PlanEntry = {
  key: 'x.txt',
  action: 'delete',
  from: ['server1'],
  deletedAt: '2024-05-03T08:00:00.000Z',
  reason: 'deleted at 2024-05-03T08:00:00.000Z, after the last write (2024-05-01T10:00:00.000Z)',
};

const report = (entries: PlanEntry[], extra: Partial<SyncReport> = {}): SyncReport => ({
  dryRun: true,
  counts: { match: 3, differ: 1, missing: { server1: 2, server2: 0 }, copies: 2, deletes: 1 },
  entries,
  unavailable: [],
  ...extra,
});

/** 250 copies: three apply batches (100, 100, 50). */
const MANY: PlanEntry[] = Array.from({ length: 250 }, (_, i) => ({ ...COPY_C, key: `bulk/${String(i).padStart(3, '0')}.txt` }));

interface Scenario {
  reconcile: { status: number; body: unknown };
  /** Keys POST /reconcile/apply reports as failed. */
  failing?: Record<string, string>;
  /** Answer this status to the Nth apply batch (1-based). */
  batchError?: { n: number; status: number };
}

let scenario: Scenario;

function serve(req: SeenRequest, res: ServerResponse): void {
  const body = req.body.toString('utf8');
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/reconcile') return sendJson(res, scenario.reconcile.status, scenario.reconcile.body);
  if (req.method === 'POST' && url.pathname === '/reconcile/apply') {
    const n = seen().filter((s) => s.url === 'POST /reconcile/apply').length;
    if (scenario.batchError?.n === n) return sendJson(res, scenario.batchError.status, { error: 'Internal' });
    const { entries } = JSON.parse(body) as { entries: PlanEntry[] };
    if (entries.length > 100) return sendJson(res, 400, { error: 'BadRequest', message: 'entries: at most 100' });
    const failed = entries.filter((e) => scenario.failing?.[e.key]).map((e) => ({ key: e.key, error: scenario.failing![e.key]! }));
    return sendJson(res, 200, { done: entries.length - failed.length, failed });
  }
  noRoute(req, res);
}

const sandbox = useCliSandbox(serve);
const seen = () => sandbox.api.requests.map((r) => ({ url: `${r.method} ${r.url}`, body: r.body.toString('utf8') }));

beforeEach(() => {
  scenario = { reconcile: { status: 200, body: report([COPY_B, COPY_C, DELETE_X]) } };
});

const dfs = (...args: string[]) => runDfs(args, { cwd: sandbox.home, env: sandbox.env() });

const batches = () => seen().filter((s) => s.url === 'POST /reconcile/apply').map((s) => (JSON.parse(s.body) as { entries: PlanEntry[] }).entries);

describe('dfs sync --dry-run', () => {
  it('prints counts first, then one line per step with its reason, and exits 4', async () => {
    const r = await dfs('sync', '--dry-run');
    expect(r).toMatchObject({ code: 4, stderr: '' });
    expect(r.stdout).toBe(
      [
        '3 matching files',
        '3 differences found',
        '1 file with different content',
        '2 files missing on server1',
        '0 files missing on server2',
        'copy    fileB.txt  server2 → server1  server2 newer (2024-05-02T11:30:00.000Z vs server1 2024-05-01T10:00:00.000Z)',
        'copy    fileC.txt  server2 → server1  missing on server1',
        'delete  x.txt      from server1       deleted at 2024-05-03T08:00:00.000Z, after the last write (2024-05-01T10:00:00.000Z)',
        'dry run: nothing changed; dfs sync would make 2 copies and 1 delete',
        '',
      ].join('\n'),
    );
    expect(seen().map((s) => s.url)).toEqual(['POST /reconcile?dryRun=1']);
  });

  it('exits 0 when nothing differs', async () => {
    scenario.reconcile.body = report([], { counts: { match: 4, differ: 0, missing: { server1: 0, server2: 0 }, copies: 0, deletes: 0 } });
    const r = await dfs('sync', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('4 matching files\n0 differences found\n0 files missing on server1\n0 files missing on server2\n');
  });

  it('warns about stores that did not answer (with --force)', async () => {
    scenario.reconcile.body = report([COPY_B], { unavailable: ['server3'] });
    const r = await dfs('sync', '--dry-run', '--force');
    expect(seen().map((s) => s.url)).toEqual(['POST /reconcile?dryRun=1&force=1']);
    expect(r.stderr).toBe('dfs: warning: server3 did not answer; the plan covers only the stores that did\n');
  });

  it('--json prints the report', async () => {
    const r = await dfs('sync', '--dry-run', '--json');
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stdout)).toEqual(report([COPY_B, COPY_C, DELETE_X]));
  });
});

describe('dfs sync', () => {
  it('applies the dry-run plan in batches of at most 100 and sums them up', async () => {
    scenario.reconcile.body = report(MANY);
    const r = await dfs('sync');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^3 matching files\n250 differences found\n/);
    expect(r.stdout.endsWith('applied 250 of 250 steps\n')).toBe(true);
    expect(r.stdout).not.toContain('dry run');
    // Failed events replayed first, then the plan (the fake API has no replay route: a 404, tolerated).
    expect(seen().slice(0, 2).map((x) => x.url)).toEqual(['POST /reconcile/replay', 'POST /reconcile?dryRun=1']);
    expect(batches().map((b) => b.length)).toEqual([100, 100, 50]);
    expect(batches().flat()).toEqual(MANY);
  });

  it('does nothing more when nothing differs', async () => {
    scenario.reconcile.body = report([], { counts: { match: 4, differ: 0, missing: {}, copies: 0, deletes: 0 } });
    const r = await dfs('sync');
    expect(r.code).toBe(0);
    expect(batches()).toEqual([]);
  });

  it('reports failed steps with their reasons and exits 1', async () => {
    scenario.failing = { 'fileC.txt': 'store server1 is unavailable' };
    const r = await dfs('sync');
    expect(r.code).toBe(1);
    expect(r.stdout.endsWith('applied 2 of 3 steps; 1 failed\n')).toBe(true);
    expect(r.stderr).toBe('failed  fileC.txt  store server1 is unavailable\ndfs: run dfs sync again to retry the failed steps\n');
  });

  it('stops at a batch the server fails, counting the rest as not attempted', async () => {
    scenario.reconcile.body = report(MANY);
    scenario.batchError = { n: 2, status: 500 };
    const r = await dfs('sync', '--json');
    expect(r.code).toBe(1);
    expect(batches().map((b) => b.length)).toEqual([100, 100]); // the third is never sent
    const out = JSON.parse(r.stdout);
    expect(out.dryRun).toBe(false);
    expect(out.applied).toMatchObject({ done: 100, notAttempted: 50, batches: 2 });
    expect(out.applied.failed).toHaveLength(100);
    expect(out.applied.failed[0].error).toBe('its batch failed (the server failed (500 Internal)); some of its steps may have run');
  });

  it('prints a safety guard refusal (409), suggests --force and exits 7', async () => {
    scenario.reconcile = {
      status: 409,
      body: { error: 'Conflict', message: 'server2 is completely empty while other stores are not: refusing (a wrong bucket?); use force to fill it' },
    };
    const r = await dfs('sync');
    expect(r.code).toBe(7);
    expect(r.stderr).toBe(
      'dfs: refused by a safety guard: server2 is completely empty while other stores are not: refusing (a wrong bucket?); add --force to fill it\n',
    );
    expect(batches()).toEqual([]);
    const j = await dfs('sync', '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ error: 'Conflict', hint: 'dfs sync --force' });
  });

  it('exits 5 when no store answered', async () => {
    scenario.reconcile = { status: 503, body: { error: 'Unavailable', message: 'no store answered', unavailable: ['server1', 'server2'] } };
    const r = await dfs('sync', '--dry-run');
    expect(r.code).toBe(5);
    expect(r.stderr).toBe('dfs: no store answered (server1, server2); nothing can be compared\n');
  });
});
