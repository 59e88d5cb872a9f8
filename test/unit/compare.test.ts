import { GetObjectCommand } from '@aws-sdk/client-s3';
import { PassThrough, Readable } from 'node:stream';
import { WINDOW_BYTES } from '../../lib/bytecompare';
import { ChangedWhileReadingError, cheapVerdict, compareBytes, compareMany, groupByContent } from '../../lib/compare';
import { StoreUnavailableError } from '../../lib/errors';
import { headObject, toObjectHead, type ObjectHead } from '../../lib/stores';
import { makeDeps } from '../helpers/deps';
import { makeStores, s3Error, useFakeS3 } from '../helpers/mock-s3';

const { s3mock, fake } = useFakeS3();
const stores = makeStores(3);
const CHUNK = 1024;
const KiB = 1024;
const MiB = 1024 * KiB;

/** A head as HEAD would describe it, for the pure part of the rule. */
function head(store: string, over: Partial<ObjectHead> = {}): ObjectHead {
  const plain = { store, size: 10, etag: '"0123456789abcdef0123456789abcdef"', mtimeMs: 0, lastModifiedMs: 0, checksums: {}, etagIsMd5: true, metadata: {} };
  return { ...plain, ...over };
}

/** HEADs `key` on each store, as the read path does before comparing. */
async function headsOf(key: string, n = 2): Promise<ObjectHead[]> {
  const heads = await Promise.all(stores.slice(0, n).map((s) => headObject(s, key)));
  return heads.map((h) => h!);
}

const gets = () => s3mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input);

const bytes = (n: number, seed = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));
/** `n` bytes quickly (a pattern repeated), for objects larger than the compare's windows. */
const big = (n: number) => Buffer.alloc(n, bytes(251));

describe('cheapVerdict', () => {
  it('calls copies of different sizes different, saying both sizes', () => {
    expect(cheapVerdict(head('server1', { size: 10 }), head('server2', { size: 12 }))).toEqual({
      same: false,
      reason: 'Sizes differ (server1 10 vs server2 12)',
    });
  });

  it('calls two empty copies identical whatever their ETags', () => {
    const a = head('server1', { size: 0, etag: '"x"', etagIsMd5: false });
    const b = head('server2', { size: 0, etag: '"y-2"' });
    expect(cheapVerdict(a, b)).toEqual({ same: true, by: 'size' });
  });

  it('calls copies with equal single-part ETags identical', () => {
    expect(cheapVerdict(head('server1'), head('server2'))).toEqual({ same: true, by: 'etag' });
  });

  it('calls copies with different single-part MD5 ETags different, saying both', () => {
    const v = cheapVerdict(head('server1', { etag: '"aaa"' }), head('server2', { etag: '"bbb"' }));
    expect(v).toEqual({ same: false, reason: 'MD5s differ (server1 "aaa" vs server2 "bbb")' });
  });

  it('cannot decide on multipart ETags, equal content may carry different ones', () => {
    expect(cheapVerdict(head('server1', { etag: '"abc-3"' }), head('server2', { etag: '"def-2"' }))).toBeUndefined();
    expect(cheapVerdict(head('server1', { etag: '"abc-3"' }), head('server2', { etag: '"abc"' }))).toBeUndefined();
  });

  it('does not trust ETags that are not MD5s (SSE-KMS), equal or not', () => {
    const kms = { etagIsMd5: false };
    expect(cheapVerdict(head('server1', kms), head('server2', kms))).toBeUndefined();
    expect(cheapVerdict(head('server1', { ...kms, etag: '"a"' }), head('server2', { ...kms, etag: '"b"' }))).toBeUndefined();
    expect(cheapVerdict(head('server1', kms), head('server2'))).toBeUndefined();
  });

  it('calls copies with equal full-object checksums identical despite multipart ETags', () => {
    const a = head('server1', { etag: '"abc-3"', checksums: { CRC64NVME: 'AAAAAAAAAAA=' } });
    const b = head('server2', { etag: '"def-2"', checksums: { CRC64NVME: 'AAAAAAAAAAA=' } });
    expect(cheapVerdict(a, b)).toEqual({ same: true, by: 'checksum' });
  });

  it('calls copies with different full-object checksums different, naming the algorithm', () => {
    const a = head('server1', { etagIsMd5: false, checksums: { SHA256: 'one' } });
    const b = head('server2', { etagIsMd5: false, checksums: { SHA256: 'two' } });
    expect(cheapVerdict(a, b)).toEqual({ same: false, reason: 'SHA256 checksums differ (server1 one vs server2 two)' });
  });

  it('cannot decide when the checksums are of different algorithms', () => {
    const a = head('server1', { etag: '"a-2"', checksums: { CRC32: 'x' } });
    const b = head('server2', { etag: '"b-2"', checksums: { SHA1: 'x' } });
    expect(cheapVerdict(a, b)).toBeUndefined();
  });
});

describe('toObjectHead', () => {
  const last = new Date('2026-03-01T10:00:00Z');

  it('keeps a FULL_OBJECT checksum of a multipart upload', () => {
    const h = toObjectHead('s', { ETag: '"abc-3"', ChecksumCRC64NVME: 'Zm9v', ChecksumType: 'FULL_OBJECT' });
    expect(h.checksums).toEqual({ CRC64NVME: 'Zm9v' });
  });

  it('ignores composite checksums: declared COMPOSITE, suffixed -N, or multipart without a type', () => {
    expect(toObjectHead('s', { ETag: '"abc-3"', ChecksumCRC32: 'Zm9v', ChecksumType: 'COMPOSITE' }).checksums).toEqual({});
    expect(toObjectHead('s', { ETag: '"abc-3"', ChecksumCRC32: 'Zm9v-3', ChecksumType: 'FULL_OBJECT' }).checksums).toEqual({});
    expect(toObjectHead('s', { ETag: '"abc-3"', ChecksumSHA256: 'Zm9v' }).checksums).toEqual({});
  });

  it('takes a single-part checksum without a type as full-object', () => {
    expect(toObjectHead('s', { ETag: '"abc"', ChecksumCRC32C: 'Zm9v' }).checksums).toEqual({ CRC32C: 'Zm9v' });
  });

  it('takes the logical mtime from x-amz-meta-mtime, else LastModified', () => {
    expect(toObjectHead('s', { LastModified: last, Metadata: { mtime: '1700000000000' } }).mtimeMs).toBe(1700000000000);
    expect(toObjectHead('s', { LastModified: last }).mtimeMs).toBe(last.getTime());
    for (const bad of ['', 'abc', '0', '-5', 'Infinity']) {
      expect(toObjectHead('s', { LastModified: last, Metadata: { mtime: bad } }).mtimeMs).toBe(last.getTime());
    }
  });

  it('knows which ETags are MD5s', () => {
    expect(toObjectHead('s', {}).etagIsMd5).toBe(true);
    expect(toObjectHead('s', { ServerSideEncryption: 'AES256' }).etagIsMd5).toBe(true);
    expect(toObjectHead('s', { ServerSideEncryption: 'aws:kms' }).etagIsMd5).toBe(false);
    expect(toObjectHead('s', { ServerSideEncryption: 'aws:kms:dsse' }).etagIsMd5).toBe(false);
    expect(toObjectHead('s', { SSECustomerAlgorithm: 'AES256' }).etagIsMd5).toBe(false);
  });
});

describe('compareBytes', () => {
  const deps = () => makeDeps(stores);

  it('streams equal copies through one GET per store, pinned to its ETag, reading each once', async () => {
    const content = bytes(10 * CHUNK + 100);
    fake.put('bucket-1', 'k', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'k', content, { etag: 'def-2' });
    const d = deps();
    const [a, b] = await headsOf('k');

    await expect(compareBytes(d, 'k', a!, b!)).resolves.toEqual({ same: true, by: 'bytes' });

    expect(gets()).toEqual([
      expect.objectContaining({ Bucket: 'bucket-1', IfMatch: '"abc-3"' }),
      expect.objectContaining({ Bucket: 'bucket-2', IfMatch: '"def-2"' }),
    ]);
    expect(gets().every((i) => i.Range === undefined)).toBe(true);
    expect(d.meter!.bodyBytes).toBe(2 * content.length);
    expect(fake.servedTotal()).toBe(2 * content.length);
  });

  it('stops at the first difference of a large object, reading a small part of it', async () => {
    const content = big(8 * MiB);
    const changed = Buffer.from(content);
    changed[5] = changed[5]! ^ 0xff;
    fake.put('bucket-1', 'k', content, { etag: 'abc-10' });
    fake.put('bucket-2', 'k', changed, { etag: 'def-10' });
    const d = deps();
    const [a, b] = await headsOf('k');

    await expect(compareBytes(d, 'k', a!, b!)).resolves.toEqual({
      same: false,
      reason: 'Contents differ (server1 vs server2, from byte 5)',
    });
    // At most a window per side (and the stream's own buffer) was pulled, not the 16 MiB.
    expect(fake.servedTotal()).toBeLessThanOrEqual(2 * (WINDOW_BYTES + 64 * KiB));
    expect(d.meter!.bodyBytes).toBeLessThanOrEqual(fake.servedTotal());
  });

  it('compares against a body already in hand without reading that copy again', async () => {
    const content = bytes(5 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'k', content, { etag: 'def-2' });
    const d = deps();
    const [a, b] = await headsOf('k');

    await expect(compareBytes(d, 'k', a!, b!, content)).resolves.toEqual({ same: true, by: 'bytes' });
    expect(gets()).toEqual([expect.objectContaining({ Bucket: 'bucket-2', IfMatch: '"def-2"' })]);
    expect(d.meter!.bodyBytes).toBe(content.length);
  });

  it('reports the offset of a difference in the last byte', async () => {
    const content = bytes(3 * CHUNK);
    const changed = Buffer.from(content);
    changed[content.length - 1] = changed[content.length - 1]! ^ 1;
    fake.put('bucket-1', 'k', content, { etag: 'a-3' });
    fake.put('bucket-2', 'k', changed, { etag: 'b-3' });
    const [a, b] = await headsOf('k');

    await expect(compareBytes(deps(), 'k', a!, b!)).resolves.toEqual({
      same: false,
      reason: `Contents differ (server1 vs server2, from byte ${content.length - 1})`,
    });
  });

  it.each([
    ['the second side', 'bucket-2', 'server2'],
    ['the first side', 'bucket-1', 'server1'],
  ])('throws StoreUnavailableError naming the store whose body breaks off halfway (%s)', async (_, bucket, store) => {
    const content = bytes(6 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', content, { etag: 'b-2' });
    const [a, b] = await headsOf('k');
    fake.cutBody(bucket, 3 * CHUNK);

    const err = await compareBytes(deps(), 'k', a!, b!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).store).toBe(store);
    expect(((err as Error).cause as Error).message).toBe('read ECONNRESET');
  });

  it('closes the other bodies when one breaks off', async () => {
    const content = bytes(6 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', content, { etag: 'b-2' });
    const [a, b] = await headsOf('k');
    const held = new PassThrough();
    held.write(content.subarray(0, CHUNK)); // the rest never comes
    s3mock.on(GetObjectCommand, { Bucket: 'bucket-1' }).resolves({ ETag: '"a-2"', ContentLength: content.length, Body: held as never });
    fake.cutBody('bucket-2', 2 * CHUNK);

    await expect(compareBytes(deps(), 'k', a!, b!)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(held.destroyed).toBe(true);
  });

  it('throws StoreUnavailableError, not "different", for a body that ends before its length', async () => {
    const content = bytes(6 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', content, { etag: 'b-2' });
    const [a, b] = await headsOf('k');
    fake.cutBody('bucket-2', 2 * CHUNK, { end: true });

    const err = await compareBytes(deps(), 'k', a!, b!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).store).toBe('server2');
  });

  it('throws StoreUnavailableError naming the store whose GET fails, closing the other body', async () => {
    const content = bytes(6 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', content, { etag: 'b-2' });
    const [a, b] = await headsOf('k');
    fake.fail('bucket-2', () => s3Error('InternalError', 500), { command: 'GetObject' });

    const opened = new PassThrough();
    s3mock.on(GetObjectCommand, { Bucket: 'bucket-1' }).resolves({ ETag: '"a-2"', ContentLength: content.length, Body: opened as never });

    const err = await compareBytes(deps(), 'k', a!, b!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).store).toBe('server2');
    expect(opened.destroyed).toBe(true);
  });

  it('throws ChangedWhileReadingError when a copy is replaced or deleted after its HEAD', async () => {
    const content = bytes(2 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', content, { etag: 'b-2' });
    const [a, b] = await headsOf('k');

    fake.put('bucket-2', 'k', content, { etag: 'c-2' });
    await expect(compareBytes(deps(), 'k', a!, b!)).rejects.toThrow(new ChangedWhileReadingError('server2'));
    expect(new ChangedWhileReadingError('server2').message).toBe('the object changed on server2 while it was being read; try again');

    fake.delete('bucket-2', 'k');
    await expect(compareBytes(deps(), 'k', a!, b!)).rejects.toThrow(ChangedWhileReadingError);
  });

  it('notices a replaced copy even when the store ignores If-Match (by the ETag and length it answers)', async () => {
    const content = bytes(2 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', content, { etag: 'b-2' });
    const [a, b] = await headsOf('k');
    const ignoring = (obj: { bytes: Buffer; etag: string }) => ({ ETag: obj.etag, ContentLength: obj.bytes.length, Body: Readable.from([obj.bytes]) });

    s3mock.on(GetObjectCommand, { Bucket: 'bucket-2' }).callsFake(async () => ignoring({ bytes: content, etag: '"c-2"' }));
    await expect(compareBytes(deps(), 'k', a!, b!)).rejects.toThrow(ChangedWhileReadingError);

    s3mock.on(GetObjectCommand, { Bucket: 'bucket-2' }).callsFake(async () => ignoring({ bytes: content.subarray(1), etag: '"b-2"' }));
    await expect(compareBytes(deps(), 'k', a!, b!)).rejects.toThrow(ChangedWhileReadingError);
  });

  it('compares an answer that carries no ETag or length (some S3-compatible stores), by its bytes', async () => {
    const content = bytes(2 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', content, { etag: 'b-2' });
    const [a, b] = await headsOf('k');
    s3mock.on(GetObjectCommand, { Bucket: 'bucket-2' }).callsFake(async () => ({ Body: Readable.from([content]) }));

    await expect(compareBytes(deps(), 'k', a!, b!)).resolves.toEqual({ same: true, by: 'bytes' });
  });
});

describe('compareMany', () => {
  it('compares three copies in one pass, each read once, and names each that differs', async () => {
    const content = bytes(4 * CHUNK);
    const other = Buffer.from(content);
    other[3000] = other[3000]! ^ 1;
    fake.put('bucket-1', 'k', content, { etag: 'a-2' });
    fake.put('bucket-2', 'k', other, { etag: 'b-2' });
    fake.put('bucket-3', 'k', content, { etag: 'c-3' });
    const d = makeDeps(stores);
    const [a, b, c] = await headsOf('k', 3);

    await expect(compareMany(d, 'k', a!, [b!, c!])).resolves.toEqual([
      { same: false, reason: 'Contents differ (server1 vs server2, from byte 3000)' },
      { same: true, by: 'bytes' },
    ]);
    expect(gets().map((i) => i.Bucket).sort()).toEqual(['bucket-1', 'bucket-2', 'bucket-3']);
    expect(d.meter!.bodyBytes).toBeLessThanOrEqual(3 * content.length);
  });
});

describe('groupByContent', () => {
  const deps = () => makeDeps(stores);

  it('puts three copies holding two versions into two groups, from HEADs alone', async () => {
    fake.put('bucket-1', 'k', 'version one');
    fake.put('bucket-2', 'k', 'version two');
    fake.put('bucket-3', 'k', 'version one');
    const groups = await groupByContent(deps(), 'k', await headsOf('k', 3));

    expect(groups.map((g) => g.heads.map((h) => h.store))).toEqual([['server1', 'server3'], ['server2']]);
    expect(s3mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  it('groups multipart copies of equal content together after a byte compare, reading each copy once', async () => {
    const content = bytes(3 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'k', content, { etag: 'def-2' });
    fake.put('bucket-3', 'k', bytes(3 * CHUNK, 7), { etag: 'abc-3' });
    const groups = await groupByContent(deps(), 'k', await headsOf('k', 3));

    expect(groups.map((g) => g.heads.map((h) => h.store))).toEqual([['server1', 'server2'], ['server3']]);
    expect(gets().map((i) => i.Bucket).sort()).toEqual(['bucket-1', 'bucket-2', 'bucket-3']);
  });

  it('reads copies whole when asked to keep them, adding them to the bodies in hand, and reads none twice', async () => {
    const content = bytes(3 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'k', bytes(3 * CHUNK, 7), { etag: 'def-2' });
    fake.put('bucket-3', 'k', content, { etag: 'ghi-2' });
    const bodies = new Map([['server1', content]]);
    const d = deps();
    const groups = await groupByContent(d, 'k', await headsOf('k', 3), { bodies, keepWhole: () => true });

    expect(groups.map((g) => g.heads.map((h) => h.store))).toEqual([['server1', 'server3'], ['server2']]);
    expect(gets().map((i) => i.Bucket).sort()).toEqual(['bucket-2', 'bucket-3']);
    expect([...bodies.keys()].sort()).toEqual(['server1', 'server2', 'server3']);
    expect(bodies.get('server2')).toEqual(bytes(3 * CHUNK, 7));
    expect(d.meter!.bodyBytes).toBe(2 * content.length);
  });

  it('streams copies against a body in hand when not keeping them whole', async () => {
    const content = bytes(3 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'k', content, { etag: 'def-2' });
    const bodies = new Map([['server1', content]]);
    const groups = await groupByContent(deps(), 'k', await headsOf('k'), { bodies, keepWhole: () => false });

    expect(groups.map((g) => g.heads.map((h) => h.store))).toEqual([['server1', 'server2']]);
    expect(gets().map((i) => i.Bucket)).toEqual(['bucket-2']);
    expect([...bodies.keys()]).toEqual(['server1']);
  });

  it('works without a meter (production deps carry none)', async () => {
    const content = bytes(3 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'k', content, { etag: 'def-2' });
    const { meter: _, ...unmetered } = deps();
    const heads = await headsOf('k');

    for (const keepWhole of [() => true, () => false]) {
      const groups = await groupByContent(unmetered, 'k', heads, { keepWhole });
      expect(groups.map((g) => g.heads.length)).toEqual([2]);
    }
  });

  it('throws the failure of a copy read whole, keeping the bodies that were read', async () => {
    const content = bytes(3 * CHUNK);
    fake.put('bucket-1', 'k', content, { etag: 'abc-3' });
    fake.put('bucket-2', 'k', content, { etag: 'def-2' });
    fake.put('bucket-3', 'k', content, { etag: 'ghi-2' });
    fake.fail('bucket-3', () => s3Error('SlowDown', 503), { command: 'GetObject' });
    const bodies = new Map<string, Buffer>();

    const err = await groupByContent(deps(), 'k', await headsOf('k', 3), { bodies, keepWhole: () => true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).store).toBe('server3');
    expect([...bodies.keys()].sort()).toEqual(['server1', 'server2']);
  });
});
