import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createRecord, deleteRecord, listRecords, pauseBeforeRetry, readRecord, UNCHANGED, updateRecord, writeRecord } from '../../lib/control';
import { ObjectChangedError, StoreUnavailableError } from '../../lib/errors';
import { testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';

/*
 * The control bucket's records change only by conditional writes. A ConditionalS3 behind the
 * client refuses a write whose If-Match / If-None-Match no longer holds, as S3 does, so the
 * read-modify-write loop is tested against the real protocol, other writers included.
 */

const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const c = { bucket: 'control', s3: client };
const KEY = 'records/a';

const puts = () => s3mock.commandCalls(PutObjectCommand).map((x) => x.args[0].input);
const stored = () => JSON.parse(fake.textOf('control', KEY)!) as unknown;

/** Another writer's record landing between our read and our write. */
const otherWriter = (value: (n: number) => unknown, times = Infinity) => {
  let n = 0;
  fake.beforeWrite.push((cmd, i) => {
    if (cmd === 'PutObject' && i.Key === KEY && n < times) fake.put('control', KEY, JSON.stringify(value(++n)));
  });
};

beforeEach(() => jest.spyOn(Math, 'random').mockReturnValue(0)); // no pause between attempts
afterEach(() => jest.restoreAllMocks());

describe('readRecord', () => {
  it('answers the parsed value with its ETag', async () => {
    const o = fake.put('control', KEY, '{"n":1}');
    expect(await readRecord(c, KEY)).toEqual({ value: { n: 1 }, etag: o.etag });
  });

  it('answers null for a record that is not there', async () => {
    expect(await readRecord(c, KEY)).toBeNull();
  });

  it('calls a record that is not JSON a broken control bucket, not a missing record', async () => {
    fake.put('control', KEY, 'not json{');
    const err = await readRecord(c, KEY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ store: 'control' });
  });

  it.each([
    ['a missing bucket', () => s3Error('NoSuchBucket', 404, 'The specified bucket does not exist')],
    ['a network error', networkError],
    ['a 503', () => s3Error('SlowDown', 503)],
    ['AccessDenied', () => s3Error('AccessDenied', 403)],
  ])('answers %s with StoreUnavailableError("control")', async (_, error) => {
    fake.put('control', KEY, '{}');
    fake.fail('control', error);
    await expect(readRecord(c, KEY)).rejects.toMatchObject({ name: 'StoreUnavailableError', store: 'control' });
  });
});

describe('writeRecord', () => {
  it('creates only if absent (If-None-Match: *), as JSON, and answers the new ETag', async () => {
    const etag = await writeRecord(c, KEY, { n: 1 }, null);
    expect(etag).toBe(fake.has('control', KEY)!.etag);
    expect(puts()).toEqual([{ Bucket: 'control', Key: KEY, Body: '{"n":1}', ContentType: 'application/json', IfNoneMatch: '*' }]);
  });

  it('replaces only the version it read (If-Match), never with If-None-Match', async () => {
    const o = fake.put('control', KEY, '{"n":1}');
    await writeRecord(c, KEY, { n: 2 }, o.etag);
    expect(puts()).toEqual([{ Bucket: 'control', Key: KEY, Body: '{"n":2}', ContentType: 'application/json', IfMatch: o.etag }]);
    expect(stored()).toEqual({ n: 2 });
  });

  it('refuses to create over a record another writer created (412): ObjectChangedError, the record kept', async () => {
    fake.put('control', KEY, '{"theirs":true}');
    const err = await writeRecord(c, KEY, { n: 1 }, null).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectChangedError);
    expect(err).toMatchObject({ store: 'control', key: KEY });
    expect(stored()).toEqual({ theirs: true });
  });

  it('refuses to replace a record changed since it was read (412)', async () => {
    const o = fake.put('control', KEY, '{"n":1}');
    fake.put('control', KEY, '{"n":9}');
    await expect(writeRecord(c, KEY, { n: 2 }, o.etag)).rejects.toThrow(ObjectChangedError);
    expect(stored()).toEqual({ n: 9 });
  });

  it('calls a record deleted since it was read (404 on If-Match) changed', async () => {
    const o = fake.put('control', KEY, '{"n":1}');
    fake.delete('control', KEY);
    await expect(writeRecord(c, KEY, { n: 2 }, o.etag)).rejects.toThrow(ObjectChangedError);
    expect(fake.has('control', KEY)).toBeUndefined();
  });

  it("calls S3's 409 ConditionalRequestConflict changed", async () => {
    s3mock.on(PutObjectCommand).rejects(s3Error('ConditionalRequestConflict', 409));
    await expect(writeRecord(c, KEY, { n: 1 }, null)).rejects.toThrow(ObjectChangedError);
  });

  it.each([
    ['a network error', networkError],
    ['a 500', () => s3Error('InternalError', 500)],
    ['a missing bucket', () => s3Error('NoSuchBucket', 404)],
  ])('answers %s with StoreUnavailableError("control")', async (_, error) => {
    s3mock.on(PutObjectCommand).rejects(error());
    await expect(writeRecord(c, KEY, { n: 1 }, null)).rejects.toMatchObject({ name: 'StoreUnavailableError', store: 'control' });
  });
});

describe("the control bucket's answers, signal by signal", () => {
  const failWith = (thrown: unknown) => s3mock.on(PutObjectCommand).callsFake(() => Promise.reject(thrown));
  const caught = () => writeRecord(c, KEY, { n: 1 }, null).catch((e: unknown) => e);

  it.each([
    ['a PreconditionFailed without a status', { name: 'PreconditionFailed' }],
    ['a 412 under another name', { name: 'Unknown', $metadata: { httpStatusCode: 412 } }],
    ['a ConditionalRequestConflict without a status', { name: 'ConditionalRequestConflict' }],
  ])('calls %s changed, keeping what S3 said as the cause', async (_, thrown) => {
    failWith(thrown);
    const err = await caught();
    expect(err).toBeInstanceOf(ObjectChangedError);
    expect((err as Error).cause).toBe(thrown);
  });

  it.each([
    ['nothing at all', undefined],
    ['an error without a name or status', new Error('socket hang up')],
  ])('calls %s thrown unavailable, keeping it as the cause', async (_, thrown) => {
    failWith(thrown);
    const err = await caught();
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).cause).toBe(thrown);
  });

  it('keeps the 404 that made an If-Match write changed as its cause', async () => {
    const missing = s3Error('NoSuchKey', 404);
    failWith(missing);
    expect(((await writeRecord(c, KEY, { n: 1 }, '"e"').catch((e: unknown) => e)) as Error).cause).toBe(missing);
  });

  it("answers an empty ETag when S3's answer has none, on read and on write", async () => {
    s3mock.on(PutObjectCommand).resolves({});
    expect(await writeRecord(c, KEY, { n: 1 }, null)).toBe('');
    fake.put('control', KEY, '{"n":1}');
    s3mock.on(GetObjectCommand).callsFake(() => ({ Body: { transformToString: async () => '{"n":1}' } }));
    expect(await readRecord(c, KEY)).toEqual({ value: { n: 1 }, etag: '' });
  });

  it('keeps the parse error of a record that is not JSON as the cause of its unavailability', async () => {
    fake.put('control', KEY, '{');
    const err = await readRecord(c, KEY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).cause).toBeInstanceOf(SyntaxError);
  });
});

describe('deleteRecord', () => {
  it('deletes the record, and is content when it is absent already', async () => {
    fake.put('control', KEY, '{}');
    await deleteRecord(c, KEY);
    expect(fake.has('control', KEY)).toBeUndefined();
    await deleteRecord(c, KEY);
    expect(s3mock.commandCalls(DeleteObjectCommand).map((x) => x.args[0].input)).toEqual([
      { Bucket: 'control', Key: KEY },
      { Bucket: 'control', Key: KEY },
    ]);
  });

  it('answers a bucket that fails with StoreUnavailableError("control")', async () => {
    fake.fail('control', networkError);
    await expect(deleteRecord(c, KEY)).rejects.toMatchObject({ name: 'StoreUnavailableError', store: 'control' });
  });
});

describe('updateRecord', () => {
  const add = (x: number) => (cur: { n: number } | undefined) => ({ n: (cur?.n ?? 0) + x });

  it('creates an absent record from undefined, conditional on its absence', async () => {
    expect(await updateRecord(c, KEY, add(1))).toEqual({ n: 1 });
    expect(stored()).toEqual({ n: 1 });
    expect(puts()[0]).toMatchObject({ IfNoneMatch: '*' });
  });

  it('replaces an existing record, conditional on the ETag it read', async () => {
    const o = fake.put('control', KEY, '{"n":5}');
    expect(await updateRecord(c, KEY, add(1))).toEqual({ n: 6 });
    expect(puts()[0]).toMatchObject({ IfMatch: o.etag });
  });

  it('loses to another writer between its read and its write, reads again and merges: nothing is lost', async () => {
    fake.put('control', KEY, '{"n":5}');
    otherWriter(() => ({ n: 100 }), 1);
    const change = jest.fn(add(1));
    expect(await updateRecord(c, KEY, change)).toEqual({ n: 101 });
    expect(stored()).toEqual({ n: 101 });
    expect(change.mock.calls.map(([v]) => v)).toEqual([{ n: 5 }, { n: 100 }]);
    expect(puts()).toHaveLength(2);
  });

  it('loses a create to another creator, then replaces what that one wrote', async () => {
    otherWriter(() => ({ n: 10 }), 1);
    expect(await updateRecord(c, KEY, add(1))).toEqual({ n: 11 });
    expect(puts().map((p) => [p.IfNoneMatch, p.IfMatch !== undefined])).toEqual([['*', false], [undefined, true]]);
  });

  it('gives up with ObjectChangedError after 20 lost writes', async () => {
    fake.put('control', KEY, '{"n":0}');
    otherWriter((n) => ({ n: n * 1000 }));
    const err = await updateRecord(c, KEY, add(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectChangedError);
    expect(puts()).toHaveLength(20);
    expect(stored()).toEqual({ n: 20_000 });
  });

  it('succeeds on its 20th attempt after 19 lost writes', async () => {
    fake.put('control', KEY, '{"n":0}');
    otherWriter((n) => ({ n: n * 1000 }), 19);
    expect(await updateRecord(c, KEY, add(1))).toEqual({ n: 19_001 });
    expect(puts()).toHaveLength(20);
  });

  it('loses as many writes as it is told it may before giving up', async () => {
    fake.put('control', KEY, '{"n":0}');
    otherWriter((n) => ({ n: n * 1000 }), 44);
    await expect(updateRecord(c, KEY, add(1), { attempts: 44 })).rejects.toThrow(ObjectChangedError);
    expect(puts()).toHaveLength(44);
    expect(await updateRecord(c, KEY, add(1), { attempts: 44 })).toEqual({ n: 44_001 });
  });

  it('pauses after a lost write for a random part of a span that doubles from 10 ms, up to 250 ms', () => {
    jest.spyOn(Math, 'random').mockReturnValue(1);
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(pauseBeforeRetry)).toEqual([10, 20, 40, 80, 160, 250, 250, 250]);
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    expect([1, 6].map(pauseBeforeRetry)).toEqual([5, 125]);
  });

  it('waits those pauses between its attempts', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(1);
    const pauses: number[] = [];
    jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms: number) => {
      pauses.push(ms);
      fn();
      return 0;
    }) as unknown as typeof setTimeout);
    fake.put('control', KEY, '{"n":0}');
    otherWriter((n) => ({ n }), 3);
    await updateRecord(c, KEY, add(1));
    expect(pauses).toEqual([10, 20, 40]);
  });

  it('writes nothing when the change answers UNCHANGED, and answers what is stored', async () => {
    expect(await updateRecord(c, KEY, () => UNCHANGED)).toBeUndefined();
    fake.put('control', KEY, '{"n":3}');
    expect(await updateRecord(c, KEY, () => UNCHANGED)).toEqual({ n: 3 });
    expect(s3mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('tries a control bucket that is down three times in all, reading afresh each time, then gives up', async () => {
    fake.fail('control', networkError);
    await expect(updateRecord(c, KEY, add(1))).rejects.toThrow(StoreUnavailableError);
    expect(s3mock.commandCalls(GetObjectCommand)).toHaveLength(3);
  });

  it('tries a write the bucket failed three times in all, then gives up', async () => {
    s3mock.on(PutObjectCommand).rejects(s3Error('InternalError', 500));
    await expect(updateRecord(c, KEY, add(1))).rejects.toThrow(StoreUnavailableError);
    expect(puts()).toHaveLength(3);
  });

  it('decides again from a fresh read after a write whose answer was lost, so a change applies once', async () => {
    // S3 stores the first write, but its answer never comes.
    let lost = 1;
    fake.beforeWrite.push((cmd, i) => {
      if (cmd === 'PutObject' && i.Key === KEY && lost-- > 0) {
        fake.put('control', KEY, JSON.stringify({ n: 1 }));
        throw networkError();
      }
    });
    const seen: unknown[] = [];
    await updateRecord(c, KEY, (cur: { n: number } | undefined) => {
      seen.push(cur);
      return cur?.n === 1 ? UNCHANGED : { n: 1 };
    });
    expect(seen).toEqual([undefined, { n: 1 }]);
    expect(stored()).toEqual({ n: 1 });
  });
});

describe('createRecord', () => {
  it('creates a record only where none is', async () => {
    await createRecord(c, 'journal/1', { a: 1 });
    expect(fake.records('journal/')).toEqual([{ a: 1 }]);
    expect(puts()[0]).toMatchObject({ IfNoneMatch: '*' });
    await expect(createRecord(c, 'journal/1', { a: 2 })).rejects.toThrow(ObjectChangedError);
    expect(fake.records('journal/')).toEqual([{ a: 1 }]);
  });
});

describe('listRecords', () => {
  const keys = async (prefix: string, opts = {}) => {
    const out: string[] = [];
    for await (const r of listRecords(c, prefix, opts)) out.push(r.key);
    return out;
  };

  it('lists the keys under a prefix in order, after startAfter, page by page', async () => {
    for (let i = 0; i < 2500; i++) fake.put('control', `p/${String(i).padStart(4, '0')}`, '{}');
    fake.put('control', 'q/0', '{}');
    const all = await keys('p/');
    expect(all).toHaveLength(2500);
    expect(all[0]).toBe('p/0000');
    expect(all[2499]).toBe('p/2499');
    expect(s3mock.commandCalls(ListObjectsV2Command)).toHaveLength(3);
    expect(await keys('p/', { startAfter: 'p/2497' })).toEqual(['p/2498', 'p/2499']);
  });

  it('stops after max keys, asking for no more than it needs', async () => {
    for (let i = 0; i < 10; i++) fake.put('control', `p/${i}`, '{}');
    expect(await keys('p/', { max: 3 })).toEqual(['p/0', 'p/1', 'p/2']);
    expect(s3mock.commandCalls(ListObjectsV2Command).map((x) => x.args[0].input.MaxKeys)).toEqual([3]);
  });

  it('reads a page without Contents as empty, and a record without LastModified as dated 0', async () => {
    s3mock.on(ListObjectsV2Command).resolvesOnce({}).resolves({ Contents: [{ Key: 'p/1' }] });
    const first: unknown[] = [];
    for await (const r of listRecords(c, 'p/')) first.push(r);
    expect(first).toEqual([]);
    const second: unknown[] = [];
    for await (const r of listRecords(c, 'p/')) second.push(r);
    expect(second).toEqual([{ key: 'p/1', lastModifiedMs: 0 }]);
  });

  it('answers a failing listing with StoreUnavailableError("control")', async () => {
    fake.fail('control', () => s3Error('InternalError', 500));
    await expect(keys('p/')).rejects.toMatchObject({ name: 'StoreUnavailableError', store: 'control' });
  });
});
