import { createHmac } from 'node:crypto';
import { compareKeys, mergeListings, openCursor, sealCursor, stateOf, type ListedObject, type MergedName } from '../../lib/listing';
import { BadRequestError } from '../../lib/errors';

const obj = (key: string, size = 1, etag = '"e"'): ListedObject => ({ key, size, etag, lastModifiedMs: 0 });

async function* from(list: ListedObject[]): AsyncGenerator<ListedObject> {
  for (const o of list) yield o;
}

async function merge(...lists: ListedObject[][]): Promise<MergedName[]> {
  const out: MergedName[] = [];
  for await (const m of mergeListings(lists.map(from))) out.push(m);
  return out;
}

const shape = (ms: MergedName[]) => ms.map((m) => [m.key, m.copies.map((c) => (c ? 1 : 0)).join('')]);

describe('mergeListings', () => {
  it('marches two interleaved listings into one sorted sequence, side by side', async () => {
    const got = await merge([obj('a'), obj('c'), obj('d')], [obj('b'), obj('c'), obj('e')]);
    expect(shape(got)).toEqual([['a', '10'], ['b', '01'], ['c', '11'], ['d', '10'], ['e', '01']]);
  });

  it('handles empty stores on either side and all sides', async () => {
    expect(shape(await merge([], [obj('x')]))).toEqual([['x', '01']]);
    expect(shape(await merge([obj('x')], []))).toEqual([['x', '10']]);
    expect(await merge([], [], [])).toEqual([]);
  });

  it('merges N = 3 stores with every overlap pattern', async () => {
    const got = await merge([obj('a'), obj('ab'), obj('abc')], [obj('ab'), obj('b')], [obj('a'), obj('abc'), obj('b'), obj('c')]);
    expect(shape(got)).toEqual([['a', '101'], ['ab', '110'], ['abc', '101'], ['b', '011'], ['c', '001']]);
  });

  it('keeps the copy details of each store', async () => {
    const [m] = await merge([obj('k', 3, '"x"')], [obj('k', 4, '"y"')]);
    expect(m!.copies.map((c) => c?.size)).toEqual([3, 4]);
  });

  it('orders names by UTF-8 bytes like S3, not by UTF-16 code units', async () => {
    // U+FF5A sorts after U+1F600 in JS (surrogates are 0xD8xx) but before it in UTF-8.
    const keys = ['a', 'ä', 'ｚ', '😀'];
    expect([...keys].sort()).not.toEqual(keys);
    expect([...keys].sort(compareKeys)).toEqual(keys);
    const got = await merge([obj('a'), obj('ｚ')], [obj('ä'), obj('😀')]);
    expect(got.map((m) => m.key)).toEqual(keys);
  });

  it('pulls lazily: stopping early does not drain the sources', async () => {
    let pulled = 0;
    async function* counting(): AsyncGenerator<ListedObject> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield obj(`k${String(i).padStart(4, '0')}`);
      }
    }
    let seen = 0;
    for await (const _ of mergeListings([counting(), from([])])) if (++seen === 10) break;
    expect(pulled).toBeLessThanOrEqual(11);
  });
});

describe('stateOf', () => {
  const names = ['server1', 'server2', 'server3'];
  it('calls equal sizes and single-part ETags same', () => {
    expect(stateOf([obj('k', 5, '"m"'), obj('k', 5, '"m"')], names, 0)).toBe('same');
  });
  it('calls different sizes or MD5s different, even when a store lacks the name', () => {
    expect(stateOf([obj('k', 5), obj('k', 6)], names, 0)).toBe('different');
    expect(stateOf([obj('k', 5, '"a"'), obj('k', 5, '"b"')], names, 1)).toBe('different');
  });
  it('calls a name missing from an answering store partial', () => {
    expect(stateOf([obj('k')], names, 1)).toBe('partial');
  });
  it('leaves multipart ETags of equal size unverified', () => {
    expect(stateOf([obj('k', 9, '"a-2"'), obj('k', 9, '"b-3"')], names, 0)).toBe('unverified');
  });
  it('calls a lone copy same whatever its ETag: there is nothing to compare it with', () => {
    expect(stateOf([obj('k', 9, '"a-2"')], names.slice(0, 1), 0)).toBe('same');
  });
});

describe('listing cursors', () => {
  it('round-trip the last key for the same prefix', () => {
    expect(openCursor('s', sealCursor('s', 'dir/ü.txt', 'dir/'), 'dir/')).toBe('dir/ü.txt');
  });
  it.each([
    ['edited payload', (c: string) => 'x' + c],
    ['truncated', (c: string) => c.slice(0, -3)],
    ['no MAC', (c: string) => c.split('.')[0]!],
    ['garbage', () => '%%%'],
  ])('refuse a cursor that was tampered with (%s)', (_, tamper) => {
    expect(() => openCursor('s', tamper(sealCursor('s', 'k', '')), '')).toThrow(BadRequestError);
    expect(() => openCursor('s', tamper(sealCursor('s', 'k', '')), '')).toThrow('(was it edited or truncated?)');
  });
  it('refuse a cursor from another prefix or another secret', () => {
    expect(() => openCursor('s', sealCursor('s', 'k', 'a/'), 'b/')).toThrow(/another prefix/);
    expect(() => openCursor('t', sealCursor('s', 'k', ''), '')).toThrow(BadRequestError);
  });
  it('open a cursor issued by an earlier deploy with the same secret: the format does not change under a client paging', () => {
    expect(openCursor('s', 'eyJrIjoiZGlyL8O8LnR4dCIsInAiOiJkaXIvIn0.lShgxiIkiw63-iJNlFVClF', 'dir/')).toBe('dir/ü.txt');
  });

  /** A cursor as sealCursor signs it (base64url payload, 22 characters of HMAC), for payloads it never writes. */
  const signed = (secret: string, payload: string) => {
    const b64 = Buffer.from(payload).toString('base64url');
    return `${b64}.${createHmac('sha256', secret).update(b64).digest('base64url').slice(0, 22)}`;
  };
  it('refuse a correctly signed cursor whose payload is not JSON', () => {
    expect(() => openCursor('s', signed('s', '{k:'), '')).toThrow(new BadRequestError('the "after" cursor is not one this API issued (its payload is not JSON)'));
  });
  it.each(['null', '"k"', '{"k":1,"p":""}', '{"k":"a"}', '{"p":""}'])('refuse a correctly signed cursor that is not a name and a prefix (%s)', (payload) => {
    expect(() => openCursor('s', signed('s', payload), '')).toThrow(new BadRequestError('the "after" cursor is not one this API issued'));
  });
});
