import type { ApiOp, Transport } from '../../cli/client';
import { APPLY_BATCH, reportOf, syncStores } from '../../cli/sync';
import { noProgress } from '../../cli/progress';
import type { PlanEntry } from '../../lib/types';

const copy = (key: string): PlanEntry => ({ key, action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1' });
const counts = { match: 0, differ: 0, missing: { server1: 0 }, copies: 0, deletes: 0 };

type Answer = { status: number; body: unknown };

function fakeApi(
  entries: PlanEntry[],
  apply: (batch: PlanEntry[], n: number) => Answer = (b) => ({ status: 200, body: { done: b.length, failed: [] } }),
  replay: () => Answer = () => ({ status: 200, body: { replayed: 0, failed: 0 } }),
) {
  const ops: ApiOp[] = [];
  let n = 0;
  const api: Transport = {
    async send(op) {
      ops.push(op);
      if (op.op === 'replayFailures') return replay();
      if (op.op === 'reconcile') return { status: 200, body: { dryRun: true, counts, entries, unavailable: [] } };
      if (op.op === 'applyPlan') return apply(op.entries, (n += 1));
      throw new Error(`unexpected ${op.op}`);
    },
  };
  return { api, ops };
}

const io = (signal = new AbortController().signal) => ({ progress: noProgress, signal });

describe('syncStores', () => {
  it('applies the plan in batches of the API\'s largest size', async () => {
    const entries = Array.from({ length: APPLY_BATCH * 2 + 1 }, (_, i) => copy(`k${i}`));
    const { api, ops } = fakeApi(entries);
    const r = await syncStores(() => api, { dryRun: false, force: true }, io());
    expect(ops.slice(0, 2)).toEqual([{ op: 'replayFailures' }, { op: 'reconcile', dryRun: true, force: true }]);
    expect(ops.slice(2).map((o) => (o.op === 'applyPlan' ? o.entries.length : -1))).toEqual([100, 100, 1]);
    expect(r).toMatchObject({ exitCode: 0, applied: { done: 201, failed: [], notAttempted: 0, batches: 3 } });
  });

  it('replays the failed events before it asks for the plan, even when nothing differs', async () => {
    const { api, ops } = fakeApi([]);
    expect((await syncStores(() => api, { dryRun: false, force: false }, io())).exitCode).toBe(0);
    expect(ops).toEqual([{ op: 'replayFailures' }, { op: 'reconcile', dryRun: true, force: false }]);
  });

  it('replays nothing on a dry run: it writes nothing', async () => {
    const { api, ops } = fakeApi([copy('a')]);
    await syncStores(() => api, { dryRun: true, force: false }, io());
    expect(ops).toEqual([{ op: 'reconcile', dryRun: true, force: false }]);
  });

  it('goes on when the server has no replay route (404: an older server)', async () => {
    const { api, ops } = fakeApi([copy('a')], undefined, () => ({ status: 404, body: { error: 'NotFound', message: 'no route' } }));
    expect(await syncStores(() => api, { dryRun: false, force: false }, io())).toMatchObject({ exitCode: 0, applied: { done: 1 } });
    expect(ops.map((o) => o.op)).toEqual(['replayFailures', 'reconcile', 'applyPlan']);
  });

  it('stops before the plan when the replay fails otherwise, sending nothing more', async () => {
    const { api, ops } = fakeApi([copy('a')], undefined, () => ({ status: 503, body: { error: 'StoreUnavailable', message: 'control unavailable' } }));
    await expect(syncStores(() => api, { dryRun: false, force: false }, io())).rejects.toMatchObject({
      exitCode: 5,
      message: 'no store answered; nothing was replayed',
    });
    expect(ops).toEqual([{ op: 'replayFailures' }]);
  });

  it('exits 4 for a dry run that found differences, 0 for one that did not', async () => {
    expect((await syncStores(() => fakeApi([copy('a')]).api, { dryRun: true, force: false }, io())).exitCode).toBe(4);
    expect((await syncStores(() => fakeApi([]).api, { dryRun: true, force: false }, io())).exitCode).toBe(0);
  });

  it('sends no further batch once interrupted, and says how far it got (exit 130)', async () => {
    const ctrl = new AbortController();
    const entries = Array.from({ length: 250 }, (_, i) => copy(`k${i}`));
    const { api, ops } = fakeApi(entries, (b) => {
      ctrl.abort();
      return { status: 200, body: { done: b.length, failed: [] } };
    });
    await expect(syncStores(() => api, { dryRun: false, force: false }, io(ctrl.signal))).rejects.toMatchObject({
      exitCode: 130,
      message: 'interrupted: 100 of 250 steps applied; run dfs sync again to finish',
    });
    expect(ops.filter((o) => o.op === 'applyPlan')).toHaveLength(1);
  });

  it('refuses an apply answer that does not account for every step', async () => {
    const { api } = fakeApi([copy('a'), copy('b')], () => ({ status: 200, body: { done: 1, failed: [] } }));
    const r = await syncStores(() => api, { dryRun: false, force: false }, io());
    expect(r.exitCode).toBe(1);
    expect(r.applied!.failed.map((f) => f.error)).toEqual([expect.stringContaining('accounted for 1 of 2 steps'), expect.any(String)]);
  });
});

describe('reportOf', () => {
  it('maps a guard\'s 409 to exit 7 with a hint', () => {
    expect(() => reportOf({ status: 409, body: { error: 'Conflict', message: 'server2 unavailable' } })).toThrow(
      expect.objectContaining({ exitCode: 7, code: 'Conflict', message: 'refused by a safety guard: server2 unavailable; add --force to go on anyway' }),
    );
  });

  it('fills in missing counts and refuses entries without an action', () => {
    expect(reportOf({ status: 200, body: { dryRun: true, counts: {}, entries: [] } }).counts).toEqual({ match: 0, differ: 0, missing: {}, copies: 0, deletes: 0 });
    expect(() => reportOf({ status: 200, body: { counts: {}, entries: [{ key: 'a', action: 'move' }] } })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
  });
});
