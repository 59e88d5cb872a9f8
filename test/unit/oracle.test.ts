import { judge, judgeLocks } from '../harness/oracle';
import { isRenewal, type EventRecord, type History, type LockSpan, type OpRecord, type Version } from '../harness/workload';

/*
 * The delivery-fault harness passes a seed when its oracle finds nothing wrong, so the oracle
 * itself must be seen to find each kind of wrong: one history per rule, the stores' end state
 * made to break it (and not the others).
 */

const KEY = 'a.txt';
let order = 0;
const version = (text: string, o: Partial<Version> = {}): Version => ({
  key: KEY, store: 'server1', text, etag: `"${text}"`, mtime: 100, made: 1000, order: ++order, op: order, ...o,
});
const history = (o: Partial<History> = {}): History => ({ ops: [], versions: [], deletes: [], locks: [], events: [], ...o });
/** The stores' end state: store → that store's text for KEY (null: absent). */
const stores = (held: Record<string, string | null>) =>
  new Map(Object.entries(held).map(([s, text]) => [s, new Map(text === null ? [] : [[KEY, text]])]));
const rules = (h: History, held: Record<string, string | null>) => judge(h, stores(held), [KEY]).map((v) => v.rule);

describe('judge', () => {
  it('passes stores that agree on the newest live version', () => {
    const h = history({ versions: [version('old', { mtime: 100 }), version('new', { store: 'server2', mtime: 200 })] });
    expect(rules(h, { server1: 'new', server2: 'new' })).toEqual([]);
  });

  it('passes a name no store holds when every write was made before its last delete', () => {
    const h = history({ versions: [version('v', { made: 1000 })], deletes: [{ key: KEY, time: 1000, by: 'user1', op: 9 }] });
    expect(rules(h, { server1: null, server2: null })).toEqual([]);
  });

  it('finds stores that differ, and says what each holds', () => {
    const h = history({ versions: [version('v')] });
    expect(judge(h, stores({ server1: 'v', server2: null }), [KEY])).toStrictEqual([{ key: KEY, rule: 'stores differ', held: { server1: 'v', server2: null } }]);
  });

  it('finds a version made before the last delete come back (made at the delete counts as before)', () => {
    const h = history({ versions: [version('v', { made: 1000 })], deletes: [{ key: KEY, time: 1000, by: 'user1', op: 9 }, { key: KEY, time: 500, by: 'user2', op: 10 }] });
    expect(rules(h, { server1: 'v', server2: 'v' })).toEqual(['resurrected: holds a version made before the last delete']);
  });

  it('finds a live write lost, naming it', () => {
    const h = history({ versions: [version('v', { made: 1001 })], deletes: [{ key: KEY, time: 1000, by: 'user1', op: 9 }] });
    expect(judge(h, stores({ server1: null, server2: null }), [KEY])).toEqual([
      { key: KEY, rule: 'a live write was lost: the name is gone though its last write on a store was made after every delete', held: { server1: null, server2: null }, expected: 'v' },
    ]);
  });

  it('finds an older version over a newer live one, by mtime and then by ETag', () => {
    const byMtime = history({ versions: [version('new', { mtime: 200 }), version('old', { store: 'server2', mtime: 100 })] });
    expect(rules(byMtime, { server1: 'old', server2: 'old' })).toEqual(['lost update: an older version replaced a newer live one']);
    const byEtag = history({ versions: [version('b', { mtime: 100 }), version('a', { store: 'server2', mtime: 100 })] });
    expect(rules(byEtag, { server1: 'a', server2: 'a' })).toEqual(['lost update: an older version replaced a newer live one']);
    expect(rules(byEtag, { server1: 'b', server2: 'b' })).toEqual([]);
  });

  it("holds each store only to the last version a user gave it, not to an earlier one there", () => {
    // server1 was given 'high' (mtime 300), then 'low' (mtime 100) by a later write: 'low' is its last.
    const h = history({ versions: [version('high', { mtime: 300 }), version('low', { mtime: 100 }), version('mid', { store: 'server2', mtime: 200 })] });
    expect(rules(h, { server1: 'mid', server2: 'mid' })).toEqual([]);
    expect(rules(h, { server1: 'low', server2: 'low' })).toEqual(['lost update: an older version replaced a newer live one']);
  });

  it('does not hold the stores to a last version made before the delete', () => {
    const h = history({
      versions: [version('dead', { mtime: 900, made: 900 }), version('live', { store: 'server2', mtime: 100, made: 2000 })],
      deletes: [{ key: KEY, time: 1000, by: 'user1', op: 9 }],
    });
    expect(rules(h, { server1: 'live', server2: 'live' })).toEqual([]);
  });

  it("holds each store to its own last version, whatever order the history lists them in", () => {
    // server1 was given 'high' last; server2 was given 'low' after that: each store's own last counts.
    const high = version('high', { mtime: 300 });
    const low = version('low', { store: 'server2', mtime: 100 });
    const h = history({ versions: [version('first', { mtime: 50, order: 0 }), low, high].reverse() });
    expect(rules(h, { server1: 'low', server2: 'low' })).toEqual(['lost update: an older version replaced a newer live one']);
  });

  it("counts only the name's own deletes", () => {
    const h = history({ versions: [version('v', { made: 1000 })], deletes: [{ key: 'b.txt', time: 5000, by: 'user1', op: 9 }] });
    expect(rules(h, { server1: null, server2: null })).toEqual([expect.stringMatching(/^a live write was lost/)]);
  });

  it('passes a text written before a delete and again after it', () => {
    const h = history({ versions: [version('v', { made: 900 }), version('v', { made: 1100 })], deletes: [{ key: KEY, time: 1000, by: 'user1', op: 9 }] });
    expect(rules(h, { server1: 'v', server2: 'v' })).toEqual([]);
  });

  it('finds what no user wrote', () => {
    expect(rules(history({ versions: [version('v')] }), { server1: 'x', server2: 'x' })).toEqual(['holds something no user wrote']);
  });

  it('judges each name on its own', () => {
    const h = history({ versions: [version('v'), version('w', { key: 'b.txt' })] });
    const held = new Map([['server1', new Map([[KEY, 'v'], ['b.txt', 'w']])], ['server2', new Map([[KEY, 'v']])]]);
    expect(judge(h, held, [KEY, 'b.txt']).map((v) => [v.key, v.rule])).toEqual([['b.txt', 'stores differ']]);
  });
});

describe('judgeLocks', () => {
  const op = (i: number, user: number, kind: string, startedAt = 0): OpRecord => ({ i, user, kind, key: KEY, what: kind, store: 'server1', startedAt });
  const span: LockSpan = { key: KEY, store: 'server1', holder: 1, op: 1, since: '', from: 2, takenAt: 100, to: 6 };
  const event = (o: Partial<EventRecord>): EventRecord => ({ order: 3, store: 'server1', key: KEY, name: 'ObjectCreated:Put', etag: '"e2"', ...o });
  /** A replication attempt that began at `began` (which delivery it handled does not matter here). */
  const invokedAt = (began: number) => ({ began, delivery: 1, attempt: 1 });
  const by = (user: number, opNo: number, kind: 'put' | 'delete' | 'unlock' = 'put') => ({ user, kind, op: opNo, opKind: '' });
  const locks = (events: EventRecord[], ops: OpRecord[] = []) => judgeLocks(history({ locks: [span], events, ops }));

  it("lets the holder change its store, and counts nothing before the lock or after its unlock began", () => {
    const ops = [op(2, 1, 'api put'), op(3, 2, 'api put', 200)];
    const events = [event({ etag: '"mine"', by: by(1, 2) }), event({ order: 2, etag: '"before"', by: by(2, 3) }), event({ order: 7, etag: '"after"', by: by(2, 3) })];
    expect(locks(events, ops)).toEqual([]);
  });

  it("finds another user's write through dfs, and a write of the system, inside the span, saying what it breaks", () => {
    const found = locks([event({ order: 3, by: by(2, 3) }), event({ order: 4, etag: '"e3"', invocation: invokedAt(150) })], [op(3, 2, 'api put', 200)]);
    expect(found).toStrictEqual([
      { key: KEY, store: 'server1', holder: 'user1', rule: 'a locked store changed by someone other than its holder before the unlock', event: '#3 ObjectCreated:Put "e2"', by: 'op3 user2 api put' },
      { key: KEY, store: 'server1', holder: 'user1', rule: 'a locked store changed by someone other than its holder before the unlock', event: '#4 ObjectCreated:Put "e3"', by: 'the system (replication or reconcile)' },
    ]);
  });

  it('finds a delete inside the span, and counts the last event of the span', () => {
    expect(locks([event({ order: 6, name: 'ObjectRemoved:Delete', etag: undefined, by: by(2, 3, 'delete') })], [op(3, 2, 'api delete', 200)])).toEqual([
      expect.objectContaining({ event: '#6 ObjectRemoved:Delete' }),
    ]);
  });

  it('counts a write whose ETag is not known, and one whose operation is not in the history', () => {
    expect(locks([event({ etag: undefined }), event({ order: 4, etag: '"x"', by: by(2, 99) })]).map((v) => [v.event, v.by])).toEqual([
      ['#3 ObjectCreated:Put', 'the system (replication or reconcile)'],
      ['#4 ObjectCreated:Put "x"', 'op99 user2 put'],
    ]);
  });

  it("tells each store's and name's bytes apart when looking for a copy that changed nothing", () => {
    const events = [event({ order: 1, store: 'server2', etag: '"e"' }), event({ order: 2, key: 'b.txt', etag: '"e"' }), event({ order: 3, etag: '"e"' })];
    expect(locks(events).map((v) => v.event)).toEqual(['#3 ObjectCreated:Put "e"']);
  });

  it('reports a write that began before the lock was taken as raced, apart', () => {
    const raced = locks([event({ by: by(2, 3) }), event({ order: 4, etag: '"e3"', invocation: invokedAt(99) })], [op(3, 2, 'api put', 99)]);
    expect(raced.map((v) => v.known !== undefined)).toEqual([true, true]);
    expect(raced[0]!.known).toBe('raced the lock: its operation began before lockFile answered, and may have looked before the lock was there');
    // Begun the very moment lockFile answered: after it.
    expect(locks([event({ invocation: invokedAt(100) })]).map((v) => v.known)).toEqual([undefined]);
    expect(locks([event({ by: by(2, 3) })], [op(3, 2, 'api put', 100)]).map((v) => v.known)).toEqual([undefined]);
  });

  it("does not count writes straight into the bucket, the holder's own unlock's drain, or a copy that leaves the bytes as they were", () => {
    const ops = [op(3, 2, 'direct write'), op(4, 2, 'direct delete'), { ...op(5, 1, 'unlock'), store: 'server1' }];
    const events = [
      event({ order: 1, etag: '"same"' }), // before the span: sets what the store held
      event({ order: 3, by: by(2, 3) }),
      event({ order: 4, name: 'ObjectRemoved:Delete', etag: undefined, by: by(2, 4, 'delete') }),
      event({ order: 5, by: by(2, 5, 'unlock'), etag: '"drained"' }),
      event({ order: 6, etag: '"drained"' }), // a stamp in place: same ETag as before it
    ];
    expect(locks(events, ops)).toEqual([]);
  });

  it("counts a delete, and the drain of an unlock of another store, though the bytes it writes are the next event's too", () => {
    const ops = [{ ...op(5, 1, 'unlock'), store: 'server2' }, { ...op(6, 1, 'unlock'), key: 'b.txt' }];
    const events = [
      event({ order: 1, etag: '"e"' }), // before the span
      event({ order: 3, name: 'ObjectRemoved:Delete', etag: undefined }),
      event({ order: 4, etag: '"e"', by: by(2, 5, 'unlock') }), // the same bytes as before the delete: a change
      event({ order: 5, etag: '"f"', by: by(2, 6, 'unlock') }),
      event({ order: 6, etag: '"g"', by: { user: 2, kind: 'unlock' as const, op: 98, opKind: '' } }),
    ];
    expect(locks(events, ops).map((v) => v.event)).toEqual(['#3 ObjectRemoved:Delete', '#4 ObjectCreated:Put "e"', '#5 ObjectCreated:Put "f"', '#6 ObjectCreated:Put "g"']);
  });

  it('holds a lock with no unlock to the end, and only on its own store and name', () => {
    const open = { ...span, to: undefined };
    const events = [event({ order: 50 }), event({ order: 51, store: 'server2' }), event({ order: 52, key: 'b.txt' })];
    expect(judgeLocks(history({ locks: [open], events })).map((v) => v.event)).toEqual(['#50 ObjectCreated:Put "e2"']);
  });
});

describe("the harness's lock bookkeeping", () => {
  const listed: LockSpan = { key: KEY, store: 'server1', holder: 2, op: 27, since: '2026-12-02T08:03:40.341Z', from: 38, takenAt: 0 };

  it('soak seed 42341: a lock its holder takes again while a forced unlock of the old one has yet to return is a new lock', () => {
    expect(isRenewal(listed, 2, '2026-12-02T08:03:51.890Z')).toBe(false);
  });

  it("takes the same holder's lock with the same since for a renewal, and nothing else", () => {
    expect(isRenewal(listed, 2, listed.since)).toBe(true);
    expect(isRenewal(listed, 3, listed.since)).toBe(false);
    expect(isRenewal(undefined, 2, listed.since)).toBe(false);
  });
});
