import type { ApiOp, Transport } from '../../cli/client';
import { CliError } from '../../cli/exit';
import { listAll, listingOf, type LsRow } from '../../cli/ls';

const entry = (name: string, state = 'same') => ({ name, size: 1, mtime: '2024-05-01T10:00:00.000Z', state, stores: { server1: { size: 1, etag: 'e', mtime: 'm' }, server2: { size: 1, etag: 'f-2', mtime: 'm' } } });

function fakeApi(answer: (op: ApiOp) => { status: number; body: unknown }) {
  const ops: ApiOp[] = [];
  const api: Transport = { send: async (op) => (ops.push(op), answer(op)) };
  return { api, ops };
}

const collect = () => {
  const pages: LsRow[][] = [];
  const away: string[][] = [];
  return { pages, away, sink: { page: (rows: LsRow[]) => void pages.push(rows), unavailable: (s: string[]) => void away.push(s) } };
};

describe('listAll', () => {
  it('hands over each page as it comes, indexes continuing across pages', async () => {
    const { api, ops } = fakeApi((op) => {
      const after = op.op === 'list' ? op.after : undefined;
      if (!after) return { status: 200, body: { files: [entry('a'), entry('b')], next: 'c1', unavailable: [] } };
      return { status: 200, body: { files: [entry('c')], next: null, unavailable: ['server3'] } };
    });
    const c = collect();
    const r = await listAll(() => api, { prefix: 'p/', verify: false, pageSize: 2 }, c.sink);
    expect(c.pages.map((p) => p.map((row) => `${row.index}:${row.name}`))).toEqual([['0:a', '1:b'], ['2:c']]);
    expect(c.away).toEqual([['server3']]);
    expect(r).toMatchObject({ count: 3, pages: 2, unavailable: ['server3'], exitCode: 0 });
    expect(ops).toEqual([{ op: 'list', prefix: 'p/', limit: 2 }, { op: 'list', prefix: 'p/', after: 'c1', limit: 2 }]);
  });

  it('stops rather than loop when the cursor does not move', async () => {
    const { api } = fakeApi(() => ({ status: 200, body: { files: [entry('a')], next: 'same', unavailable: [] } }));
    await expect(listAll(() => api, { verify: false }, collect().sink)).rejects.toMatchObject({ code: 'BadResponse', message: expect.stringContaining('did not move') });
  });

  it('--verify reads only unverified rows, with meta, and keeps the state of a name gone since', async () => {
    const { api, ops } = fakeApi((op) => {
      if (op.op === 'list') return { status: 200, body: { files: [entry('u1', 'unverified'), entry('s'), entry('gone', 'unverified'), entry('u2', 'unverified')], next: null } };
      if (op.op === 'get' && op.key === 'u1') return { status: 200, body: { status: 'SINGLE', key: 'u1', copies: [{}, {}], unavailable: [] } };
      if (op.op === 'get' && op.key === 'u2') return { status: 200, body: { status: 'DIFFERENT', key: 'u2', versions: [], unavailable: [] } };
      return { status: 404, body: { status: 'NOT_FOUND', key: 'gone', unavailable: [] } };
    });
    const c = collect();
    const r = await listAll(() => api, { verify: true }, c.sink);
    expect(c.pages[0]!.map((row) => [row.name, row.state, row.verified])).toEqual([
      ['u1', 'same', true],
      ['s', 'same', undefined],
      ['gone', 'unverified', false],
      ['u2', 'different', true],
    ]);
    expect(r.verified).toBe(2);
    expect(ops.filter((o) => o.op === 'get')).toEqual(['u1', 'gone', 'u2'].map((key) => ({ op: 'get', key, meta: true })));
  });
});

describe('listAll with locks', () => {
  const lock = (key: string, store: string, next: number) => ({ key, store, holder: 'ann', since: 's', expires: 1, next, applied: 0 });

  it('reads GET /locks once, after the first page, and gives every row its locks by store, or null', async () => {
    const { api, ops } = fakeApi((op) => {
      if (op.op === 'locks') return { status: 200, body: { locks: [lock('a', 'server1', 3), lock('a', 'server2', 1), lock('gone', 'server1', 1)] } };
      const after = op.op === 'list' ? op.after : undefined;
      return { status: 200, body: after ? { files: [entry('c')], next: null } : { files: [entry('a'), entry('b')], next: 'c1' } };
    });
    const c = collect();
    const told: unknown[] = [];
    await listAll(() => api, { verify: false, locks: true }, { ...c.sink, locks: (l, trouble) => void told.push([l?.length, trouble]) });
    expect(ops.map((o) => o.op)).toEqual(['list', 'locks', 'list']);
    expect(told).toEqual([[3, undefined]]);
    expect(c.pages.flat().map((r) => [r.name, r.lock])).toEqual([
      ['a', { server1: { holder: 'ann', since: 's', expires: 1, held: 2 }, server2: { holder: 'ann', since: 's', expires: 1, held: 0 } }],
      ['b', null],
      ['c', null],
    ]);
  });

  it('lists without locks when they cannot be read, telling the sink why', async () => {
    const { api } = fakeApi((op) => (op.op === 'locks' ? { status: 404, body: { error: 'NoRoute' } } : { status: 200, body: { files: [entry('a')], next: null } }));
    const c = collect();
    const told: unknown[] = [];
    await listAll(() => api, { verify: false, locks: true }, { ...c.sink, locks: (l, trouble) => void told.push([l, trouble?.code]) });
    expect(told).toEqual([[undefined, 'NoRoute']]);
    expect(c.pages[0]![0]).not.toHaveProperty('lock');
  });

  it('stops on a refusal of GET /locks, as on any request', async () => {
    const api = {
      send: async (op: ApiOp) => {
        if (op.op === 'locks') throw new CliError(8, 'Unauthorized', 'not signed in');
        return { status: 200, body: { files: [entry('a')], next: null } };
      },
    };
    await expect(listAll(() => api, { verify: false, locks: true }, collect().sink)).rejects.toMatchObject({ exitCode: 8 });
  });

  it('asks nothing about locks without the option', async () => {
    const { api, ops } = fakeApi(() => ({ status: 200, body: { files: [entry('a')], next: null } }));
    await listAll(() => api, { verify: false }, collect().sink);
    expect(ops.map((o) => o.op)).toEqual(['list']);
  });
});

describe('listingOf', () => {
  it('accepts a listing and fills in a missing unavailable', () => {
    expect(listingOf({ status: 200, body: { files: [], next: null } })).toEqual({ files: [], next: null, unavailable: [] });
  });

  it.each([
    ['no files', { next: null }],
    ['a bad next', { files: [], next: 3 }],
    ['an entry without stores', { files: [{ name: 'a', size: 1 }], next: null }],
  ])('refuses %s', (_what, body) => {
    expect(() => listingOf({ status: 200, body })).toThrow(expect.objectContaining({ code: 'BadResponse' }));
  });

  it('maps a 503 to exit 5', () => {
    expect(() => listingOf({ status: 503, body: { error: 'Unavailable', unavailable: ['server1'] } })).toThrow(
      expect.objectContaining({ exitCode: 5, message: 'no store answered (server1); nothing can be listed' }),
    );
  });
});
