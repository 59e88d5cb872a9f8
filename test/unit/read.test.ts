import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from '../../lib/deps';
import { AllStoresUnavailableError } from '../../lib/errors';
import { WINDOW_BYTES } from '../../lib/bytecompare';
import { readFile } from '../../lib/read';
import type { ReadAnswer } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { makeStores, networkError, s3Error, useFakeS3 } from '../helpers/mock-s3';

const { s3mock, fake } = useFakeS3();
const stores = makeStores(3);
const CHUNK = 1024;

/** Deps over the first `n` stores, metered. */
const depsOf = (n: number, over: Partial<Deps> = {}) => makeDeps(stores.slice(0, n), { compareChunkBytes: CHUNK, ...over });

const bytes = (n: number, seed = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

const gets = () => s3mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input);
/** GETs pinned to a copy's ETag: the reads of the byte compare (the speculative probe is not pinned). */
const pinnedGets = () => gets().filter((i) => i.IfMatch !== undefined);

type Single = Extract<ReadAnswer, { status: 'SINGLE' }>;
type Different = Extract<ReadAnswer, { status: 'DIFFERENT' }>;

async function single(deps: Deps, key: string, opts = {}): Promise<Single> {
  const answer = await readFile(deps, key, opts);
  expect(answer.status).toBe('SINGLE');
  return answer as Single;
}

async function different(deps: Deps, key: string, opts = {}): Promise<Different> {
  const answer = await readFile(deps, key, opts);
  expect(answer.status).toBe('DIFFERENT');
  return answer as Different;
}

describe('readFile: the compare rule', () => {
  it('answers DIFFERENT when sizes differ, without comparing bytes', async () => {
    fake.put('bucket-1', 'f', 'short', { etag: 'a-2' });
    fake.put('bucket-2', 'f', 'a longer one', { etag: 'b-2' });
    const answer = await different(depsOf(2), 'f');

    expect(answer.versions.map((v) => [v.stores, v.size])).toEqual([[['server1'], 5], [['server2'], 12]]);
    // No compare: server2's body is read once, for its content.
    expect(gets().map((i) => i.Bucket)).toEqual(['bucket-1', 'bucket-2']);
  });

  it('answers SINGLE for equal single-part ETags without a body compare', async () => {
    fake.put('bucket-1', 'f', 'same bytes');
    fake.put('bucket-2', 'f', 'same bytes');
    const answer = await single(depsOf(2), 'f');

    expect(answer.copies.map((c) => c.store)).toEqual(['server1', 'server2']);
    expect(answer.content).toEqual({ base64: b64('same bytes') });
    expect(pinnedGets()).toHaveLength(0);
  });

  it('answers DIFFERENT for different single-part MD5 ETags of the same size, without a body compare', async () => {
    fake.put('bucket-1', 'f', 'version 1');
    fake.put('bucket-2', 'f', 'version 2');
    const answer = await different(depsOf(2), 'f');

    expect(answer.versions.map((v) => v.content)).toEqual([{ base64: b64('version 1') }, { base64: b64('version 2') }]);
    expect(gets().map((i) => i.Bucket)).toEqual(['bucket-1', 'bucket-2']);
  });

  it('does not use the ETag rule under SSE-KMS: equal content with different ETags is SINGLE after a byte compare', async () => {
    fake.put('bucket-1', 'f', 'secret text', { etag: '11111111111111111111111111111111', sse: 'aws:kms' });
    fake.put('bucket-2', 'f', 'secret text', { etag: '22222222222222222222222222222222', sse: 'aws:kms' });
    await single(depsOf(2), 'f');

    expect(pinnedGets()).toEqual([expect.objectContaining({ Bucket: 'bucket-2', IfMatch: '"22222222222222222222222222222222"' })]);
  });

  it('does not use the ETag rule under SSE-KMS: equal ETags over different content are DIFFERENT', async () => {
    fake.put('bucket-1', 'f', 'secret one', { etag: '33333333333333333333333333333333', sse: 'aws:kms' });
    fake.put('bucket-2', 'f', 'secret two', { etag: '33333333333333333333333333333333', sse: 'aws:kms' });
    await different(depsOf(2), 'f');
  });

  it('answers SINGLE for equal content with different multipart ETags, after a byte compare', async () => {
    const content = bytes(3 * CHUNK);
    fake.put('bucket-1', 'f', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'f', content, { etag: 'def-2' });
    const deps = depsOf(2);
    const answer = await single(deps, 'f');

    expect(answer.copies.map((c) => c.etag)).toEqual(['abc-3', 'def-2']);
    expect(answer.content).toEqual({ base64: content.toString('base64') });
    // Each copy read once: server1's body from the speculative GET is what server2's is compared with.
    expect(gets().map((i) => i.Bucket)).toEqual(['bucket-1', 'bucket-2']);
    expect(deps.meter!.bodyBytes).toBe(2 * content.length);
  });

  it('answers DIFFERENT for multipart copies whose bytes differ', async () => {
    fake.put('bucket-1', 'f', bytes(3 * CHUNK), { etag: 'abc-3' });
    fake.put('bucket-2', 'f', bytes(3 * CHUNK, 1), { etag: 'abc-3' });
    await different(depsOf(2), 'f');
  });

  it('answers SINGLE for equal full-object checksums without reading bodies', async () => {
    const checksum = { checksums: { CRC64NVME: 'q0Cx8vMTUVs=' }, checksumType: 'FULL_OBJECT' as const };
    fake.put('bucket-1', 'f', bytes(3 * CHUNK), { etag: 'abc-3', ...checksum });
    fake.put('bucket-2', 'f', bytes(3 * CHUNK), { etag: 'def-2', ...checksum });

    await single(depsOf(2), 'f', { meta: true });
    expect(s3mock).not.toHaveReceivedCommand(GetObjectCommand);
    expect(s3mock).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: 'bucket-2', ChecksumMode: 'ENABLED' });

    s3mock.resetHistory();
    const deps = depsOf(2);
    const answer = await single(deps, 'f');
    expect(answer.content).toEqual({ base64: bytes(3 * CHUNK).toString('base64') });
    expect(gets()).toEqual([expect.objectContaining({ Bucket: 'bucket-1', ChecksumMode: 'ENABLED' })]);
    expect(deps.meter!.bodyBytes).toBe(3 * CHUNK);
  });

  it('answers DIFFERENT for different full-object checksums without reading bodies', async () => {
    fake.put('bucket-1', 'f', bytes(100), { etag: 'a-2', checksums: { CRC32: 'AAAAAA==' }, checksumType: 'FULL_OBJECT' });
    fake.put('bucket-2', 'f', bytes(100, 3), { etag: 'b-2', checksums: { CRC32: 'BBBBBB==' }, checksumType: 'FULL_OBJECT' });
    await different(depsOf(2), 'f', { meta: true });

    expect(s3mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  it('ignores equal composite checksums and compares bytes', async () => {
    const composite = { checksums: { CRC32C: 'Zm9vYg==-3' }, checksumType: 'COMPOSITE' as const };
    fake.put('bucket-1', 'f', bytes(3 * CHUNK), { etag: 'abc-3', ...composite });
    fake.put('bucket-2', 'f', bytes(3 * CHUNK, 9), { etag: 'abc-3', ...composite });
    await different(depsOf(2), 'f', { meta: true });

    expect(pinnedGets().map((i) => i.Bucket).sort()).toEqual(['bucket-1', 'bucket-2']);
  });
});

describe('readFile: streamed compare', () => {
  const SIZE = 4 * 1024 * 1024;
  const big = (seed = 0) => Buffer.alloc(SIZE, bytes(251, seed));

  it('stops early when a large object differs near its start, one GET per copy', async () => {
    const changed = big();
    changed[100] = changed[100]! ^ 0xff;
    fake.put('bucket-1', 'big', big(), { etag: 'abc-10' });
    fake.put('bucket-2', 'big', changed, { etag: 'def-10' });
    const deps = depsOf(2, { inlineLimit: 4 * CHUNK });
    await different(deps, 'big');

    expect(deps.meter!.bodyBytes).toBeLessThanOrEqual(2 * (WINDOW_BYTES + 64 * 1024));
    expect(fake.servedTotal()).toBeLessThanOrEqual(2 * (WINDOW_BYTES + 64 * 1024));
    expect(gets().every((i) => i.Range === undefined)).toBe(true);
    // The speculative probe (its body left unread), then one pinned GET per copy.
    expect(gets()).toEqual([
      { Bucket: 'bucket-1', Key: 'big', ChecksumMode: 'ENABLED' },
      expect.objectContaining({ Bucket: 'bucket-1', IfMatch: '"abc-10"' }),
      expect.objectContaining({ Bucket: 'bucket-2', IfMatch: '"def-10"' }),
    ]);
  });

  it('answers SINGLE after streaming both copies of equal content through once', async () => {
    fake.put('bucket-1', 'big', big(), { etag: 'abc-10' });
    fake.put('bucket-2', 'big', big(), { etag: 'def-5' });
    const deps = depsOf(2, { inlineLimit: 4 * CHUNK });
    const answer = await single(deps, 'big');

    expect(pinnedGets().map((i) => i.Bucket)).toEqual(['bucket-1', 'bucket-2']);
    expect(deps.meter!.bodyBytes).toBe(2 * SIZE);
    expect(answer.content).toEqual({ url: expect.any(String), expires: expect.any(String) });
  });
});

describe('readFile: stores that do not answer', () => {
  const failures: [string, () => Error][] = [
    ['a network error', networkError],
    ['a 500', () => s3Error('InternalError', 500)],
    ['a 503 SlowDown', () => s3Error('SlowDown', 503)],
    ['AccessDenied (403)', () => s3Error('AccessDenied', 403, 'Access Denied')],
  ];

  it.each(failures)('answers from the rest when one store fails with %s', async (_, error) => {
    fake.put('bucket-1', 'f', 'hello');
    fake.put('bucket-2', 'f', 'hello');
    fake.fail('bucket-2', error);
    const answer = await single(depsOf(2), 'f');

    expect(answer.copies.map((c) => c.store)).toEqual(['server1']);
    expect(answer.content).toEqual({ base64: b64('hello') });
    expect(answer.unavailable).toEqual(['server2']);
  });

  it('reads the body from another store when the first store is down', async () => {
    fake.put('bucket-1', 'f', 'hello');
    fake.put('bucket-2', 'f', 'hello');
    fake.fail('bucket-1', networkError);
    const answer = await single(depsOf(2), 'f');

    expect(answer).toMatchObject({ copies: [{ store: 'server2' }], content: { base64: b64('hello') }, unavailable: ['server1'] });
  });

  it('throws AllStoresUnavailableError naming every store when none answers', async () => {
    fake.put('bucket-1', 'f', 'hello');
    fake.fail('bucket-1', networkError);
    fake.fail('bucket-2', () => s3Error('InternalError', 500));
    const err = await readFile(depsOf(2), 'f').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(AllStoresUnavailableError);
    expect((err as AllStoresUnavailableError).unavailable).toEqual(['server1', 'server2']);
  });

  it.each([
    ['read whole (inline)', {}, {}],
    ['streamed (meta)', {}, { meta: true }],
    ['streamed (by URL)', { inlineLimit: CHUNK }, {}],
  ])('calls a store whose body breaks off during the byte compare unavailable, not different: %s', async (_, over, opts) => {
    fake.put('bucket-1', 'f', bytes(4 * CHUNK), { etag: 'a-4' });
    fake.put('bucket-2', 'f', bytes(4 * CHUNK), { etag: 'b-4' });
    fake.put('bucket-3', 'f', bytes(4 * CHUNK), { etag: 'c-4' });
    fake.cutBody('bucket-3', 2 * CHUNK);
    const answer = await single(depsOf(3, over), 'f', opts);

    expect(answer.copies.map((c) => c.store)).toEqual(['server1', 'server2']);
    expect(answer.unavailable).toEqual(['server3']);
  });

  it('calls a store whose pinned GET fails during the byte compare unavailable, not different', async () => {
    fake.put('bucket-1', 'f', bytes(4 * CHUNK), { etag: 'a-4' });
    fake.put('bucket-2', 'f', bytes(4 * CHUNK), { etag: 'b-4' });
    fake.fail('bucket-2', () => s3Error('InternalError', 500), { command: 'GetObject', when: (i) => i.IfMatch !== undefined });
    const answer = await single(depsOf(2), 'f', { meta: true });

    expect(answer.copies.map((c) => c.store)).toEqual(['server1']);
    expect(answer.unavailable).toEqual(['server2']);
  });

  it('answers NOT_FOUND with the stores that did not answer', async () => {
    fake.fail('bucket-2', networkError);
    await expect(readFile(depsOf(2), 'nothing')).resolves.toEqual({ status: 'NOT_FOUND', key: 'nothing', unavailable: ['server2'] });
  });

  it('reads the body from the next holder when one holder fails on the body read', async () => {
    fake.put('bucket-2', 'f', 'hello');
    fake.put('bucket-3', 'f', 'hello');
    fake.fail('bucket-2', () => s3Error('InternalError', 500), { command: 'GetObject' });
    const answer = await single(depsOf(3), 'f');

    expect(answer.content).toEqual({ base64: b64('hello') });
    expect(answer.copies.map((c) => c.store)).toEqual(['server2', 'server3']);
  });
});

describe('readFile: answers', () => {
  it('answers NOT_FOUND when no store holds the key', async () => {
    await expect(readFile(depsOf(3), 'nothing')).resolves.toEqual({ status: 'NOT_FOUND', key: 'nothing', unavailable: [] });
  });

  it('answers SINGLE with the one store that holds the key', async () => {
    fake.put('bucket-2', 'fileC.txt', 'This file only exists on SERVER 2.');
    const answer = await single(depsOf(2), 'fileC.txt');

    expect(answer.copies.map((c) => c.store)).toEqual(['server2']);
    expect(answer.content).toEqual({ base64: b64('This file only exists on SERVER 2.') });
  });

  it('answers SINGLE with empty content for an empty object, not a miss', async () => {
    fake.put('bucket-1', 'empty', '');
    fake.put('bucket-2', 'empty', '');
    const answer = await single(depsOf(2), 'empty');
    expect(answer.content).toEqual({ base64: '' });
    expect(answer.copies.map((c) => c.size)).toEqual([0, 0]);

    fake.delete('bucket-1', 'empty');
    expect((await single(depsOf(2), 'empty')).content).toEqual({ base64: '' });
  });

  it('labels a version held by two of three stores with both', async () => {
    fake.put('bucket-1', 'f', 'version A', { mtime: 1000 });
    fake.put('bucket-2', 'f', 'version B', { mtime: 2000 });
    fake.put('bucket-3', 'f', 'version A', { mtime: 1500 });
    const answer = await different(depsOf(3), 'f');

    expect(answer.versions).toEqual([
      expect.objectContaining({ stores: ['server1', 'server3'], size: 9, mtime: new Date(1500).toISOString(), newest: false, content: { base64: b64('version A') } }),
      expect.objectContaining({ stores: ['server2'], size: 9, mtime: new Date(2000).toISOString(), newest: true, content: { base64: b64('version B') } }),
    ]);
  });

  it('marks the newest version by x-amz-meta-mtime over LastModified', async () => {
    fake.put('bucket-1', 'f', 'old content, copied late', { mtime: Date.UTC(2026, 0, 1), lastModified: new Date('2026-06-01T00:00:00Z') });
    fake.put('bucket-2', 'f', 'new content, copied early', { mtime: Date.UTC(2026, 0, 2), lastModified: new Date('2026-05-01T00:00:00Z') });
    const answer = await different(depsOf(2), 'f');

    expect(answer.versions.map((v) => [v.stores[0], v.newest, v.mtime])).toEqual([
      ['server1', false, '2026-01-01T00:00:00.000Z'],
      ['server2', true, '2026-01-02T00:00:00.000Z'],
    ]);
  });

  it('marks the newest version by LastModified when there is no x-amz-meta-mtime', async () => {
    fake.put('bucket-1', 'f', 'newer', { lastModified: new Date('2026-02-02T00:00:00Z') });
    fake.put('bucket-2', 'f', 'older!', { lastModified: new Date('2026-02-01T00:00:00Z') });
    const answer = await different(depsOf(2), 'f');

    expect(answer.versions.map((v) => v.newest)).toEqual([true, false]);
    expect(answer.versions[0]!.mtime).toBe('2026-02-02T00:00:00.000Z');
  });

  it('marks exactly one version newest when mtimes tie', async () => {
    fake.put('bucket-1', 'f', 'one', { mtime: 5000 });
    fake.put('bucket-2', 'f', 'two', { mtime: 5000 });
    fake.put('bucket-3', 'f', 'six', { mtime: 5000 });
    const answer = await different(depsOf(3), 'f');

    expect(answer.versions.filter((v) => v.newest)).toHaveLength(1);
  });

  it('reads the body from one store only when the copies are identical', async () => {
    for (const b of ['bucket-1', 'bucket-2', 'bucket-3']) fake.put(b, 'fileA.txt', 'This is the original version of file A.');
    const deps = depsOf(3);
    const answer = await single(deps, 'fileA.txt');

    expect(answer.copies).toHaveLength(3);
    expect(s3mock).toHaveReceivedCommandTimes(GetObjectCommand, 1);
    expect(s3mock).toHaveReceivedCommandTimes(HeadObjectCommand, 2);
    expect(s3mock).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: 'bucket-2', Key: 'fileA.txt' });
    expect(s3mock).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: 'bucket-3', Key: 'fileA.txt' });
    expect(deps.meter!.bodyBytes).toBe('This is the original version of file A.'.length);
  });

  it('reads no body with meta: true when ETags decide', async () => {
    fake.put('bucket-1', 'same', 'x');
    fake.put('bucket-2', 'same', 'x');
    fake.put('bucket-1', 'diff', 'x');
    fake.put('bucket-2', 'diff', 'y');
    const deps = depsOf(2);

    const s = await single(deps, 'same', { meta: true });
    const d = await different(deps, 'diff', { meta: true });

    expect(s).not.toHaveProperty('content');
    expect(d.versions.every((v) => !('content' in v))).toBe(true);
    expect(s3mock).not.toHaveReceivedCommand(GetObjectCommand);
    expect(deps.meter!.bodyBytes).toBe(0);
  });

  it('answers with a presigned URL above inlineLimit and reads no body bytes', async () => {
    const content = bytes(5000);
    fake.put('bucket-1', 'dir/big file.bin', content);
    fake.put('bucket-2', 'dir/big file.bin', content);
    const deps = depsOf(2, { inlineLimit: 4096, urlExpirySeconds: 60 });
    const before = Date.now();
    const answer = await single(deps, 'dir/big file.bin');

    const c = answer.content as { url: string; expires: string };
    expect(c.url).toContain('bucket-1');
    expect(c.url).toContain('dir/big%20file.bin');
    expect(c.url).toContain('X-Amz-Expires=60');
    expect(Date.parse(c.expires)).toBeGreaterThanOrEqual(before + 59_000);
    expect(Date.parse(c.expires)).toBeLessThanOrEqual(Date.now() + 61_000);
    expect(deps.meter!.bodyBytes).toBe(0);
    expect(fake.servedTotal()).toBe(0);
  });

  it('shares the inline budget across the versions of a DIFFERENT answer', async () => {
    fake.put('bucket-1', 'f', 'a'.repeat(600));
    fake.put('bucket-2', 'f', 'b'.repeat(600));
    const answer = await different(depsOf(2, { inlineLimit: 1000 }), 'f');
    expect(answer.versions[0]!.content).toEqual({ base64: b64('a'.repeat(600)) });
    expect(answer.versions[1]!.content).toEqual({ url: expect.stringContaining('bucket-2'), expires: expect.any(String) });

    fake.put('bucket-1', 'g', 'a'.repeat(400));
    fake.put('bucket-2', 'g', 'b'.repeat(400));
    const both = await different(depsOf(2, { inlineLimit: 1000 }), 'g');
    expect(both.versions.map((v) => v.content)).toEqual([{ base64: b64('a'.repeat(400)) }, { base64: b64('b'.repeat(400)) }]);
  });

  it.each([
    ['read whole (inline)', {}],
    ['streamed (meta)', { meta: true }],
  ])('reads again when a copy is replaced between its HEAD and its read, answering the new state: %s', async (_, opts) => {
    const content = bytes(2 * CHUNK);
    fake.put('bucket-1', 'f', content, { etag: 'abc-2' });
    fake.put('bucket-2', 'f', bytes(2 * CHUNK, 5), { etag: 'old-2' });
    let replaced = false;
    fake.onRequest((command, input) => {
      if (!replaced && command === 'GetObject' && input.Bucket === 'bucket-2' && input.IfMatch) {
        replaced = true;
        fake.put('bucket-2', 'f', content, { etag: 'new-1' });
      }
    });
    const answer = await single(depsOf(2), 'f', opts);

    expect(replaced).toBe(true);
    expect(answer.copies.map((c) => c.etag)).toEqual(['abc-2', 'new-1']);
    expect(s3mock).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'bucket-2', IfMatch: '"old-2"' });
    expect(s3mock).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'bucket-2', IfMatch: '"new-1"' });
  });
});
