import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  addIntents,
  CALLS_ENDED_ATTEMPTS,
  classifyDelete,
  CLOCK_SKEW_MS,
  closeIntent,
  compareSequencers,
  failIntent,
  INTENT_KEEP_MS,
  INTENT_WINDOW_MS,
  isDeadUnder,
  listTombstones,
  prune,
  readTombstone,
  recordCallsEnded,
  recordDelete,
  tombstoneKey,
  updateTombstone,
  type DeleteIntent,
  type Tombstone,
} from '../../lib/tombstones';
import { T, testClient, useConditionalS3 } from '../helpers/conditional-s3';

/*
 * The tombstone's rules are pure functions: each row of their truth tables is a plain call.
 * Only reading and merging records goes through a (fake, conditional) control bucket.
 */

const KEY = 'a.txt';
const AT = T; // when the system recorded its intent
const tomb = (intents: DeleteIntent[] = [], deletedAt = T - 10_000): Tombstone => ({ key: KEY, deletedAt, who: 'ann', intents });
const intent = (over: Partial<DeleteIntent> = {}): DeleteIntent => ({ id: 'i1', store: 'server2', etag: '"e2"', at: AT, ...over });

describe('isDeadUnder', () => {
  const t = { deletedAt: T };
  it('calls a version made exactly at the delete dead', () => expect(isDeadUnder(t, T)).toBe(true));
  it('calls a version made before the delete dead', () => expect(isDeadUnder(t, T - 1)).toBe(true));
  it('lets a version made one millisecond after the delete live', () => expect(isDeadUnder(t, T + 1)).toBe(false));
  it('lets everything live without a tombstone', () => expect(isDeadUnder(undefined, 0)).toBe(false));
});

describe('recordDelete', () => {
  it('starts a tombstone without intents', () => {
    expect(recordDelete(undefined, KEY, T, 'bob')).toEqual({ key: KEY, deletedAt: T, who: 'bob', intents: [] });
  });

  it('lets a later delete win, keeping the intents', () => {
    const t = tomb([intent()]);
    expect(recordDelete(t, KEY, T + 1, 'bob')).toEqual({ ...t, deletedAt: T + 1, who: 'bob' });
  });

  it('ignores an earlier delete and one at the same time, returning the tombstone as it was', () => {
    const t = tomb([], T);
    expect(recordDelete(t, KEY, T - 1, 'bob')).toBe(t);
    expect(recordDelete(t, KEY, T, 'bob')).toBe(t);
  });
});

describe('compareSequencers', () => {
  it.each([
    ['0A', '0A', 0],
    ['0a', '0A', 0],
    ['A', '000A', 0],
    ['0B', '0C', -1],
    ['0C', '0B', 1],
    ['FF', '100', -1],
    ['100', 'FF', 1],
    ['ff', 'FE', 1],
    ['0065A1B2C3D4E5F6A7', '0065A1B2C3D4E5F6A8', -1],
    ['65A1B2C3D4E5F6A8', '0065A1B2C3D4E5F6A7', 1],
  ])('compares %s with %s as %d (shorter padded with zeros, case ignored)', (a, b, c) => {
    expect(compareSequencers(a, b)).toBe(c);
  });
});

describe('prune', () => {
  const NOW = T + INTENT_KEEP_MS;
  it('keeps an intent exactly INTENT_KEEP_MS old and drops one a millisecond older', () => {
    const t = tomb([intent({ id: 'old', at: NOW - INTENT_KEEP_MS - 1 }), intent({ id: 'edge', at: NOW - INTENT_KEEP_MS }), intent({ id: 'new', at: NOW })]);
    expect(prune(t, NOW).intents.map((i) => i.id)).toEqual(['edge', 'new']);
  });

  it('keeps an intent 15 days: longer than the failure queue keeps an event (14 days), so a replayed echo finds it', () => {
    expect(INTENT_KEEP_MS).toBe(15 * 86_400_000);
    const t = tomb([intent({ at: NOW - 14 * 86_400_000 })]);
    expect(prune(t, NOW).intents).toHaveLength(1);
  });

  it('returns the same tombstone when nothing is dropped', () => {
    const t = tomb([intent({ at: NOW - INTENT_KEEP_MS })]);
    expect(prune(t, NOW)).toBe(t);
  });

  it('keeps deletedAt and who', () => {
    const t = tomb([intent({ at: 0 })]);
    expect(prune(t, NOW)).toEqual({ ...t, intents: [] });
  });
});

describe('addIntents', () => {
  const NOW = T + 1000;

  it('adds one intent per target at now, with the ids given, in order', () => {
    const { tombstone, ids } = addIntents(tomb(), [{ store: 'server1', etag: '"e1"', id: 'id1' }, { store: 'server2', etag: '"e2"', id: 'id2' }], NOW);
    expect(ids).toEqual(['id1', 'id2']);
    expect(tombstone.intents).toEqual([
      { id: ids[0], store: 'server1', etag: '"e1"', at: NOW },
      { id: ids[1], store: 'server2', etag: '"e2"', at: NOW },
    ]);
    expect(tombstone.deletedAt).toBe(T - 10_000);
  });

  it('refuses a target whose store has a delete of ours pending, and records the others', () => {
    const pending = intent({ id: 'pending', at: NOW - 10 });
    const { tombstone, ids } = addIntents(tomb([pending]), [{ store: 'server1', etag: '"e1"', id: 'id3' }, { store: 'server2', etag: '"e9"', id: 'id4' }], NOW);
    expect(ids[1]).toBeUndefined();
    expect(tombstone.intents).toEqual([pending, { id: ids[0], store: 'server1', etag: '"e1"', at: NOW }]);
  });

  it('counts an intent pending until INTENT_WINDOW_MS after it, and not a millisecond longer', () => {
    const edge = addIntents(tomb([intent({ at: NOW - INTENT_WINDOW_MS })]), [{ store: 'server2', etag: '"e2"', id: 'id5' }], NOW);
    expect(edge.ids).toEqual([undefined]);
    const past = addIntents(tomb([intent({ at: NOW - INTENT_WINDOW_MS - 1 })]), [{ store: 'server2', etag: '"e2"', id: 'id6' }], NOW);
    expect(past.ids).toEqual([expect.any(String)]);
    expect(past.tombstone.intents).toHaveLength(2);
  });

  it('is not held back by a delete whose echo came, one that failed, or one on another store', () => {
    const kept = [
      intent({ id: 'bound', event: { seq: '0A', time: AT } }),
      intent({ id: 'failed', failed: true }),
      intent({ id: 'other store', store: 'server1' }),
    ];
    const { tombstone, ids } = addIntents(tomb(kept), [{ store: 'server2', etag: '"e2"', id: 'id7' }], NOW);
    expect(tombstone.intents).toEqual([...kept, { id: ids[0], store: 'server2', etag: '"e2"', at: NOW }]);
  });

  it('grants a target whose intent is there already (its write went through, the answer was lost), adding nothing', () => {
    const first = addIntents(tomb(), [{ store: 'server2', etag: '"e2"', id: 'mine' }], NOW);
    const again = addIntents(first.tombstone, [{ store: 'server2', etag: '"e2"', id: 'mine' }], NOW + 5);
    expect(again.ids).toEqual(['mine']);
    expect(again.tombstone.intents).toEqual(first.tombstone.intents);
    const other = addIntents(first.tombstone, [{ store: 'server2', etag: '"e2"', id: 'theirs' }], NOW + 5);
    expect(other.ids).toEqual([undefined]);
  });

  it('prunes intents past INTENT_KEEP_MS while adding', () => {
    const { tombstone, ids } = addIntents(tomb([intent({ id: 'ancient', store: 'server1', at: NOW - INTENT_KEEP_MS - 1 })]), [{ store: 'server1', etag: '"x"', id: 'id8' }], NOW);
    expect(tombstone.intents.map((i) => i.id)).toEqual([ids[0]]);
  });
});

describe('closeIntent', () => {
  it('dates the end of that call alone, CLOCK_SKEW_MS after it returned', () => {
    const t = tomb([intent({ id: 'other', store: 'server1' }), intent(), intent({ id: 'later' })]);
    expect(closeIntent(t, 'i1', AT + 50).intents).toEqual([intent({ id: 'other', store: 'server1' }), intent({ until: AT + 50 + CLOCK_SKEW_MS }), intent({ id: 'later' })]);
  });

  it('keeps the first end of a call closed already (a retried write of the tombstone), and the tombstone itself', () => {
    const t = tomb([intent({ until: AT + 10 }), intent({ id: 'open' })]);
    expect(closeIntent(t, 'i1', AT + 500)).toBe(t);
    expect(closeIntent(t, 'nosuch', AT + 500)).toBe(t);
  });
});

describe('failIntent', () => {
  it('fails that intent alone, wherever it is in the list, and counts the event it had taken', () => {
    const taken = { seq: '0A', time: AT + 50 };
    const t = tomb([intent({ id: 'first' }), intent({ id: 'i1', store: 'server1', event: taken })], AT);
    expect(failIntent(t, 'i1', 'server1')).toEqual({
      tombstone: { key: KEY, deletedAt: AT + 50, who: 'server1 (direct)', intents: [intent({ id: 'first' }), intent({ id: 'i1', store: 'server1', failed: true, event: taken })] },
      realDelete: true,
    });
  });

  it('fails an unbound intent and counts no delete', () => {
    const t = tomb([intent()]);
    const r = failIntent(t, 'i1', 'server2');
    expect(r).toEqual({ tombstone: { ...t, intents: [intent({ failed: true })] }, realDelete: false });
  });

  it("turns the event a refused delete had taken into a user's delete: its time raises deletedAt", () => {
    const t = tomb([intent({ event: { seq: '0A', time: AT + 50 } })], AT);
    const r = failIntent(t, 'i1', 'server2');
    expect(r.realDelete).toBe(true);
    expect(r.tombstone).toEqual({ key: KEY, deletedAt: AT + 50, who: 'server2 (direct)', intents: [intent({ failed: true, event: { seq: '0A', time: AT + 50 } })] });
  });

  it("counts no delete for an event S3 said the system made: it was some delete of ours, never a user's", () => {
    const t = tomb([intent({ event: { seq: '0A', time: AT + 50, system: true } })], AT);
    expect(failIntent(t, 'i1', 'server2')).toEqual({ tombstone: { ...t, intents: [intent({ failed: true, event: { seq: '0A', time: AT + 50, system: true } })] }, realDelete: false });
  });

  it('leaves a tombstone alone for an unknown or already failed intent', () => {
    const t = tomb([intent({ failed: true, event: { seq: '0A', time: AT + 50 } })]);
    expect(failIntent(t, 'nosuch', 'server2')).toEqual({ tombstone: t, realDelete: false });
    expect(failIntent(t, 'i1', 'server2').tombstone).toBe(t);
    expect(failIntent(t, 'i1', 'server2').realDelete).toBe(false);
  });
});

describe('classifyDelete', () => {
  const classify = (t: Tombstone | undefined, store: string, seq: string, time: number) => classifyDelete(t, KEY, store, seq, time);

  it('takes a duplicate of an echo it already bound as nothing, the tombstone untouched', () => {
    const t = tomb([intent({ event: { seq: '0A', time: AT + 5 } })]);
    const r = classify(t, 'server2', '0A', AT + 5);
    expect(r).toEqual({ tombstone: t, kind: 'echo', realDelete: false });
    expect(r.tombstone).toBe(t);
  });

  it('knows a duplicate even once its intent has failed (the failure counted it already)', () => {
    const t = tomb([intent({ failed: true, event: { seq: '0A', time: AT + 5 } })]);
    expect(classify(t, 'server2', '0A', AT + 5)).toEqual({ tombstone: t, kind: 'echo', realDelete: false });
  });

  it('binds a free intent on the store to the event: our echo, nothing else', () => {
    const t = tomb([intent()]);
    const r = classify(t, 'server2', '0B', AT + 5);
    expect(r).toEqual({ tombstone: { ...t, intents: [intent({ event: { seq: '0B', time: AT + 5 } })] }, kind: 'echo', realDelete: false });
  });

  it("does not take another store's intent, nor a sequencer bound on another store", () => {
    const t = tomb([intent({ store: 'server1' }), intent({ id: 'i2', store: 'server1', event: { seq: '0A', time: AT } })]);
    const r = classify(t, 'server2', '0A', AT + 5);
    expect(r.kind).toBe('real');
    expect(r.realDelete).toBe(true);
    expect(r.tombstone).toEqual({ ...t, deletedAt: AT + 5, who: 'server2 (direct)' });
  });

  it('does not take a failed intent: no event of ours will come for it', () => {
    const t = tomb([intent({ failed: true })]);
    expect(classify(t, 'server2', '0B', AT + 5)).toEqual({ tombstone: { ...t, deletedAt: AT + 5, who: 'server2 (direct)' }, kind: 'real', realDelete: true });
  });

  it.each([
    ['CLOCK_SKEW_MS before the intent', AT - CLOCK_SKEW_MS, 'echo'],
    ['one millisecond earlier', AT - CLOCK_SKEW_MS - 1, 'real'],
    ['exactly at the intent', AT, 'echo'],
    ['INTENT_WINDOW_MS after the intent', AT + INTENT_WINDOW_MS, 'echo'],
    ['one millisecond later', AT + INTENT_WINDOW_MS + 1, 'real'],
  ])('takes an event %s as %s', (_, time, kind) => {
    const t = tomb([intent()]);
    const r = classify(t, 'server2', '0B', time);
    expect(r.kind).toBe(kind);
    expect(r.realDelete).toBe(kind === 'real');
    if (kind === 'real') expect(r.tombstone).toEqual({ ...t, deletedAt: Math.max(t.deletedAt, time), who: 'server2 (direct)' });
    else expect(r.tombstone!.intents[0]!.event).toEqual({ seq: '0B', time });
  });

  it("rebinds an intent when a lower sequencer arrives after a higher one took it: the displaced event was a user's delete", () => {
    const t = tomb([intent({ event: { seq: '0C', time: AT + 50 } })], AT - 10_000);
    const r = classify(t, 'server2', '0B', AT + 40);
    expect(r).toEqual({
      tombstone: { key: KEY, deletedAt: AT + 50, who: 'server2 (direct)', intents: [intent({ event: { seq: '0B', time: AT + 40 } })] },
      kind: 'echo',
      realDelete: true,
    });
  });

  it('rebinds across sequencers of different length and case', () => {
    const t = tomb([intent({ event: { seq: '0c', time: AT + 50 } })]);
    expect(classify(t, 'server2', 'B', AT + 40).tombstone!.intents[0]!.event).toEqual({ seq: 'B', time: AT + 40 });
  });

  it('does not rebind for a higher sequencer: that one is the user\'s delete', () => {
    const t = tomb([intent({ event: { seq: '0C', time: AT + 50 } })]);
    const r = classify(t, 'server2', '0D', AT + 60);
    expect(r).toEqual({ tombstone: { ...t, deletedAt: AT + 60, who: 'server2 (direct)' }, kind: 'real', realDelete: true });
  });

  it('does not rebind for a lower sequencer outside the window', () => {
    const t = tomb([intent({ event: { seq: '0C', time: AT + 50 } })]);
    const r = classify(t, 'server2', '0B', AT - CLOCK_SKEW_MS - 1);
    expect(r.kind).toBe('real');
    expect(r.tombstone!.intents).toEqual(t.intents);
  });

  it('does not rebind an intent whose echo S3 said was ours, for an event that names nobody', () => {
    const t = tomb([intent({ event: { seq: '0C', time: AT + 50, system: true } })], AT - 10_000);
    const r = classify(t, 'server2', '0B', AT + 40);
    expect(r).toEqual({ tombstone: { ...t, deletedAt: AT + 40, who: 'server2 (direct)' }, kind: 'real', realDelete: true });
  });

  it('consumes a free intent before rebinding a taken one', () => {
    const t = tomb([intent({ id: 'taken', event: { seq: '0C', time: AT + 50 } }), intent({ id: 'free' })]);
    const r = classify(t, 'server2', '0B', AT + 40);
    expect(r.realDelete).toBe(false);
    expect(r.tombstone!.intents).toEqual([intent({ id: 'taken', event: { seq: '0C', time: AT + 50 } }), intent({ id: 'free', event: { seq: '0B', time: AT + 40 } })]);
  });

  it('makes a tombstone for a delete on a key never deleted', () => {
    expect(classify(undefined, 'server2', '0B', AT)).toEqual({ tombstone: { key: KEY, deletedAt: AT, who: 'server2 (direct)', intents: [] }, kind: 'real', realDelete: true });
  });

  describe('when S3 names who made the delete', () => {
    const byUser = (t: Tombstone | undefined, seq: string, time: number) => classifyDelete(t, KEY, 'server2', seq, time, 'user');
    const bySystem = (t: Tombstone | undefined, seq: string, time: number) => classifyDelete(t, KEY, 'server2', seq, time, 'system');

    // Soak seeds 20506 and 1010: a delete of ours whose outcome was unknown (the store did not
    // answer; a 412 after a retry) left its intent open; a user's delete straight in the store
    // landed inside that window and was taken for its echo, so versions made before it came back.
    it("takes a user's delete inside an open intent's window as the user's: its time counts, the intent stays open", () => {
      const t = tomb([intent({ until: AT + 2_000 })], AT - 10_000);
      const r = byUser(t, '0B', AT + 1_500);
      expect(r).toEqual({ tombstone: { ...t, deletedAt: AT + 1_500, who: 'server2 (direct)' }, kind: 'real', realDelete: true });
    });

    it("takes the system's delete as its echo even outside every window, and never dates a delete by it", () => {
      const t = tomb([intent({ until: AT + 2_000 })], AT - 10_000);
      const r = bySystem(t, '0B', AT + 60_000);
      expect(r).toEqual({ tombstone: { ...t, intents: [intent({ until: AT + 2_000, event: { seq: '0B', time: AT + 60_000, system: true } })] }, kind: 'echo', realDelete: false });
    });

    it('binds the intent whose window fits before one waiting longer', () => {
      const t = tomb([intent({ id: 'old', at: AT - 600_000, until: AT - 590_000 }), intent({ id: 'now' })]);
      const r = bySystem(t, '0B', AT + 5);
      expect(r.tombstone!.intents.map((i) => [i.id, i.event?.seq])).toEqual([['old', undefined], ['now', '0B']]);
    });

    it("binds no intent of another store, nor a failed one: those wait for nothing of this store's", () => {
      const t = tomb([intent({ id: 'elsewhere', store: 'server1', at: AT - 600_000 }), intent({ id: 'refused', failed: true, at: AT - 600_000 })]);
      expect(bySystem(t, '0B', AT + 5)).toEqual({ tombstone: t, kind: 'echo', realDelete: false });
    });

    it('changes nothing for an echo with no intent to bind, even on a key without a tombstone', () => {
      const bound = tomb([intent({ event: { seq: '0A', time: AT } })]);
      expect(bySystem(bound, '0B', AT + 5)).toEqual({ tombstone: bound, kind: 'echo', realDelete: false });
      expect(bySystem(undefined, '0B', AT + 5)).toEqual({ tombstone: undefined, kind: 'echo', realDelete: false });
    });

    it("a user's delete does not displace the echo an intent took", () => {
      const t = tomb([intent({ event: { seq: '0C', time: AT + 50, system: true } })], AT - 10_000);
      const r = byUser(t, '0B', AT + 40);
      expect(r).toEqual({ tombstone: { ...t, deletedAt: AT + 40, who: 'server2 (direct)' }, kind: 'real', realDelete: true });
    });
  });

  it('keeps the tombstone as it was for a real delete older than deletedAt, yet still calls it real', () => {
    const t = tomb([], AT);
    const r = classify(t, 'server2', '0B', AT - 1);
    expect(r.tombstone).toBe(t);
    expect(r).toMatchObject({ kind: 'real', realDelete: true });
  });
});

describe('tombstone records', () => {
  const control = testClient();
  const { fake, s3mock } = useConditionalS3(control);
  const deps = { control: { bucket: 'control', s3: control } };
  const store = (key: string, value: unknown) => fake.put('control', tombstoneKey(key), JSON.stringify(value));

  it('reads no tombstone for a key never deleted', async () => {
    expect(await readTombstone(deps, KEY)).toBeUndefined();
  });

  it('reads a tombstone of an older release ({key, time, who, echoes}) as today\'s', async () => {
    store(KEY, { key: KEY, time: T, who: 'server1 (event)', echoes: { server2: T + 3 } });
    expect(await readTombstone(deps, KEY)).toEqual({ key: KEY, deletedAt: T, who: 'server1 (event)', intents: [] });
  });

  it('reads a tombstone without intents as one with none', async () => {
    store(KEY, { key: KEY, deletedAt: T, who: 'ann' });
    expect(await readTombstone(deps, KEY)).toEqual({ key: KEY, deletedAt: T, who: 'ann', intents: [] });
  });

  it('merges into a legacy tombstone and stores today\'s shape, conditional on what it read', async () => {
    const legacy = store(KEY, { key: KEY, time: T, who: 'x', echoes: {} });
    const after = await updateTombstone(deps, KEY, (t) => recordDelete(t, KEY, T + 5, 'bob'));
    expect(after).toEqual({ key: KEY, deletedAt: T + 5, who: 'bob', intents: [] });
    expect(fake.records('tombstones/')).toEqual([{ key: KEY, deletedAt: T + 5, who: 'bob', intents: [] }]);
    expect(s3mock.commandCalls(PutObjectCommand)[0]!.args[0].input).toMatchObject({ IfMatch: legacy.etag });
  });

  it('writes nothing when the change leaves it alone', async () => {
    store(KEY, { key: KEY, deletedAt: T, who: 'ann', intents: [] });
    expect(await updateTombstone(deps, KEY, () => undefined)).toEqual({ key: KEY, deletedAt: T, who: 'ann', intents: [] });
    expect(fake.writes).toEqual([]);
  });

  describe('recordCallsEnded', () => {
    beforeEach(() => jest.spyOn(Math, 'random').mockReturnValue(0)); // no pause between attempts
    afterEach(() => jest.restoreAllMocks());
    const close = (t: Tombstone) => closeIntent(t, 'i1', T + 50);

    it('writes nothing where there is no tombstone, and nothing when the calls were recorded already', async () => {
      await recordCallsEnded(deps, KEY, close);
      store(KEY, tomb([intent({ until: T + 9 })]));
      expect(await recordCallsEnded(deps, KEY, close)).toEqual(tomb([intent({ until: T + 9 })]));
      expect(fake.writes).toEqual([]);
    });

    it('keeps trying past the usual 20 lost writes, up to CALLS_ENDED_ATTEMPTS', async () => {
      store(KEY, tomb([intent()]));
      let lost = 0;
      fake.beforeWrite.push((cmd) => {
        if (cmd === 'PutObject' && lost < CALLS_ENDED_ATTEMPTS - 1) store(KEY, tomb([intent()], T - 10_000 + ++lost));
      });
      const after = await recordCallsEnded(deps, KEY, close);
      expect(after!.intents).toEqual([intent({ until: T + 50 + CLOCK_SKEW_MS })]);
      expect(s3mock.commandCalls(PutObjectCommand)).toHaveLength(CALLS_ENDED_ATTEMPTS);
      expect(CALLS_ENDED_ATTEMPTS).toBeGreaterThan(20);
    });
  });

  it('lists tombstoned keys in S3 order, after a given key', async () => {
    for (const k of ['b.txt', 'a.txt', 'dir/c.txt', 'z.txt']) store(k, { key: k, deletedAt: T, who: 'x', intents: [] });
    fake.put('control', 'journal/000', '{}');
    const all: string[] = [];
    for await (const k of listTombstones(deps)) all.push(k);
    expect(all).toEqual(['a.txt', 'b.txt', 'dir/c.txt', 'z.txt']);
    const after: string[] = [];
    for await (const k of listTombstones(deps, 'b.txt')) after.push(k);
    expect(after).toEqual(['dir/c.txt', 'z.txt']);
  });
});
