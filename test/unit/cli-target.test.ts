import type { ApiOp, Transport } from '../../cli/client';
import { fileAt, parseFileRef, resolveFileRef } from '../../cli/target';

const entry = (name: string) => ({ name, size: 1, mtime: '2024-05-01T10:00:00.000Z', state: 'same', stores: { server1: { size: 1, etag: 'e', mtime: 'm' } } });

/** A listing of `names`, `page` per answer, cursors "p1", "p2", …; `unavailable` on every page. */
function listing(names: string[], page: number, unavailable: string[] = []) {
  const ops: ApiOp[] = [];
  const api: Transport = {
    async send(op) {
      ops.push(op);
      if (op.op !== 'list') throw new Error(`unexpected ${op.op}`);
      const n = op.after ? Number(op.after.slice(1)) : 0;
      const more = (n + 1) * page < names.length;
      return { status: 200, body: { files: names.slice(n * page, (n + 1) * page).map(entry), next: more ? `p${n + 1}` : null, unavailable } };
    },
  };
  return { api, ops };
}

describe('parseFileRef', () => {
  it.each([
    ['0', { index: 0 }],
    ['3', { index: 3 }],
    ['007', { index: 7 }],
    ['fileB.txt', { name: 'fileB.txt' }],
    ['docs/2024.csv', { name: 'docs/2024.csv' }],
    ['v1.5', { name: 'v1.5' }],
    ['1.5.txt', { name: '1.5.txt' }],
    ['12abc', { name: '12abc' }],
    ['Infinity', { name: 'Infinity' }],
    ['./3', { name: '3' }],
    ['./-1', { name: '-1' }],
    ['./fileB.txt', { name: 'fileB.txt' }],
  ])('reads %j as %j', (arg, ref) => {
    expect(parseFileRef(arg)).toEqual(ref);
  });

  it.each([
    ['-1', /^index "-1" is negative: an index is the # that dfs ls prints, 0 to n-1; for a file with this name write \.\/-1$/],
    ['-0', /is negative/],
    ['1.5', /^index "1\.5" is not a whole number/],
    ['1.', /not a whole number/],
    ['.5', /not a whole number/],
    ['1e3', /not a whole number/],
    ['+2', /not a whole number/],
    ['0x1f', /not a whole number/],
    ['0b1', /not a whole number/],
    [' 2', /not a whole number/],
    ['2 ', /not a whole number/],
  ])('refuses the number-like %j as an index (usage, BadIndex)', (arg, message) => {
    expect(() => parseFileRef(arg)).toThrow(expect.objectContaining({ exitCode: 2, code: 'BadIndex', message: expect.stringMatching(message) }));
  });

  it('refuses an index too large to count to', () => {
    expect(() => parseFileRef('99999999999999999999')).toThrow(expect.objectContaining({ exitCode: 2, code: 'BadIndex', message: 'index 99999999999999999999 is too large' }));
  });

  it.each(['', './', 'a/../b', 'a//b', './.', 'x\u0001'])('refuses the invalid name %j (usage, InvalidKey)', (arg) => {
    expect(() => parseFileRef(arg)).toThrow(expect.objectContaining({ exitCode: 2, code: 'InvalidKey' }));
  });
});

describe('fileAt', () => {
  const names = ['a', 'b', 'c', 'd', 'e'];

  it('pages only as far as the index, asking for the largest pages', async () => {
    const { api, ops } = listing(names, 2);
    expect((await fileAt(api, 2)).name).toBe('c');
    expect(ops).toEqual([{ op: 'list', limit: 1000 }, { op: 'list', after: 'p1', limit: 1000 }]);
    expect((await fileAt(listing(names, 2).api, 0)).name).toBe('a');
    expect((await fileAt(listing(names, 2).api, 4)).name).toBe('e');
  });

  it('refuses an index past the end with the count, and an empty listing', async () => {
    await expect(fileAt(listing(names, 2).api, 5)).rejects.toMatchObject({ exitCode: 2, code: 'BadIndex', message: 'index 5 is out of range: dfs ls lists 5 files, 0 to 4' });
    await expect(fileAt(listing(['a'], 2).api, 1)).rejects.toMatchObject({ message: 'index 1 is out of range: dfs ls lists 1 file, 0 to 0' });
    await expect(fileAt(listing([], 2).api, 0)).rejects.toMatchObject({ exitCode: 2, message: 'index 0 is out of range: there are no files' });
  });

  it('names each store that did not answer once, as the indexes then count without it', async () => {
    const away: string[][] = [];
    await fileAt(listing(names, 2, ['server2']).api, 4, { unavailable: (s) => away.push(s) });
    expect(away).toEqual([['server2']]);
  });

  it('stops rather than loop when the cursor does not move', async () => {
    const api: Transport = { send: async () => ({ status: 200, body: { files: [entry('a')], next: 'same', unavailable: [] } }) };
    await expect(fileAt(api, 9)).rejects.toMatchObject({ code: 'BadResponse' });
  });

  it('passes a failed listing on as its error', async () => {
    const api: Transport = { send: async () => ({ status: 503, body: { error: 'Unavailable', unavailable: ['server1', 'server2'] } }) };
    await expect(fileAt(api, 0)).rejects.toMatchObject({ exitCode: 5 });
  });
});

describe('resolveFileRef', () => {
  it('asks nothing for a name, and keeps the index it looked up', async () => {
    const { api, ops } = listing(['a', 'b'], 2);
    expect(await resolveFileRef(api, { name: 'zzz' })).toEqual({ name: 'zzz' });
    expect(ops).toEqual([]);
    expect(await resolveFileRef(api, { index: 1 })).toEqual({ name: 'b', index: 1 });
  });
});
