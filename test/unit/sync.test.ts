import { planName, type Observed } from '../../lib/sync';

/*
 * planName is the decision half of reconcile (STYLE.md point 4): pure, so every row of its
 * truth table is a plain call, no S3 and no mocks.
 */

const T = Date.UTC(2026, 0, 2, 3, 4, 5);
const iso = (ms: number) => new Date(ms).toISOString();
const S2 = ['server1', 'server2'];
const S3 = ['server1', 'server2', 'server3'];

type Copy = Observed['copies'][string];
/** A copy: `group` numbers equal contents; written (LastModified) when its mtime says unless told. */
const copy = (group: number, mtimeMs: number, over: Partial<Copy> = {}): Copy => ({
  size: 10,
  etag: `"etag-${group}"`,
  mtimeMs,
  writtenMs: mtimeMs,
  group,
  ...over,
});
const observed = (copies: Observed['copies'], tombstone?: number): Observed => ({
  key: 'k.txt',
  copies,
  ...(tombstone !== undefined ? { tombstone } : {}),
});

describe('planName', () => {
  it('has nothing to do when every store holds the same content', () => {
    expect(planName(S2, observed({ server1: copy(0, T), server2: copy(0, T) }))).toBeUndefined();
    expect(planName(S3, observed({ server1: copy(0, T), server2: copy(0, T + 5), server3: copy(0, T - 5) }))).toBeUndefined();
  });

  it('has nothing to do for a name no store holds', () => {
    expect(planName(S2, observed({}, T))).toBeUndefined();
  });

  it('copies a name missing on server1 from the store that has it', () => {
    expect(planName(S2, observed({ server2: copy(0, T) }))).toEqual({
      key: 'k.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1',
    });
  });

  it('copies a name missing on server2 from the store that has it', () => {
    expect(planName(S2, observed({ server1: copy(0, T) }))).toEqual({
      key: 'k.txt', action: 'copy', from: 'server1', to: ['server2'], reason: 'missing on server2',
    });
  });

  it('lets the newer logical mtime win when server2 is newer', () => {
    expect(planName(S2, observed({ server1: copy(0, T), server2: copy(1, T + 1000) }))).toEqual({
      key: 'k.txt', action: 'copy', from: 'server2', to: ['server1'],
      reason: `server2 newer (${iso(T + 1000)} vs server1 ${iso(T)})`,
    });
  });

  it('lets the newer logical mtime win when server1 is newer', () => {
    expect(planName(S2, observed({ server1: copy(0, T + 1000), server2: copy(1, T) }))).toEqual({
      key: 'k.txt', action: 'copy', from: 'server1', to: ['server2'],
      reason: `server1 newer (${iso(T + 1000)} vs server2 ${iso(T)})`,
    });
  });

  it('goes by the logical mtime, not by when S3 wrote the copy', () => {
    // server1's copy was written last (a replica, or a late upload) but carries the older mtime.
    const o = observed({ server1: copy(0, T, { writtenMs: T + 60_000 }), server2: copy(1, T + 1000) });
    expect(planName(S2, o)).toMatchObject({ from: 'server2', to: ['server1'] });
  });

  it('breaks an equal-mtime tie by ETag, the same way whatever the order of the stores', () => {
    const copies = { server1: copy(0, T, { etag: '"bbbb"' }), server2: copy(1, T, { etag: '"aaaa"' }) };
    const forward = planName(S2, observed(copies));
    const backward = planName([...S2].reverse(), observed(copies));
    expect(forward).toEqual({
      key: 'k.txt', action: 'copy', from: 'server1', to: ['server2'],
      reason: `server1 newer (${iso(T)} vs server2 ${iso(T)})`,
    });
    expect(backward).toEqual(forward);

    const swapped = { server1: copy(0, T, { etag: '"aaaa"' }), server2: copy(1, T, { etag: '"bbbb"' }) };
    expect(planName(S2, observed(swapped))).toMatchObject({ from: 'server2', to: ['server1'] });
    expect(planName([...S2].reverse(), observed(swapped))).toMatchObject({ from: 'server2', to: ['server1'] });
  });

  it('says "Sizes differ" with both sizes when the sizes differ', () => {
    const o = observed({ server1: copy(0, T, { size: 10 }), server2: copy(1, T + 1000, { size: 12 }) });
    expect(planName(S2, o)).toEqual({
      key: 'k.txt', action: 'copy', from: 'server2', to: ['server1'],
      reason: 'Sizes differ (server2 12 vs server1 10), server2 newer',
    });
  });

  it('deletes from the holders when the tombstone is newer than every surviving write', () => {
    const o = observed({ server1: copy(0, T - 5000, { writtenMs: T - 2000 }) }, T);
    expect(planName(S2, o)).toEqual({
      key: 'k.txt', action: 'delete', from: ['server1'], deletedAt: iso(T),
      reason: `deleted at ${iso(T)}, after the last write (${iso(T - 2000)})`,
    });
  });

  it('deletes every holder, even holders that disagree, when the tombstone is newer than all', () => {
    const o = observed({ server1: copy(0, T - 3000), server2: copy(1, T - 1000) }, T);
    expect(planName(S3, o)).toMatchObject({ action: 'delete', from: ['server1', 'server2'], deletedAt: iso(T) });
  });

  it('ignores a tombstone when every store holds the name (no store is missing it)', () => {
    const o = observed({ server1: copy(0, T - 3000), server2: copy(1, T - 1000) }, T);
    expect(planName(S2, o)).toMatchObject({ action: 'copy', from: 'server2', to: ['server1'] });
  });

  it('copies, not deletes, a name created after its tombstone (while the other store was away)', () => {
    const o = observed({ server2: copy(0, T + 10, { writtenMs: T + 1000 }) }, T);
    expect(planName(S2, o)).toEqual({
      key: 'k.txt', action: 'copy', from: 'server2', to: ['server1'], reason: 'missing on server1',
    });
  });

  it('goes by when S3 wrote the copy, not its logical mtime, against a tombstone', () => {
    // Uploaded after the delete with an old file's mtime: still a write after the delete.
    const o = observed({ server2: copy(0, T - 86_400_000, { writtenMs: T + 1000 }) }, T);
    expect(planName(S2, o)).toMatchObject({ action: 'copy', from: 'server2', to: ['server1'] });
  });

  it('keeps a name whose tombstone is exactly as old as its last write', () => {
    expect(planName(S2, observed({ server1: copy(0, T) }, T))).toMatchObject({ action: 'copy', to: ['server2'] });
  });

  it('with three stores and two groups, copies the newest group over the other and the gap', () => {
    const o = observed({ server1: copy(0, T), server2: copy(1, T + 1000) });
    expect(planName(S3, o)).toEqual({
      key: 'k.txt', action: 'copy', from: 'server2', to: ['server1', 'server3'],
      reason: `server2 newer (${iso(T + 1000)} vs server1 ${iso(T)}); missing on server3`,
    });
  });

  it('with three stores, leaves the stores already in the newest group alone', () => {
    const o = observed({ server1: copy(0, T + 1000), server2: copy(1, T), server3: copy(0, T + 1000) });
    expect(planName(S3, o)).toEqual({
      key: 'k.txt', action: 'copy', from: 'server1', to: ['server2'],
      reason: `server1 newer (${iso(T + 1000)} vs server2 ${iso(T)})`,
    });
  });

  it('with three stores, picks the same source whatever the store order', () => {
    const copies = { server1: copy(0, T, { etag: '"a"' }), server2: copy(1, T, { etag: '"c"' }), server3: copy(2, T, { etag: '"b"' }) };
    const orders = [S3, [...S3].reverse(), ['server2', 'server3', 'server1']];
    const plans = orders.map((stores) => planName(stores, observed(copies)));
    for (const p of plans) expect(p).toMatchObject({ action: 'copy', from: 'server2' });
    expect(new Set(plans.map((p) => (p && p.action === 'copy' ? [...p.to].sort().join() : '')))).toEqual(new Set(['server1,server3']));
  });
});
